"""``tether app apply`` reads the file whole and refuses, by name, what would not do what
the file says: fields tether does not support, fields the API server would drop, mistakes
in the sources, and a path outside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tether.api.application import new_application
from tether.cli.application_file import read_application_file
from tether.errors import InvalidSpec

pytestmark = pytest.mark.unit


def argo_app(**source: object) -> dict[str, object]:
    return {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "guestbook"},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://git.example.com/team/demo.git",
                "targetRevision": "HEAD",
                "path": "guestbook",
                **source,
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "demo"},
        },
    }


def write(tmp_path: Path, *docs: object) -> Path:
    path = tmp_path / "apps.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


def refusal(tmp_path: Path, *docs: object) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as e:
        read_application_file(write(tmp_path, *docs), "tether-system")
    return e.value


@pytest.mark.parametrize(
    ("source", "field", "advice"),
    [
        ({"plugin": {"name": "cmp"}}, "spec.source.plugin", "rendered manifests"),
        (
            {"helm": {"fileParameters": [{"name": "a", "path": "b"}]}},
            "spec.source.helm.fileParameters",
            "helm.valueFiles",
        ),
        ({"directory": {"jsonnet": {"imports": []}}}, "directory.jsonnet.imports", "no such field"),
    ],
)
def test_fields_tether_does_not_serve_are_refused_by_name(
    tmp_path: Path, source: dict[str, object], field: str, advice: str
) -> None:
    e = refusal(tmp_path, argo_app(**source))
    assert field in e.message and "apps.yaml" in e.message and "guestbook" in e.message
    assert advice in e.hint


def test_unknown_spec_fields_are_refused(tmp_path: Path) -> None:
    doc = argo_app()
    doc["spec"]["revisionHistoryLimit"] = 3  # type: ignore[index]
    e = refusal(tmp_path, doc)
    assert "spec.revisionHistoryLimit" in e.message


def test_source_and_sources_at_once_are_refused(tmp_path: Path) -> None:
    doc = argo_app()
    doc["spec"]["sources"] = [{"repoURL": "https://x/y.git", "path": "a"}]  # type: ignore[index]
    e = refusal(tmp_path, doc)
    assert "spec.source and spec.sources are both set" in e.message
    assert "keep one" in e.hint


def test_kustomize_helm_and_several_sources_are_accepted(tmp_path: Path) -> None:
    kustomize = argo_app(kustomize={"namePrefix": "x-", "replicas": [{"name": "w", "count": 2}]})
    helm = argo_app(helm={"valueFiles": ["values.yaml"], "valuesObject": {"a": {"b": 1}}})
    helm["metadata"] = {"name": "helm"}
    several = argo_app()
    several["metadata"] = {"name": "several"}
    del several["spec"]["source"]  # type: ignore[attr-defined]
    several["spec"]["sources"] = [  # type: ignore[index]
        {
            "repoURL": "https://charts.example.com",
            "chart": "redis",
            "targetRevision": "18.1.0",
            "helm": {"valueFiles": ["$values/redis/values.yaml"]},
        },
        {"repoURL": "https://git.example.com/team/values.git", "ref": "values"},
    ]
    got = read_application_file(write(tmp_path, kustomize, helm, several), "apps")
    assert [d["metadata"]["name"] for d in got] == ["guestbook", "helm", "several"]


def test_one_bad_document_refuses_the_whole_file(tmp_path: Path) -> None:
    good = argo_app()
    bad = argo_app(plugin={})
    bad["metadata"] = {"name": "second"}
    e = refusal(tmp_path, good, bad)
    assert "document 2" in e.message and "second" in e.message


@pytest.mark.parametrize("path", ["../x", "/x", "apps/../../x", "a/.."])
def test_a_path_outside_the_repository_is_refused_on_apply_and_create(
    tmp_path: Path, path: str
) -> None:
    e = refusal(tmp_path, argo_app(path=path))
    assert "spec.source.path" in e.message and "apps.yaml" in e.message
    assert "relative to the repository root" in e.hint
    with pytest.raises(InvalidSpec, match=r"spec\.source\.path"):
        new_application("web", "tether-system", repo_url="https://x/y.git", path=path)


def test_a_served_application_is_read_with_its_namespace_filled_in(tmp_path: Path) -> None:
    doc = argo_app(directory={"recurse": True})
    doc["spec"]["syncPolicy"] = {  # type: ignore[index]
        "automated": {"prune": True},
        "syncOptions": ["CreateNamespace=true"],
        "retry": {"limit": 2, "backoff": {"duration": "5s"}},
    }
    doc["spec"]["ignoreDifferences"] = [{"kind": "Deployment", "jsonPointers": ["/x"]}]  # type: ignore[index]
    (got,) = read_application_file(write(tmp_path, doc), "apps")
    assert got["metadata"] == {"name": "guestbook", "namespace": "apps"}
    assert got["spec"] == doc["spec"]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("a: [unclosed", "invalid YAML"),
        ("- just\n- a list\n", "not a YAML mapping"),
        ("kind: Application\napiVersion: argoproj.io/v1alpha1\nmetadata: {name: x}\n", "argoproj"),
        ("", "no Application"),
    ],
)
def test_files_that_are_not_applications_are_refused_with_the_file_named(
    tmp_path: Path, text: str, said: str
) -> None:
    path = tmp_path / "apps.yaml"
    path.write_text(text)
    with pytest.raises(InvalidSpec) as e:
        read_application_file(path, "tether-system")
    assert said in e.value.message and str(path) in e.value.message
