"""Repositories laid out like the public example apps sync as they are, through the whole
engine, against the real control plane: Kustomize, Helm (with a local dependency), Jsonnet,
a chart shaped like the popular public ones, and a kustomize tree that asks for an API the
local 1.20 server does not serve (refused with the versions it does serve)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from devcluster.gitserver import GitServer, RepoHandle

from tether.api.application import API_VERSION, Application, crd_manifests
from tether.engine import Engine
from tether.kube import KubeClient
from tether.model import HealthStatus
from tether.source import GitCache

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"
APPS_NS = "tether-system"


def example_files() -> dict[str, bytes]:
    return {
        p.relative_to(EXAMPLES).as_posix(): p.read_bytes()
        for p in sorted(EXAMPLES.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
async def engine(kube: KubeClient, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    for crd in crd_manifests():
        await kube.apply(crd)
    await kube.wait_for_resource(API_VERSION, "Application")
    await kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APPS_NS}})
    return Engine(kube, GitCache(tmp_path_factory.mktemp("gitcache")))


@pytest.fixture(scope="module")
def examples_repo(git_server: GitServer) -> RepoHandle:
    repo = git_server.create_repo(f"examples-{uuid.uuid4().hex[:8]}")
    repo.commit(example_files(), message="the example apps")
    return repo


async def make_app(
    engine: Engine, repo: RepoHandle, dest: str, source: dict[str, Any]
) -> Application:
    name = f"ex-{uuid.uuid4().hex[:8]}"
    obj = {
        "apiVersion": API_VERSION,
        "kind": "Application",
        "metadata": {"name": name, "namespace": APPS_NS},
        "spec": {
            # The repository is public on the test server (anonymous read over file://).
            "source": {"repoURL": f"file://{repo.path}", "targetRevision": "main", **source},
            "destination": {"namespace": dest},
        },
    }
    await engine.kube.apply(obj)
    return await engine.get_app(name, APPS_NS)


async def sync_healthy(engine: Engine, app: Application) -> set[tuple[str, str]]:
    res = await engine.sync(app)
    assert res.ok, res.message
    cmp = await engine.wait_healthy(app, 90)
    deadline = asyncio.get_running_loop().time() + 90
    while cmp.health.status != HealthStatus.HEALTHY:
        assert asyncio.get_running_loop().time() < deadline, cmp.health
        await asyncio.sleep(0.2)
        cmp = await engine.compare(app)
    assert cmp.sync_status.value == "Synced"
    await engine.kube.delete(API_VERSION, "Application", app.name, APPS_NS)
    return {(r.key.kind, r.key.name) for r in res.results}


async def test_kustomize_guestbook(
    engine: Engine, examples_repo: RepoHandle, namespace: str
) -> None:
    app = await make_app(engine, examples_repo, namespace, {"path": "kustomize-guestbook"})
    assert await sync_healthy(engine, app) == {
        ("Deployment", "kustomize-guestbook-ui"),
        ("Service", "kustomize-guestbook-ui"),
    }


async def test_helm_guestbook_with_a_values_file(
    engine: Engine, examples_repo: RepoHandle, namespace: str, kube: KubeClient
) -> None:
    app = await make_app(
        engine,
        examples_repo,
        namespace,
        {"path": "helm-guestbook", "helm": {"valueFiles": ["values-production.yaml"]}},
    )
    name = f"{app.name}-helm-guestbook"
    assert await sync_healthy(engine, app) == {("Deployment", name), ("Service", name)}
    live = await kube.get("apps/v1", "Deployment", name, namespace)
    assert live is not None
    assert live["spec"]["replicas"] == 2  # from values-production.yaml
    image = live["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "gcr.io/heptio-images/ks-guestbook-demo:0.2"


async def test_jsonnet_guestbook(engine: Engine, examples_repo: RepoHandle, namespace: str) -> None:
    app = await make_app(engine, examples_repo, namespace, {"path": "jsonnet-guestbook"})
    assert await sync_healthy(engine, app) == {
        ("Deployment", "jsonnet-guestbook-ui"),
        ("Service", "jsonnet-guestbook-ui"),
    }


async def test_helm_chart_with_a_local_dependency(
    engine: Engine, examples_repo: RepoHandle, namespace: str, kube: KubeClient
) -> None:
    app = await make_app(
        engine,
        examples_repo,
        namespace,
        {"path": "helm-dependency", "helm": {"releaseName": "dep"}},
    )
    assert await sync_healthy(engine, app) == {
        ("ConfigMap", "dep-config"),
        ("Deployment", "dep-web"),
    }
    cm = await kube.get("v1", "ConfigMap", "dep-config", namespace)
    assert cm is not None
    # The labels come from the library chart the dependency brought in.
    assert cm["metadata"]["labels"]["app.kubernetes.io/name"] == "helm-dependency"


async def test_public_chart_shape_picks_the_apis_this_cluster_serves(
    engine: Engine, examples_repo: RepoHandle, namespace: str, kube: KubeClient
) -> None:
    app = await make_app(
        engine,
        examples_repo,
        namespace,
        {"path": "webapp-chart", "helm": {"releaseName": "shop"}},
    )
    kinds = await sync_healthy(engine, app)
    # The chart's helm.sh/hook: test Pod is not deployed (Argo CD drops test hooks too).
    assert kinds == {
        ("ServiceAccount", "shop-webapp"),
        ("ConfigMap", "shop-webapp"),
        ("Service", "shop-webapp"),
        ("Deployment", "shop-webapp"),
        ("PodDisruptionBudget", "shop-webapp"),
    }
    pdb = await kube.get("policy/v1beta1", "PodDisruptionBudget", "shop-webapp", namespace)
    assert pdb is not None  # policy/v1 is not served by 1.20: the chart chose v1beta1


async def test_an_api_the_cluster_does_not_serve_is_named(
    engine: Engine, examples_repo: RepoHandle, namespace: str, kube: KubeClient
) -> None:
    app = await make_app(engine, examples_repo, namespace, {"path": "podinfo-kustomize"})
    res = await engine.sync(app)
    assert not res.ok
    assert "autoscaling/v2" in res.message
    assert "HorizontalPodAutoscaler" in res.message
    assert "autoscaling/v2beta2" in res.message  # what this cluster does serve
    # Nothing of the app was applied: the refusal comes before any write.
    assert await kube.get("apps/v1", "Deployment", "podinfo", namespace) is None
    await engine.kube.delete(API_VERSION, "Application", app.name, APPS_NS)
