"""A Kustomize overlay with Application overrides synced through the whole engine to the real
control plane (Synced and Healthy), and a refused kustomization applying nothing."""

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
from tether.model import HealthStatus, SyncStatus
from tether.source import GitCache

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kustomize"
APPS_NS = "tether-system"


@pytest.fixture(scope="module")
async def engine(kube: KubeClient, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    for crd in crd_manifests():
        await kube.apply(crd)
    await kube.wait_for_resource(API_VERSION, "Application")
    await kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APPS_NS}})
    return Engine(kube, GitCache(tmp_path_factory.mktemp("gitcache")))


@pytest.fixture(scope="module")
def repo(git_server: GitServer) -> RepoHandle:
    handle = git_server.create_repo(f"kustomize-{uuid.uuid4().hex[:8]}")
    files = {
        p.relative_to(FIXTURES).as_posix(): p.read_bytes()
        for p in sorted(FIXTURES.rglob("*"))
        if p.is_file()
    }
    files["escape/kustomization.yaml"] = b"resources:\n- ../../../../var/run/secrets\n"
    handle.commit(files, message="kustomize trees")
    return handle


async def make_app(
    engine: Engine, repo: RepoHandle, dest: str, source: dict[str, Any]
) -> Application:
    name = f"kz-{uuid.uuid4().hex[:8]}"
    obj = {
        "apiVersion": API_VERSION,
        "kind": "Application",
        "metadata": {"name": name, "namespace": APPS_NS},
        "spec": {
            # Read anonymously over file://, as the test server's repositories allow.
            "source": {"repoURL": f"file://{repo.path}", "targetRevision": "main", **source},
            "destination": {"namespace": dest},
        },
    }
    await engine.kube.apply(obj)
    return await engine.get_app(name, APPS_NS)


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
    )
    try:
        res = await engine.sync(app)
        assert res.ok, res.message
        synced = {(r.key.kind, r.key.name) for r in res.results}
        assert ("Deployment", "shop-web") in synced
        assert ("ConfigMap", "shop-dashboard") in synced
        cmp = await engine.wait_healthy(app, 90)
        deadline = asyncio.get_running_loop().time() + 90
        while cmp.health.status != HealthStatus.HEALTHY:
            assert asyncio.get_running_loop().time() < deadline, cmp.health
            await asyncio.sleep(0.2)
            cmp = await engine.compare(app)
        assert cmp.sync_status == SyncStatus.SYNCED
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
    app = await make_app(engine, repo, namespace, {"path": "escape"})
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
