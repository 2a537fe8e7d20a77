"""The Kustomize renderer through the real kustomize (kubectl's built-in) on checkouts on
disk: Argo CD's example layouts, overlays, every Application override, and the refusals."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from devcluster.gitserver import RepoHandle

from tether.api.source import KustomizeReplica, KustomizeSource, Source
from tether.errors import RenderError
from tether.model import Manifest
from tether.render.base import RenderRequest
from tether.render.kustomize import KUBECTL_ENV, KustomizeRenderer
from tether.sandbox import Limits, Runner, ToolError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kustomize"


def checkout(tmp_path: Path, fixture: str, under: str = "") -> Path:
    """A private copy of a fixture tree, as the renderer is handed one."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / fixture, root / under if under else root)
    return root


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


async def render(
    root: Path,
    path: str,
    options: KustomizeSource | None = None,
    *,
    allow_remote: bool = False,
    runner: Runner | None = None,
) -> list[Manifest]:
    source = Source(repo_url="https://git.example/apps.git", path=path, kustomize=options)
    request = RenderRequest(
        app="tether-system/test", source=source, root=root, path=path, allow_remote=allow_remote
    )
    return await KustomizeRenderer().render(request, runner or Runner())


async def refused(root: Path, path: str, **kw: Any) -> RenderError:
    with pytest.raises(RenderError) as caught:
        await render(root, path, **kw)
    return caught.value


def by_name(manifests: list[Manifest]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m.obj["kind"], m.obj["metadata"]["name"]): m.obj for m in manifests}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return containers[0]


CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n"


# --- layouts -------------------------------------------------------------------------------------


async def test_the_guestbook_renders_as_argo_cds_kustomize_guestbook_does(tmp_path: Path) -> None:
    root = checkout(tmp_path, "guestbook", "kustomize-guestbook")
    manifests = await render(root, "kustomize-guestbook")
    objs = by_name(manifests)
    assert set(objs) == {
        ("Deployment", "kustomize-guestbook-ui"),
        ("Service", "kustomize-guestbook-ui"),
    }
    deployment = objs["Deployment", "kustomize-guestbook-ui"]
    assert deployment["metadata"]["labels"] == {"app.kubernetes.io/part-of": "guestbook"}
    assert deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/part-of"] == "guestbook"
    assert {(m.source_file, m.line) for m in manifests} == {
        ("kustomize-guestbook/kustomization.yaml", 0)
    }


async def test_an_overlay_with_a_component_generator_and_both_kinds_of_patch(
    tmp_path: Path,
) -> None:
    root = checkout(tmp_path, "layered")
    objs = by_name(await render(root, "overlays/prod"))
    config = [
        name for kind, name in objs if kind == "ConfigMap" and name.startswith("prod-web-config-")
    ]
    assert len(config) == 1, objs.keys()
    assert set(objs) == {
        ("Deployment", "prod-web"),
        ("Service", "prod-web"),
        ("ConfigMap", "prod-dashboard"),
        ("ConfigMap", config[0]),
    }
    deployment = objs["Deployment", "prod-web"]
    assert deployment["spec"]["replicas"] == 3  # the JSON 6902 patch
    assert container(deployment)["resources"] == {"limits": {"memory": "256Mi"}}  # strategic
    assert container(deployment)["image"] == "nginx:1.27"
    assert deployment["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}  # component
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert volumes == [{"name": "config", "configMap": {"name": config[0]}}]
    assert objs["ConfigMap", config[0]]["data"]["log.level"] == "warn"

    dev = by_name(await render(root, "overlays/dev"))
    assert dev["Deployment", "dev-web"]["spec"]["replicas"] == 1
    assert container(dev["Deployment", "dev-web"])["image"] == "nginx:1.25"
    assert ("ConfigMap", "dev-dashboard") not in dev


async def test_a_kustomization_at_the_repository_root_renders(tmp_path: Path) -> None:
    root = checkout(tmp_path, "guestbook")
    assert len(await render(root, "")) == 2


# --- Application overrides ---------------------------------------------------------------------


async def render_overridden(tmp_path: Path, options: KustomizeSource) -> dict[Any, dict[str, Any]]:
    root = checkout(tmp_path, "layered")
    before = (root / "overlays/prod/kustomization.yaml").read_bytes()
    objs = by_name(await render(root, "overlays/prod", options))
    # The checkout is left as it was found.
    assert (root / "overlays/prod/kustomization.yaml").read_bytes() == before
    return objs


async def test_image_overrides_in_both_argo_cd_forms(tmp_path: Path) -> None:
    objs = await render_overridden(tmp_path, KustomizeSource(images=["nginx=mirror/nginx:1.28"]))
    assert container(objs["Deployment", "prod-web"])["image"] == "mirror/nginx:1.28"
    objs = await render_overridden(tmp_path / "2", KustomizeSource(images=["nginx:1.29"]))
    assert container(objs["Deployment", "prod-web"])["image"] == "nginx:1.29"


async def test_name_prefix_replaces_the_overlays_own_and_suffix_is_added(tmp_path: Path) -> None:
    objs = await render_overridden(
        tmp_path, KustomizeSource(name_prefix="staging-", name_suffix="-v2")
    )
    assert ("Deployment", "staging-web-v2") in objs
    assert ("Service", "staging-web-v2") in objs


async def test_common_labels_and_annotations(tmp_path: Path) -> None:
    objs = await render_overridden(
        tmp_path,
        KustomizeSource(common_labels={"team": "payments"}, common_annotations={"owner": "ops"}),
    )
    deployment = objs["Deployment", "prod-web"]
    assert deployment["metadata"]["labels"]["team"] == "payments"
    assert deployment["spec"]["selector"]["matchLabels"]["team"] == "payments"
    assert deployment["metadata"]["annotations"]["owner"] == "ops"
    assert objs["Service", "prod-web"]["metadata"]["annotations"] == {"owner": "ops"}


async def test_namespace_override(tmp_path: Path) -> None:
    objs = await render_overridden(tmp_path, KustomizeSource(namespace="payments"))
    assert {obj["metadata"]["namespace"] for obj in objs.values()} == {"payments"}


async def test_replicas_override_by_name(tmp_path: Path) -> None:
    objs = await render_overridden(
        tmp_path, KustomizeSource(replicas=[KustomizeReplica("prod-web", 5)])
    )
    assert objs["Deployment", "prod-web"]["spec"]["replicas"] == 5


async def test_patches_override(tmp_path: Path) -> None:
    patch = {
        "target": {"kind": "Deployment", "name": "web"},
        "patch": "- op: replace\n  path: /spec/template/spec/containers/0/ports/0/containerPort\n"
        "  value: 443\n",
    }
    objs = await render_overridden(tmp_path, KustomizeSource(patches=[patch]))
    assert container(objs["Deployment", "prod-web"])["ports"] == [{"containerPort": 443}]


async def test_components_override(tmp_path: Path) -> None:
    root = checkout(tmp_path, "layered")
    assert ("ConfigMap", "dev-dashboard") not in by_name(await render(root, "overlays/dev"))
    options = KustomizeSource(components=["../../components/monitoring"])
    objs = by_name(await render(root, "overlays/dev", options))
    assert ("ConfigMap", "dev-dashboard") in objs


# --- refusals ------------------------------------------------------------------------------------


async def test_a_resource_pointing_at_the_service_account_secrets_is_refused(
    tmp_path: Path,
) -> None:
    root = write(
        tmp_path / "repo",
        {"apps/a/kustomization.yaml": "resources:\n- ../../../../var/run/secrets/kubernetes.io\n"},
    )
    error = await refused(root, "apps/a")
    assert error.file == "apps/a/kustomization.yaml"
    assert "'../../../../var/run/secrets/kubernetes.io' leads outside the repository" in str(error)


async def test_an_absolute_path_is_refused(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"apps/a/kustomization.yaml": "resources:\n- /etc/passwd\n"})
    error = await refused(root, "apps/a")
    assert "resources entry '/etc/passwd' is an absolute path" in str(error)


async def test_a_base_linked_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside", {"kustomization.yaml": "resources: [cm.yaml]\n"})
    write(outside, {"cm.yaml": CM.format(name="stolen")})
    root = write(tmp_path / "repo", {"apps/a/kustomization.yaml": "resources: [../base]\n"})
    os.symlink(outside, root / "apps" / "base")
    error = await refused(root, "apps/a")
    assert error.file == "apps/a/kustomization.yaml"
    assert f"'../base' is a symlink to {outside}, outside the repository" in str(error)


async def test_a_file_linked_elsewhere_in_the_repository_meets_kustomizes_load_restrictor(
    tmp_path: Path,
) -> None:
    root = write(
        tmp_path / "repo",
        {
            "apps/a/kustomization.yaml": "resources: [cm.yaml]\n",
            "shared/cm.yaml": CM.format(name="x"),
        },
    )
    os.symlink("../../shared/cm.yaml", root / "apps" / "a" / "cm.yaml")
    error = await refused(root, "apps/a")
    assert error.file == "apps/a/kustomization.yaml"
    assert (
        "'cm.yaml' reads shared/cm.yaml (through the symlink apps/a/cm.yaml), which is not in "
        "or below apps/a/"
    ) in str(error)
    assert str(tmp_path) not in str(error)


async def test_a_remote_base_is_refused_unless_remote_sources_are_allowed(tmp_path: Path) -> None:
    root = write(
        tmp_path / "repo",
        {
            "apps/a/kustomization.yaml": "resources:\n"
            "- github.com/argoproj/argocd-example-apps//kustomize-guestbook?ref=master\n"
        },
    )
    error = await refused(root, "apps/a")
    assert error.file == "apps/a/kustomization.yaml"
    assert "is a remote base" in str(error)
    assert "--allow-remote-sources" in str(error)


async def test_a_remote_base_is_fetched_when_allowed(
    tmp_path: Path, git_repo: RepoHandle, git_server: Any
) -> None:
    git_repo.commit(
        {
            "base/kustomization.yaml": "resources: [cm.yaml]\n",
            "base/cm.yaml": CM.format(name="remote"),
        }
    )
    url = git_server.http_url_with_token(git_repo.name)
    root = write(
        tmp_path / "repo",
        {"apps/a/kustomization.yaml": f"namePrefix: a-\nresources:\n- git::{url}//base?ref=main\n"},
    )
    manifests = await render(root, "apps/a", allow_remote=True)
    assert [m.obj["metadata"]["name"] for m in manifests] == ["a-remote"]


async def test_a_self_including_kustomization_is_refused_before_kustomize_runs(
    tmp_path: Path,
) -> None:
    root = write(tmp_path / "repo", {"apps/a/kustomization.yaml": "resources:\n- .\n"})
    error = await refused(root, "apps/a")
    assert "include itself: apps/a -> apps/a" in str(error)


async def test_two_directories_including_each_other_are_refused(tmp_path: Path) -> None:
    root = write(
        tmp_path / "repo",
        {
            "apps/a/kustomization.yaml": "resources: [../b]\n",
            "apps/b/kustomization.yaml": "resources: [../a]\n",
        },
    )
    error = await refused(root, "apps/a")
    assert error.file == "apps/b/kustomization.yaml"
    assert "apps/a -> apps/b -> apps/a" in str(error)


async def test_helm_charts_are_off_by_default(tmp_path: Path) -> None:
    root = write(
        tmp_path / "repo",
        {
            "apps/a/kustomization.yaml": (
                "helmCharts:\n- name: redis\n  repo: https://charts.example\n  version: 1.0.0\n"
            )
        },
    )
    error = await refused(root, "apps/a")
    assert error.file == "apps/a/kustomization.yaml"
    assert "uses helmCharts" in str(error)
    assert "enableHelm" in str(error)


CHART = {
    "app/charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    "app/charts/web/values.yaml": "greeting: hello\n",
    "app/charts/web/templates/cm.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
        "  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
    ),
    "app/kustomization.yaml": (
        "namePrefix: k-\nhelmCharts:\n- name: web\n  releaseName: rel\n"
        "  valuesInline: {greeting: hi}\n"
    ),
}


def helm_enabled() -> KustomizeSource:
    options = KustomizeSource()
    options.enable_helm = True  # type: ignore[attr-defined]
    return options


async def test_a_committed_helm_chart_inflates_when_the_application_enables_helm(
    tmp_path: Path,
) -> None:
    root = write(tmp_path / "repo", CHART)
    source = Source(repo_url="https://git.example/apps.git", path="app", kustomize=helm_enabled())
    request = RenderRequest(
        app="tether-system/test", source=source, root=root, path="app", kube_version="1.20.2"
    )
    manifests = await KustomizeRenderer().render(request, Runner())
    assert [m.obj["metadata"]["name"] for m in manifests] == ["k-rel-settings"]
    assert manifests[0].obj["data"] == {"greeting": "hi", "kube": "v1.20.2"}


async def test_a_helm_chart_to_download_is_refused_without_remote_sources(tmp_path: Path) -> None:
    files = {
        "app/kustomization.yaml": (
            "helmCharts:\n- name: redis\n  repo: https://charts.example\n  version: 1.0.0\n"
        )
    }
    error = await refused(write(tmp_path / "repo", files), "app", options=helm_enabled())
    assert error.file == "app/kustomization.yaml"
    assert "chart 'redis' is not in the repository" in str(error)
    assert "--allow-remote-sources" in str(error)


async def test_kustomizes_own_failure_names_the_file_and_keeps_its_message(tmp_path: Path) -> None:
    root = write(
        tmp_path / "repo",
        {
            "apps/a/kustomization.yaml": "resources: [cm.yaml]\npatches:\n- path: patch.yaml\n",
            "apps/a/cm.yaml": CM.format(name="settings"),
            "apps/a/patch.yaml": CM.format(name="no-such-object"),
        },
    )
    error = await refused(root, "apps/a")
    assert error.file == "apps/a/kustomization.yaml"
    assert str(error).startswith("apps/a/kustomization.yaml: kustomize failed: ")
    assert "no-such-object" in str(error)
    assert str(tmp_path) not in str(error)


async def test_a_missing_file_is_named_before_kustomize_runs(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"apps/a/kustomization.yaml": "resources: [missing.yaml]\n"})
    error = await refused(root, "apps/a")
    assert error.file == "apps/a/kustomization.yaml"
    assert "'missing.yaml' names apps/a/missing.yaml, which does not exist" in str(error)


async def test_a_path_without_a_kustomization_is_refused(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"apps/a/cm.yaml": CM.format(name="x")})
    error = await refused(root, "apps/a")
    assert "no kustomization.yaml, kustomization.yml or Kustomization in apps/a" in str(error)


async def test_an_unusable_kubectl_is_a_tool_error_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = checkout(tmp_path, "guestbook")
    monkeypatch.setenv(KUBECTL_ENV, str(tmp_path / "no-such-kubectl"))
    with pytest.raises(ToolError) as caught:
        await render(root, "")
    assert caught.value.tool == "kustomize"
    assert KUBECTL_ENV in str(caught.value)


async def test_a_render_that_hangs_is_stopped_and_names_the_kustomization(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = checkout(tmp_path, "guestbook", "app")
    hang = tmp_path / "hanging-kubectl"
    hang.write_text("#!/bin/sh\nexec sleep 600\n")
    hang.chmod(0o755)
    monkeypatch.setenv(KUBECTL_ENV, str(hang))
    with pytest.raises(ToolError) as caught:
        await render(root, "app", runner=Runner(limits=Limits(timeout=1)))
    assert caught.value.tool == "kustomize"
    assert str(caught.value).startswith("kustomize: app/kustomization.yaml: ")
    assert "timed out" in str(caught.value)


def test_version_is_kustomizes_own() -> None:
    version = KustomizeRenderer().version()
    assert version.startswith("v5."), version
