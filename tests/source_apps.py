"""Helpers shared by the tests that sync Applications through an in-process Engine against
the real control plane: the engine, Applications made from a repository on the test git
server, repository credentials as labelled Secrets, and waiting until an app is Synced and
Healthy.

conftest.py registers this module as a plugin, so its fixture (``engine``) needs no import;
a test module that defines its own ``engine`` keeps it."""

from __future__ import annotations

import asyncio
import base64
import uuid
from pathlib import Path
from typing import Any

import pytest
from devcluster.gitserver import GitServer, RepoHandle

from cluster_helpers import WAIT
from tether.api.application import API_VERSION, Application, crd_manifests
from tether.compare import Comparison
from tether.engine import Engine
from tether.kube import KubeClient
from tether.model import HealthStatus, SyncStatus
from tether.source import GitCache
from tether.sync.apply import SyncResult

APPS_NS = "tether-system"
"""Where the Applications live unless a test puts them in a namespace of its own."""


def tree_files(root: Path) -> dict[str, bytes]:
    """Every file below ``root``, by its path relative to it: a fixture tree to commit."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
async def engine(kube: KubeClient, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """An engine with a git cache of its own, once the Application CRD is served and
    APPS_NS exists."""
    for crd in crd_manifests():
        await kube.apply(crd)
    await kube.wait_for_resource(API_VERSION, "Application")
    await kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APPS_NS}})
    return Engine(kube, GitCache(tmp_path_factory.mktemp("gitcache")))


# ---- credentials ----------------------------------------------------------------------------


async def repo_secret(kube: KubeClient, namespace: str, name: str, label: str, **data: str) -> None:
    """A Secret ``name`` of type ``label`` (``repository``, ``repo-creds``) holding ``data``."""
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"tether.dev/secret-type": label},
            },
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
    )


async def git_server_secret(
    kube: KubeClient, git_server: GitServer, namespace: str, name: str
) -> str:
    """Credentials for every repository on the test server as a repository Secret; the URL
    they are for."""
    base = git_server.http_url("x").rsplit("/", 1)[0]
    await repo_secret(
        kube, namespace, name, "repository", url=base, username="git", password=git_server.token
    )
    return base


# ---- Applications ---------------------------------------------------------------------------


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def git_source(repo: RepoHandle, **fields: Any) -> dict[str, Any]:
    """A source reading ``main`` of ``repo`` over HTTP (credentials needed)."""
    return {"repoURL": repo.http_url, "targetRevision": "main", **fields}


async def apply_app(
    engine: Engine, name: str, dest: str, spec: dict[str, Any], home: str = APPS_NS
) -> Application:
    """Application ``home``/``name`` deploying to namespace ``dest``; ``spec`` gives the rest
    (``source`` or ``sources``, a sync policy)."""
    obj = {
        "apiVersion": API_VERSION,
        "kind": "Application",
        "metadata": {"name": name, "namespace": home},
        "spec": {"destination": {"namespace": dest}, **spec},
    }
    await engine.kube.apply(obj)
    return await engine.get_app(name, home)


async def make_app(
    engine: Engine, repo: RepoHandle, dest: str, source: dict[str, Any], *, prefix: str
) -> Application:
    """An Application in APPS_NS named ``prefix-…``, whose source reads ``main`` of ``repo``
    plus ``source``'s fields. The repository is public on the test server: read anonymously
    over file://."""
    repo_source = {"repoURL": f"file://{repo.path}", "targetRevision": "main", **source}
    return await apply_app(engine, unique_name(prefix), dest, {"source": repo_source})


# ---- syncing --------------------------------------------------------------------------------


async def _sync_and_wait(
    engine: Engine, app: Application, *, until_synced: bool
) -> tuple[SyncResult, Comparison]:
    """Syncs ``app`` (which must succeed), then re-compares until it is Healthy (and Synced
    too, with ``until_synced``)."""
    res = await engine.sync(app)
    assert res.ok, res.message
    cmp = await engine.wait_healthy(app, WAIT)
    deadline = asyncio.get_running_loop().time() + WAIT
    while cmp.health.status != HealthStatus.HEALTHY or (
        until_synced and cmp.sync_status != SyncStatus.SYNCED
    ):
        assert asyncio.get_running_loop().time() < deadline, (cmp.health, cmp.conditions)
        await asyncio.sleep(0.2)
        cmp = await engine.compare(app)
    return res, cmp


async def synced_healthy(engine: Engine, app: Application) -> Comparison:
    """Syncs ``app`` and waits until it is Synced and Healthy; the last comparison."""
    _, cmp = await _sync_and_wait(engine, app, until_synced=True)
    return cmp


async def synced_and_healthy(
    engine: Engine, app: Application, *, delete: bool = False
) -> set[tuple[str, str]]:
    """Syncs ``app``, waits until it is Healthy and checks it is then Synced; the (kind,
    name) of every object the sync applied. With ``delete`` the Application is deleted
    afterwards (what it deployed stays)."""
    res, cmp = await _sync_and_wait(engine, app, until_synced=False)
    assert cmp.sync_status == SyncStatus.SYNCED
    if delete:
        await engine.kube.delete(API_VERSION, "Application", app.name, app.namespace)
    return {(r.key.kind, r.key.name) for r in res.results}
