"""Reading spec.source / spec.sources[] into Source values, and what is refused, by field."""

from __future__ import annotations

from typing import Any

import pytest

from tether.api.application import Application
from tether.api.source import TYPE_DIRECTORY, TYPE_HELM, TYPE_KUSTOMIZE
from tether.errors import InvalidSpec

pytestmark = pytest.mark.unit

REPO = "https://git.example.com/team/apps.git"


def app(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"destination": {"namespace": "web"}, **spec},
    }


def refused(obj: dict[str, Any]) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as e:
        Application.from_obj(obj)
    return e.value


def test_one_source_with_every_kustomize_field() -> None:
    kustomize = {
        "images": ["nginx=nginx:1.27"],
        "namePrefix": "p-",
        "nameSuffix": "-s",
        "commonLabels": {"team": "web"},
        "commonAnnotations": {"owner": "ops"},
        "namespace": "other",
        "replicas": [{"name": "web", "count": 3}],
        "patches": [{"patch": "- op: add", "target": {"kind": "Deployment"}}],
        "components": ["../components/tls"],
    }
    a = Application.from_obj(app(source={"repoURL": REPO, "path": "web", "kustomize": kustomize}))
    (s,) = a.sources
    assert a.source is s
    assert s.explicit_type == TYPE_KUSTOMIZE
    assert s.kustomize is not None
    assert s.kustomize.images == ["nginx=nginx:1.27"]
    assert (s.kustomize.name_prefix, s.kustomize.name_suffix) == ("p-", "-s")
    assert s.kustomize.common_labels == {"team": "web"}
    assert s.kustomize.replicas[0].count == 3
    assert s.kustomize.patches[0]["target"] == {"kind": "Deployment"}
    assert s.kustomize.components == ["../components/tls"]


def test_helm_fields_and_jsonnet_fields() -> None:
    helm = {
        "valueFiles": ["values-prod.yaml"],
        "values": "a: 1\n",
        "valuesObject": {"b": {"c": [1, 2]}},
        "parameters": [{"name": "image.tag", "value": "1.2", "forceString": True}],
        "releaseName": "web-release",
        "namespace": "web",
        "skipCrds": True,
        "passCredentials": False,
        "ignoreMissingValueFiles": True,
    }
    h = Application.from_obj(app(source={"repoURL": REPO, "path": "chart", "helm": helm})).source
    assert h.explicit_type == TYPE_HELM and h.helm is not None
    assert h.helm.values_object == {"b": {"c": [1, 2]}}
    assert h.helm.parameters[0].force_string and h.helm.release_name == "web-release"
    assert h.helm.skip_crds and h.helm.ignore_missing_value_files
    jsonnet = {
        "extVars": [{"name": "env", "value": "prod"}, {"name": "n", "value": "3", "code": True}],
        "tlas": [{"name": "replicas", "value": "2", "code": True}],
        "libs": ["vendor"],
    }
    d = Application.from_obj(
        app(source={"repoURL": REPO, "path": "j", "directory": {"jsonnet": jsonnet}})
    ).source
    assert d.explicit_type == TYPE_DIRECTORY
    assert [v.name for v in d.directory.jsonnet.ext_vars] == ["env", "n"]
    assert d.directory.jsonnet.tlas[0].code and d.directory.jsonnet.libs == ["vendor"]


def test_several_sources_with_a_ref_and_a_chart() -> None:
    a = Application.from_obj(
        app(
            sources=[
                {
                    "repoURL": "https://charts.example.com",
                    "chart": "redis",
                    "targetRevision": "^18.1",
                    "helm": {"valueFiles": ["$values/redis/prod.yaml"]},
                },
                {"repoURL": REPO, "targetRevision": "main", "ref": "values"},
                {"repoURL": REPO, "path": "extra"},
            ]
        )
    )
    chart, values, extra = a.sources
    assert chart.is_helm_repository and chart.explicit_type == TYPE_HELM and chart.path == ""
    assert values.ref == "values" and values.path == "" and not values.renders
    assert extra.renders and extra.path == "extra"
    assert a.source is chart
    assert a.repo_urls == ["https://charts.example.com", REPO]


def test_a_ref_source_with_a_path_renders_too() -> None:
    a = Application.from_obj(app(sources=[{"repoURL": REPO, "path": "web", "ref": "r"}]))
    assert a.source.renders and a.source.path == "web"


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        (
            {"source": {"repoURL": REPO}, "sources": [{"repoURL": REPO}]},
            "spec.source and spec.sources are both set",
        ),
        ({}, "spec.source.repoURL is required"),
        ({"sources": [{"path": "x"}]}, "spec.sources[0].repoURL is required"),
        (
            {"source": {"repoURL": REPO, "helm": {}, "kustomize": {}}},
            "spec.source sets helm and kustomize at once",
        ),
        (
            {"source": {"repoURL": "https://c.example.com", "chart": "redis"}},
            "spec.source.chart needs targetRevision",
        ),
        (
            {"source": {"repoURL": "https://c", "chart": "r", "targetRevision": "1", "path": "x"}},
            "sets both chart and path",
        ),
        (
            {
                "source": {
                    "repoURL": "https://c",
                    "chart": "r",
                    "targetRevision": "1",
                    "kustomize": {},
                }
            },
            "names a chart and sets kustomize",
        ),
        (
            {
                "sources": [
                    {"repoURL": REPO, "path": "c", "helm": {"valueFiles": ["$vals/a.yaml"]}},
                    {"repoURL": REPO, "ref": "values"},
                ]
            },
            "spec.sources[0].helm.valueFiles[0] '$vals/a.yaml' names no ref source",
        ),
        (
            {
                "sources": [
                    {"repoURL": REPO, "path": "c", "helm": {"valueFiles": ["$v/../../x"]}},
                    {"repoURL": REPO, "ref": "v"},
                ]
            },
            "is not inside the repository",
        ),
        (
            {"sources": [{"repoURL": REPO, "ref": "a"}, {"repoURL": REPO, "ref": "a"}]},
            "spec.sources[1].ref 'a' is already the ref of spec.sources[0]",
        ),
        ({"sources": [{"repoURL": REPO, "ref": "a"}]}, "no source renders anything"),
        ({"source": {"repoURL": REPO, "path": "../x"}}, "spec.source.path '../x' is not inside"),
        (
            {"sources": [{"repoURL": REPO, "path": "/etc"}]},
            "spec.sources[0].path '/etc' is not inside",
        ),
        (
            {"source": {"repoURL": REPO, "directory": {"jsonnet": {"libs": ["../lib"]}}}},
            "spec.source.directory.jsonnet.libs[0] '../lib' is not inside",
        ),
        (
            {"source": {"repoURL": REPO, "verify": {"mode": "x509", "secretRef": {"name": "k"}}}},
            "spec.source.verify.mode 'x509' is not one of gpg, ssh",
        ),
        (
            {"source": {"repoURL": REPO, "verify": {"mode": "gpg"}}},
            "spec.source.verify names no keys",
        ),
        (
            {"source": {"repoURL": REPO, "kustomize": {"replicas": [{"name": "w", "count": "x"}]}}},
            "spec.source.kustomize.replicas[0].count 'x' is not a number",
        ),
        (
            {"source": {"repoURL": REPO, "helm": {"valueFiles": "values.yaml"}}},
            "spec.source.helm.valueFiles must be a list",
        ),
        ({"source": {"repoURL": REPO, "ref": "a b"}}, "spec.source.ref 'a b' is not a valid name"),
    ],
)
def test_mistakes_are_refused_naming_the_field(spec: dict[str, Any], said: str) -> None:
    e = refused(app(**spec))
    assert said in e.message
    assert "Application apps/web" in e.message


def test_verify_reads_secret_and_config_map_names() -> None:
    v = Application.from_obj(
        app(source={"repoURL": REPO, "verify": {"mode": "ssh", "configMapRef": {"name": "keys"}}})
    ).source.verify
    assert v is not None and (v.mode, v.config_map_name, v.secret_name) == ("ssh", "keys", "")
