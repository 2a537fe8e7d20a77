"""Charts on disk rendered by the real helm binary: layouts like Argo CD's examples, values
precedence, dependencies, CRDs and hooks, capabilities from the real cluster, and bad inputs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tether.api.source import HelmParameter, HelmSource, Source
from tether.errors import RenderError
from tether.kube import KubeClient
from tether.kube.server_info import cluster_facts
from tether.model import Manifest
from tether.render.base import RenderRequest
from tether.render.helm import HelmRenderer
from tether.sandbox import Runner

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "helm" / "repo"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh copy of the fixture repository: renders may build dependencies in it."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES, root)
    return root


async def render(
    root: Path, path: str, helm: HelmSource | None = None, **request: Any
) -> list[Manifest]:
    options: dict[str, Any] = {
        "destination_namespace": "shop",
        "release_name": "demo",
        "kube_version": "1.20.2",
    }
    options.update(request)
    source = Source(repo_url="https://git.example/repo.git", path=path, helm=helm or HelmSource())
    req = RenderRequest(app="apps/demo", source=source, root=root, path=path, **options)
    return await HelmRenderer().render(req, Runner())


def by_kind(manifests: list[Manifest]) -> dict[tuple[str, str], Manifest]:
    return {(m.obj["kind"], m.obj["metadata"]["name"]): m for m in manifests}


async def test_helm_guestbook_with_production_values(repo: Path) -> None:
    found = by_kind(
        await render(repo, "helm-guestbook", HelmSource(value_files=["values-production.yaml"]))
    )
    assert set(found) == {("Deployment", "demo-helm-guestbook"), ("Service", "demo-helm-guestbook")}
    deployment = found["Deployment", "demo-helm-guestbook"]
    assert deployment.source_file == "helm-guestbook/templates/deployment.yaml"
    assert deployment.obj["spec"]["replicas"] == 2
    image = deployment.obj["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "gcr.io/heptio-images/ks-guestbook-demo:0.2"
    assert found["Service", "demo-helm-guestbook"].source_file == (
        "helm-guestbook/templates/service.yaml"
    )


async def test_values_are_layered_as_argo_cd_layers_them(repo: Path) -> None:
    helm = HelmSource(
        value_files=["values-file.yaml", "../envs/layers-env.yaml"],
        values="c: inline\nd: inline\ne: inline\n",
        parameters=[HelmParameter("d", "param"), HelmParameter("e", "param,with,commas")],
    )
    (config,) = await render(repo, "layers", helm)
    assert config.obj["data"] == {
        "a": "chart",
        "b": "file",
        "c": "inline",
        "d": "param",
        "e": "param,with,commas",
        "kind-of-d": "string",
    }
    assert config.obj["metadata"]["namespace"] == "shop"
    assert config.obj["metadata"]["name"] == "demo-layers"


async def test_values_object_wins_and_force_string(repo: Path) -> None:
    helm = HelmSource(
        values="c: from-string\n",
        values_object={"c": "from-object", "d": 5},
        parameters=[HelmParameter("e", "42", force_string=True)],
        release_name="custom",
        namespace="elsewhere",
    )
    (config,) = await render(repo, "layers", helm)
    assert config.obj["data"]["c"] == "from-object"
    assert config.obj["data"]["d"] == "5"
    assert config.obj["data"]["kind-of-d"] in ("int64", "float64")
    assert config.obj["data"]["e"] == "42"
    assert config.obj["metadata"] == {"name": "custom-layers", "namespace": "elsewhere"}
    (numeric,) = await render(repo, "layers", HelmSource(parameters=[HelmParameter("d", "7")]))
    assert numeric.obj["data"]["kind-of-d"] == "int64"


async def test_ref_value_files_come_from_the_other_checkout(repo: Path, tmp_path: Path) -> None:
    values_repo = tmp_path / "values-repo"
    (values_repo / "prod").mkdir(parents=True)
    (values_repo / "prod/layers.yaml").write_text("b: from-ref\n")
    helm = HelmSource(value_files=["$values/prod/layers.yaml"])
    (config,) = await render(repo, "layers", helm, refs={"values": values_repo})
    assert config.obj["data"]["b"] == "from-ref"


async def test_local_file_dependency_is_built_offline(repo: Path) -> None:
    found = by_kind(await render(repo, "helm-dependency"))
    assert set(found) == {
        ("ConfigMap", "demo-app"),
        ("Deployment", "demo-redis-lite"),
        ("Service", "demo-redis-lite"),
    }
    assert found["Deployment", "demo-redis-lite"].obj["spec"]["replicas"] == 2
    assert found["Deployment", "demo-redis-lite"].source_file == (
        "helm-dependency/charts/redis-lite/templates/deployment.yaml"
    )
    assert (repo / "helm-dependency/charts/redis-lite-0.3.0.tgz").is_file()


async def test_crds_and_hooks(repo: Path) -> None:
    manifests = await render(repo, "hooks-crds")
    found = by_kind(manifests)
    assert set(found) == {
        ("CustomResourceDefinition", "crontabs.hooks.tether.dev"),
        ("CronTab", "demo-cleanup"),
        ("Job", "demo-migrate"),
        ("ConfigMap", "demo-notify"),
    }
    assert found["CustomResourceDefinition", "crontabs.hooks.tether.dev"].source_file == (
        "hooks-crds/crds/crontab.yaml"
    )
    job = found["Job", "demo-migrate"].obj["metadata"]["annotations"]
    assert job["tether.dev/hook"] == "pre-install,pre-upgrade"
    assert job["tether.dev/hook-weight"] == "-5"
    notify = found["ConfigMap", "demo-notify"].obj["metadata"]["annotations"]
    assert (notify["tether.dev/hook"], notify["tether.dev/hook-weight"]) == ("post-install", "0")
    assert "annotations" not in found["CronTab", "demo-cleanup"].obj["metadata"]

    skipped = by_kind(await render(repo, "hooks-crds", HelmSource(skip_crds=True)))
    assert ("CustomResourceDefinition", "crontabs.hooks.tether.dev") not in skipped
    assert ("CronTab", "demo-cleanup") in skipped


async def test_capabilities_follow_the_real_cluster(repo: Path, kube: KubeClient) -> None:
    kube_version, api_versions = await cluster_facts(kube)
    assert kube_version == "1.20.2"
    found = by_kind(
        await render(repo, "capabilities", kube_version=kube_version, api_versions=api_versions)
    )
    hpa = found["HorizontalPodAutoscaler", "demo-web"].obj
    assert hpa["apiVersion"] == "autoscaling/v2beta2"
    assert hpa["metadata"]["annotations"]["capabilities/kube-version"] == "v1.20.2"
    assert found["PodDisruptionBudget", "demo-web"].obj["apiVersion"] == "policy/v1beta1"

    newer = by_kind(
        await render(
            repo,
            "capabilities",
            kube_version="1.30.0",
            api_versions=(
                "v1",
                "apps/v1",
                "apps/v1/Deployment",
                "autoscaling/v2",
                "autoscaling/v2/HorizontalPodAutoscaler",
                "policy/v1",
                "policy/v1/PodDisruptionBudget",
            ),
        )
    )
    assert newer["HorizontalPodAutoscaler", "demo-web"].obj["apiVersion"] == "autoscaling/v2"
    assert newer["PodDisruptionBudget", "demo-web"].obj["apiVersion"] == "policy/v1"


async def test_helms_own_api_list_is_caught_before_apply(repo: Path, kube: KubeClient) -> None:
    """A bare ``Has "autoscaling/v2"`` is true in any helm template (helm adds its built-in
    list to --api-versions); the object it picks is refused, naming what 1.20 cannot serve."""
    kube_version, api_versions = await cluster_facts(kube)
    found = by_kind(await render(repo, "capabilities"))
    claims = found["HorizontalPodAutoscaler", "demo-web"].obj["metadata"]["annotations"]
    assert claims["capabilities/has-autoscaling-v2"] == "true"
    error = await failure(
        repo, "capabilities-gv", kube_version=kube_version, api_versions=api_versions
    )
    assert error.file == "capabilities-gv/templates/hpa.yaml"
    assert (
        "renders autoscaling/v2 HorizontalPodAutoscaler, which Kubernetes 1.20.2 does not serve"
        in error.message
    )
    assert 'chose it with .Capabilities.APIVersions.Has "autoscaling/v2": helm' in error.message
    assert "autoscaling/v2/HorizontalPodAutoscaler" in error.hint


# --- bad inputs -----------------------------------------------------------------------------------


async def failure(root: Path, path: str, helm: HelmSource | None = None, **kw: Any) -> RenderError:
    with pytest.raises(RenderError) as info:
        await render(root, path, helm, **kw)
    return info.value


async def test_a_template_error_names_helm_the_template_and_line(repo: Path) -> None:
    (repo / "layers/templates/broken.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n"
        "  v: {{ .Values.missing.deeper }}\n"
    )
    error = await failure(repo, "layers")
    assert (error.file, error.line) == ("layers/templates/broken.yaml", 6)
    assert error.message.startswith("layers/templates/broken.yaml:6: helm template failed:")
    assert "nil pointer" in error.message


async def test_a_values_file_with_bad_yaml_is_named(repo: Path) -> None:
    (repo / "layers/values-bad.yaml").write_text("a: ok\nb: [unclosed\n")
    error = await failure(repo, "layers", HelmSource(value_files=["values-bad.yaml"]))
    assert error.file == "layers/values-bad.yaml"
    assert str(repo) not in str(error)


async def test_a_value_file_outside_the_repository_is_refused(repo: Path) -> None:
    error = await failure(repo, "layers", HelmSource(value_files=["../../outside.yaml"]))
    assert error.file == "../../outside.yaml"
    assert "leads outside the repository" in error.message
    error = await failure(repo, "layers", HelmSource(value_files=["/etc/hostname"]))
    assert error.file == "/etc/hostname"


async def test_a_value_file_symlink_out_is_refused(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.yaml").write_text("token: abc\n")
    os.symlink(tmp_path / "secret.yaml", repo / "layers/values-link.yaml")
    error = await failure(repo, "layers", HelmSource(value_files=["values-link.yaml"]))
    assert error.file == "layers/values-link.yaml"
    assert "outside the repository" in error.message


async def test_a_template_symlink_out_is_refused(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "host.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: h}\n")
    os.symlink(tmp_path / "host.yaml", repo / "layers/templates/host.yaml")
    error = await failure(repo, "layers")
    assert error.file == "layers/templates/host.yaml"


async def test_remote_value_files_and_dependencies_need_permission(repo: Path) -> None:
    error = await failure(
        repo, "layers", HelmSource(value_files=["https://example.invalid/values.yaml"])
    )
    assert "remote value files are not allowed" in error.message
    chart = repo / "helm-dependency/Chart.yaml"
    chart.write_text(
        chart.read_text()
        + "  - name: postgresql\n    version: 12.1.0\n    repository: https://charts.example.invalid\n"
    )
    error = await failure(repo, "helm-dependency")
    assert error.file == "helm-dependency/Chart.yaml"
    assert "'postgresql' comes from https://charts.example.invalid" in error.message


async def test_missing_value_files_can_be_ignored(repo: Path) -> None:
    error = await failure(repo, "layers", HelmSource(value_files=["values-staging.yaml"]))
    assert error.file == "layers/values-staging.yaml"
    (config,) = await render(
        repo,
        "layers",
        HelmSource(value_files=["values-staging.yaml"], ignore_missing_value_files=True),
    )
    assert config.obj["data"]["a"] == "chart"


async def test_a_kube_version_constraint_names_chart_yaml(repo: Path) -> None:
    chart = repo / "layers/Chart.yaml"
    chart.write_text(chart.read_text() + 'kubeVersion: ">=1.25.0-0"\n')
    error = await failure(repo, "layers")
    assert error.file == "layers/Chart.yaml"
    assert "incompatible with Kubernetes v1.20.2" in error.message
    assert "1.20.2" in error.hint


async def test_a_chart_lock_out_of_date_is_named(repo: Path) -> None:
    (repo / "helm-dependency/Chart.lock").write_text(
        "dependencies:\n- name: redis-lite\n  repository: file://../redis-lite\n"
        "  version: 0.1.0\ndigest: sha256:0000\ngenerated: '2024-01-01T00:00:00Z'\n"
    )
    error = await failure(repo, "helm-dependency")
    assert error.file == "helm-dependency/Chart.lock"
    assert "helm dependency build failed" in error.message
