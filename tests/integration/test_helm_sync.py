"""Charts in Git synced through the engine to the real control plane: Synced and Healthy, or
refused with a message naming what the local API server (1.20) cannot serve."""

from __future__ import annotations

import asyncio
import base64
import uuid
from pathlib import Path
from typing import Any

import pytest
from devcluster.gitserver import GitServer, RepoHandle

from tether.api.application import API_VERSION, Application, crd_manifests
from tether.compare import Comparison
from tether.engine import Engine
from tether.errors import RenderError
from tether.kube import KubeClient
from tether.model import HealthStatus, SyncStatus
from tether.source import GitCache

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "helm" / "repo"


@pytest.fixture(scope="module")
async def engine(kube: KubeClient, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    for crd in crd_manifests():
        await kube.apply(crd)
    await kube.wait_for_resource(API_VERSION, "Application")
    return Engine(kube, GitCache(tmp_path_factory.mktemp("gitcache")))


@pytest.fixture
def charts_repo(git_repo: RepoHandle) -> RepoHandle:
    """The fixture charts committed to a repository on the real git server."""
    files = {
        str(path.relative_to(FIXTURES)): path.read_bytes()
        for path in sorted(FIXTURES.rglob("*"))
        if path.is_file()
    }
    git_repo.commit(files, message="charts")
    return git_repo


async def git_credentials(kube: KubeClient, git_server: GitServer, namespace: str) -> None:
    data = {
        "url": git_server.http_url("x").rsplit("/", 1)[0],
        "username": "git",
        "password": git_server.token,
    }
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "git-creds",
                "namespace": namespace,
                "labels": {"tether.dev/secret-type": "repository"},
            },
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
    )


async def helm_app(
    engine: Engine, repo: RepoHandle, namespace: str, path: str, helm: dict[str, Any]
) -> Application:
    name = f"helm-{uuid.uuid4().hex[:8]}"
    source = {"repoURL": repo.http_url, "targetRevision": "main", "path": path, "helm": helm}
    await engine.kube.apply(
        {
            "apiVersion": API_VERSION,
            "kind": "Application",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"source": source, "destination": {"namespace": namespace}},
        }
    )
    return await engine.get_app(name, namespace)


async def synced_healthy(engine: Engine, app: Application) -> Comparison:
    result = await engine.sync(app)
    assert result.ok, result.message
    deadline = asyncio.get_running_loop().time() + 90
    cmp = await engine.compare(app)
    while cmp.health.status != HealthStatus.HEALTHY or cmp.sync_status != SyncStatus.SYNCED:
        assert asyncio.get_running_loop().time() < deadline, (cmp.health, cmp.conditions)
        await asyncio.sleep(0.5)
        cmp = await engine.compare(app)
    return cmp


async def test_helm_guestbook_syncs_healthy(
    engine: Engine, kube: KubeClient, git_server: GitServer, charts_repo: RepoHandle, namespace: str
) -> None:
    await git_credentials(kube, git_server, namespace)
    app = await helm_app(
        engine,
        charts_repo,
        namespace,
        "helm-guestbook",
        {"releaseName": "guestbook", "valueFiles": ["values-production.yaml"]},
    )
    cmp = await synced_healthy(engine, app)
    assert {(k.kind, k.name) for k in cmp.resources} == {
        ("Deployment", "guestbook-helm-guestbook"),
        ("Service", "guestbook-helm-guestbook"),
    }
    deployment = await kube.get("apps/v1", "Deployment", "guestbook-helm-guestbook", namespace)
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 2
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "gcr.io/heptio-images/ks-guestbook-demo:0.2"
    test_pod = await kube.get("v1", "Pod", "guestbook-helm-guestbook-test-connection", namespace)
    assert test_pod is None


async def test_chart_with_a_local_dependency_syncs_healthy(
    engine: Engine, kube: KubeClient, git_server: GitServer, charts_repo: RepoHandle, namespace: str
) -> None:
    await git_credentials(kube, git_server, namespace)
    app = await helm_app(engine, charts_repo, namespace, "helm-dependency", {"releaseName": "shop"})
    cmp = await synced_healthy(engine, app)
    assert {(k.kind, k.name) for k in cmp.resources} == {
        ("ConfigMap", "shop-app"),
        ("Deployment", "shop-redis-lite"),
        ("Service", "shop-redis-lite"),
    }
    redis = await kube.get("apps/v1", "Deployment", "shop-redis-lite", namespace)
    assert redis is not None
    assert redis["spec"]["replicas"] == 2


async def test_capabilities_chart_picks_what_the_cluster_serves(
    engine: Engine, kube: KubeClient, git_server: GitServer, charts_repo: RepoHandle, namespace: str
) -> None:
    await git_credentials(kube, git_server, namespace)
    app = await helm_app(engine, charts_repo, namespace, "capabilities", {"releaseName": "cap"})
    result = await engine.sync(app)
    assert result.ok, result.message
    # Synced, not Healthy: without a metrics server the HPA cannot read CPU use (Degraded).
    assert (await engine.compare(app)).sync_status == SyncStatus.SYNCED
    hpa = await kube.get("autoscaling/v2beta2", "HorizontalPodAutoscaler", "cap-web", namespace)
    assert hpa is not None
    pdb = await kube.get("policy/v1beta1", "PodDisruptionBudget", "cap-web", namespace)
    assert pdb is not None


async def test_an_api_the_cluster_lacks_is_named_and_nothing_applied(
    engine: Engine, kube: KubeClient, git_server: GitServer, charts_repo: RepoHandle, namespace: str
) -> None:
    await git_credentials(kube, git_server, namespace)
    app = await helm_app(engine, charts_repo, namespace, "capabilities-gv", {"releaseName": "gv"})
    cmp = await engine.compare(app)
    assert isinstance(cmp.error, RenderError), cmp.error
    assert cmp.error.file == "capabilities-gv/templates/hpa.yaml"
    assert "autoscaling/v2 HorizontalPodAutoscaler, which Kubernetes 1.20.2 does not serve" in (
        cmp.error.message
    )
    result = await engine.sync(app)
    assert not result.ok
    assert "autoscaling/v2" in result.message
    assert await kube.get("autoscaling/v1", "HorizontalPodAutoscaler", "gv-gv", namespace) is None
