"""Charts in Git synced through the engine to the real control plane: Synced and Healthy, or
refused with a message naming what the local API server (1.20) cannot serve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from devcluster.gitserver import GitServer, RepoHandle

from source_apps import (
    apply_app,
    git_server_secret,
    git_source,
    synced_healthy,
    tree_files,
    unique_name,
)
from tether.api.application import Application
from tether.engine import Engine
from tether.errors import RenderError
from tether.kube import KubeClient
from tether.model import SyncStatus

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "helm" / "repo"


@pytest.fixture
def charts_repo(git_repo: RepoHandle) -> RepoHandle:
    """The fixture charts committed to a repository on the real git server."""
    git_repo.commit(tree_files(FIXTURES), message="charts")
    return git_repo


async def helm_app(
    engine: Engine, repo: RepoHandle, namespace: str, path: str, helm: dict[str, Any]
) -> Application:
    source = git_source(repo, path=path, helm=helm)
    return await apply_app(engine, unique_name("helm"), namespace, {"source": source}, namespace)


async def test_helm_guestbook_syncs_healthy(
    engine: Engine, kube: KubeClient, git_server: GitServer, charts_repo: RepoHandle, namespace: str
) -> None:
    await git_server_secret(kube, git_server, namespace, "git-creds")
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
    await git_server_secret(kube, git_server, namespace, "git-creds")
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
    await git_server_secret(kube, git_server, namespace, "git-creds")
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
    await git_server_secret(kube, git_server, namespace, "git-creds")
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
