"""A Kustomize overlay with Application overrides synced through the whole engine to the real
control plane (Synced and Healthy), and a refused kustomization applying nothing."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from devcluster.gitserver import GitServer, RepoHandle

from source_apps import APPS_NS, make_app, synced_and_healthy, tree_files
from tether.api.application import API_VERSION
from tether.engine import Engine
from tether.kube import KubeClient

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kustomize"


@pytest.fixture(scope="module")
def repo(git_server: GitServer) -> RepoHandle:
    handle = git_server.create_repo(f"kustomize-{uuid.uuid4().hex[:8]}")
    files = tree_files(FIXTURES)
    files["escape/kustomization.yaml"] = b"resources:\n- ../../../../var/run/secrets\n"
    handle.commit(files, message="kustomize trees")
    return handle


async def test_an_overlay_with_overrides_syncs_synced_and_healthy(
    engine: Engine, repo: RepoHandle, namespace: str, kube: KubeClient
) -> None:
    app = await make_app(
        engine,
        repo,
        namespace,
        {
            "path": "layered/overlays/prod",
            "kustomize": {
                "namePrefix": "shop-",
                "images": ["nginx=nginx:1.27.1"],
                "replicas": [{"name": "web", "count": 2}],
                "commonLabels": {"team": "shop"},
            },
        },
        prefix="kz",
    )
    try:
        synced = await synced_and_healthy(engine, app)
        assert ("Deployment", "shop-web") in synced
        assert ("ConfigMap", "shop-dashboard") in synced
        live = await kube.get("apps/v1", "Deployment", "shop-web", namespace)
        assert live is not None
        assert live["spec"]["replicas"] == 2
        assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27.1"
        assert live["metadata"]["labels"]["team"] == "shop"
    finally:
        await engine.kube.delete(API_VERSION, "Application", app.name, APPS_NS)


async def test_a_kustomization_reaching_out_of_the_repository_applies_nothing(
    engine: Engine, repo: RepoHandle, namespace: str, kube: KubeClient
) -> None:
    app = await make_app(engine, repo, namespace, {"path": "escape"}, prefix="kz")
    try:
        res = await engine.sync(app)
        assert not res.ok
        assert res.results == []
        assert "escape/kustomization.yaml: resources entry '../../../../var/run/secrets' " in (
            res.message
        )
        assert "leads outside the repository" in res.message
        objects, _ = await kube.list("v1", "ConfigMap", namespace)
        assert [o for o in objects if o["metadata"]["name"] != "kube-root-ca.crt"] == []
    finally:
        await engine.kube.delete(API_VERSION, "Application", app.name, APPS_NS)
