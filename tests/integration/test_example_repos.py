"""Repositories laid out like the public example apps sync as they are, through the whole
engine, against the real control plane: Kustomize, Helm (with a local dependency), Jsonnet,
a chart shaped like the popular public ones, and a kustomize tree that asks for an API the
local 1.20 server does not serve (refused with the versions it does serve)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from devcluster.gitserver import GitServer, RepoHandle

from source_apps import APPS_NS, make_app, synced_and_healthy, tree_files
from tether.api.application import API_VERSION
from tether.engine import Engine
from tether.kube import KubeClient

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"


@pytest.fixture(scope="module")
def examples_repo(git_server: GitServer) -> RepoHandle:
    repo = git_server.create_repo(f"examples-{uuid.uuid4().hex[:8]}")
    repo.commit(tree_files(EXAMPLES), message="the example apps")
    return repo


async def test_kustomize_guestbook(
    engine: Engine, examples_repo: RepoHandle, namespace: str
) -> None:
    app = await make_app(
        engine, examples_repo, namespace, {"path": "kustomize-guestbook"}, prefix="ex"
    )
    assert await synced_and_healthy(engine, app, delete=True) == {
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
        prefix="ex",
    )
    name = f"{app.name}-helm-guestbook"
    assert await synced_and_healthy(engine, app, delete=True) == {
        ("Deployment", name),
        ("Service", name),
    }
    live = await kube.get("apps/v1", "Deployment", name, namespace)
    assert live is not None
    assert live["spec"]["replicas"] == 2  # from values-production.yaml
    image = live["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "gcr.io/heptio-images/ks-guestbook-demo:0.2"


async def test_jsonnet_guestbook(engine: Engine, examples_repo: RepoHandle, namespace: str) -> None:
    app = await make_app(
        engine, examples_repo, namespace, {"path": "jsonnet-guestbook"}, prefix="ex"
    )
    assert await synced_and_healthy(engine, app, delete=True) == {
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
        prefix="ex",
    )
    assert await synced_and_healthy(engine, app, delete=True) == {
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
        prefix="ex",
    )
    kinds = await synced_and_healthy(engine, app, delete=True)
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
    app = await make_app(
        engine, examples_repo, namespace, {"path": "podinfo-kustomize"}, prefix="ex"
    )
    res = await engine.sync(app)
    assert not res.ok
    assert "autoscaling/v2" in res.message
    assert "HorizontalPodAutoscaler" in res.message
    assert "autoscaling/v2beta2" in res.message  # what this cluster does serve
    # Nothing of the app was applied: the refusal comes before any write.
    assert await kube.get("apps/v1", "Deployment", "podinfo", namespace) is None
    await engine.kube.delete(API_VERSION, "Application", app.name, APPS_NS)
