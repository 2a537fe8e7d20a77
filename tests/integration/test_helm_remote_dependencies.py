"""A chart in Git whose dependencies come from a real chart repository and a real OCI registry
on 127.0.0.1: fetched only where the application may reach the network, with the repository
configuration (and credentials) prepared for the render."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from devcluster.chartrepo import ChartRepo, write_chart
from devcluster.ociregistry import OCIRegistry

from tether.api.source import HelmSource, Source
from tether.errors import RenderError
from tether.model import Manifest
from tether.render.base import RenderRequest
from tether.render.helm import HelmRenderer
from tether.sandbox import Runner
from tether.source.credentials import REPO_TYPE_HELM, RepoCredentials
from tether.source.helm_repo import repository_env

USER, PASSWORD = "charts", "s3cret-charts"


@pytest.fixture
def chart_repo(tmp_path: Path) -> Iterator[ChartRepo]:
    with ChartRepo(tmp_path / "chart-repo", username=USER, password=PASSWORD) as repo:
        repo.add_chart(write_chart(tmp_path / "src", "greeter", config_value="from-repo"), "1.2.0")
        repo.index()
        yield repo


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[OCIRegistry]:
    with OCIRegistry(tmp_path / "registry") as reg:
        yield reg


def app_chart(root: Path, dependency: str) -> Path:
    chart = root / "apps" / "web"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: web\nversion: 0.1.0\ndependencies:\n" + dependency
    )
    (chart / "values.yaml").write_text("greeter:\n  greeting: from-parent\n")
    (chart / "templates" / "service.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-web\n"
        "spec:\n  ports: [{port: 80}]\n"
    )
    return chart


async def render(root: Path, allow_remote: bool, env: dict[str, str]) -> list[Manifest]:
    source = Source(repo_url="https://git.example/repo.git", path="apps/web", helm=HelmSource())
    request = RenderRequest(
        app="apps/web",
        source=source,
        root=root,
        path="apps/web",
        destination_namespace="web",
        release_name="site",
        kube_version="1.20.2",
        allow_remote=allow_remote,
        env=env,
    )
    return await HelmRenderer().render(request, Runner())


async def test_dependency_from_a_chart_repository(chart_repo: ChartRepo, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    dependency = f"- name: greeter\n  version: 1.2.0\n  repository: {chart_repo.url}\n"
    app_chart(root, dependency)

    with pytest.raises(RenderError) as info:
        await render(root, allow_remote=False, env={})
    assert info.value.file == "apps/web/Chart.yaml"
    assert f"'greeter' comes from {chart_repo.url}" in info.value.message
    assert chart_repo.requests == []

    creds = RepoCredentials(username=USER, password=PASSWORD, repo_type=REPO_TYPE_HELM)
    env = repository_env(tmp_path / "helm-home", [(chart_repo.url, creds)])
    manifests = await render(root, allow_remote=True, env=env)
    config = next(m for m in manifests if m.obj["kind"] == "ConfigMap")
    assert config.obj["metadata"]["name"] == "site-cm"
    assert config.obj["data"]["greeting"] == "from-parent"
    archive_requests = chart_repo.requests_for("greeter-1.2.0.tgz")
    assert archive_requests
    assert all(r.authorization == chart_repo.expected_auth for r in archive_requests)
    assert PASSWORD not in "".join(str(m.obj) for m in manifests)


async def test_wrong_credentials_name_chart_yaml(chart_repo: ChartRepo, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    app_chart(root, f"- name: greeter\n  version: 1.2.0\n  repository: {chart_repo.url}\n")
    creds = RepoCredentials(username=USER, password="wrong-pw", repo_type=REPO_TYPE_HELM)
    env = repository_env(tmp_path / "helm-home", [(chart_repo.url, creds)])
    with pytest.raises(RenderError) as info:
        await render(root, allow_remote=True, env=env)
    assert info.value.file == "apps/web/Chart.yaml"
    assert "helm dependency build failed" in info.value.message
    assert f"failed to fetch {chart_repo.url}/index.yaml : 401 Unauthorized" in info.value.message
    assert "wrong-pw" not in str(info.value)
    assert str(tmp_path) not in str(info.value)


async def test_dependency_from_an_oci_registry(
    registry: OCIRegistry, chart_repo: ChartRepo, tmp_path: Path
) -> None:
    target = registry.push(chart_repo.root / "greeter-1.2.0.tgz")
    root = tmp_path / "repo"
    app_chart(root, f"- name: greeter\n  version: 1.2.0\n  repository: {target}\n")
    env = repository_env(tmp_path / "helm-home", [(target, None)])
    manifests = await render(root, allow_remote=True, env=env)
    kinds = sorted(m.obj["kind"] for m in manifests)
    assert kinds == ["ConfigMap", "Service"]
    assert (root / "apps/web/charts/greeter-1.2.0.tgz").is_file()
