"""An app's health comes from its live objects, so it stays right while Git is unreachable."""

from __future__ import annotations

import asyncio

import yaml
from own_namespace_app import app, engine, home
from test_engine import AppFixture, cm

from tether.engine import Comparison
from tether.model import HealthStatus, SyncStatus

# Named so that pytest sees these fixtures in this module.
_FIXTURES = (app, engine, home)

CRASHING_POD = yaml.safe_dump(
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "crasher"},
        "spec": {"containers": [{"name": "main", "image": "example/crashloop:1"}]},
    }
)


async def degraded(a: AppFixture, timeout: float = 60) -> Comparison:
    """Compares until the app is Degraded (the node simulator crash-loops the pod)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        cmp = await a.engine.compare(await a.get())
        if cmp.health.status == HealthStatus.DEGRADED:
            return cmp
        assert asyncio.get_running_loop().time() < deadline, cmp.health
        await asyncio.sleep(0.2)


async def test_degraded_app_stays_degraded_while_git_is_unreachable(app: AppFixture) -> None:
    app.repo.commit({"app/pod.yaml": CRASHING_POD, "app/cm.yaml": cm("settings", {"v": "1"})})
    res = await app.engine.sync(await app.create())
    assert res.ok, res.message
    await degraded(app)

    hidden = app.repo.path.with_name(app.repo.path.name + ".away")
    app.repo.path.rename(hidden)  # the repository is gone from the server
    try:
        a = await app.get()
        cmp = await app.engine.compare(a)
        assert cmp.error is not None and cmp.sync_status == SyncStatus.UNKNOWN
        assert cmp.health.status == HealthStatus.DEGRADED, cmp.health
        assert "CrashLoopBackOff" in cmp.health.message
        await app.engine.write_status(a, cmp)
        st = (await app.get()).status
        assert st["sync"]["status"] == "Unknown"
        assert st["health"]["status"] == "Degraded"
        assert st["conditions"][0]["type"] == "SourceError"
        assert st["sync"]["revision"] == res.revision  # what is deployed is still known
    finally:
        hidden.rename(app.repo.path)
