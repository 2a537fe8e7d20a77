"""The PostgreSQL audit store with real processes: two controllers sharing one database
(the leader writes, both serve reads, the other takes over and writes to the same trail),
and a PostgreSQL server that stops and comes back (records retried, then logged and counted;
readiness follows the store)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from devcluster import postgres as pg
from devcluster.gitserver import RepoHandle

from audit_stores import pg_schema
from cluster_helpers import (
    WAIT,
    ControllerProcess,
    cm_yaml,
    equals,
    eventually,
    new_app,
    synced_to,
)
from tether import metrics
from tether.audit import AuditRecord, open_store
from tether.backoff import Backoff
from tether.controller.audit_sink import StoreAudit
from tether.controller.leader import LEASE_API_VERSION
from tether.kube import KubeClient

NO_WAIT = Backoff(base=0.0, cap=0.0)


async def lease_holder(kube: KubeClient, ns: str) -> str:
    lease = await kube.get(LEASE_API_VERSION, "Lease", "tether-controller", ns)
    return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")


async def audit_over_http(ctl: ControllerProcess, token: str, app: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"http://127.0.0.1:{ctl.port}/api/v1/audit",
            params={"app": app, "kind": "sync"},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        body: list[dict[str, Any]] = await resp.json()
        return body


@pytest.fixture
async def shared_url() -> AsyncIterator[str]:
    async with pg_schema() as url:
        yield url


async def test_two_controllers_share_one_postgres_trail_and_hand_over(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
    shared_url: str,
) -> None:
    token = await kube.bearer_token()
    assert token
    app = f"{home}/shop"
    first = git_repo.commit({"app/cm.yaml": cm_yaml("shop", {"v": "1"})})
    await kube.apply(new_app("shop", home, git_repo.http_url, namespace, interval="2s"))
    # The URL (with its password) comes from the environment, as from a Secret in a Pod.
    env = {"TETHER_AUDIT_URL": shared_url}
    a = ControllerProcess(tmp_path, "ctl-a", kubeconfig, home, "--leader-elect", env=env)
    b = ControllerProcess(tmp_path, "ctl-b", kubeconfig, home, "--leader-elect", env=env)
    a.args += ["--identity", "ctl-a"]
    b.args += ["--identity", "ctl-b"]
    processes.append(a.start())
    await eventually(lambda: equals(lease_holder(kube, home), "ctl-a"), WAIT, a.tail())
    processes.append(b.start())
    await eventually(lambda: synced_to(kube, home, "shop", first), WAIT, a.tail())

    async def both_serve(sha: str) -> bool:
        try:
            got = [await audit_over_http(c, token, app) for c in (a, b)]
        except aiohttp.ClientError:
            return False  # b still starting
        return all(any(r["revision"] == sha for r in records) for records in got)

    await eventually(lambda: both_serve(first), WAIT, f"{a.tail()}\n{b.tail()}")
    assert await lease_holder(kube, home) == "ctl-a", "the standby never led"
    assert shared_url.split("@")[0].split(":")[-1] not in a.output() + b.output(), (
        "the password was logged"
    )

    a.stop()  # releases the Lease
    await eventually(lambda: equals(lease_holder(kube, home), "ctl-b"), WAIT, b.tail())
    second = git_repo.commit({"app/cm.yaml": cm_yaml("shop", {"v": "2"})})
    await eventually(lambda: synced_to(kube, home, "shop", second), WAIT, b.tail())

    store = await open_store(shared_url, readonly=True)
    try:

        async def recorded() -> bool:
            revisions = [r.revision for r in await store.query(app=app, kinds=["sync"])]
            return second in revisions and first in revisions

        await eventually(recorded, WAIT, b.tail())
    finally:
        await store.close()
    by_b = await audit_over_http(b, token, app)
    assert {first, second} <= {r["revision"] for r in by_b}


def lost(kind: str) -> float:
    value = metrics.REGISTRY.get_sample_value("tether_audit_records_lost_total", {"kind": kind})
    return value or 0.0


async def test_server_down_loses_records_loudly_and_readiness_follows_it(
    shared_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = await open_store(shared_url)
    audit = StoreAudit(store, attempts=2, backoff=NO_WAIT, probe_interval=0.0)
    # Another sink that writes nothing: its readiness notices the server going down by itself.
    idle = StoreAudit(store, probe_interval=0.0, health_interval=0.0)

    def record(message: str) -> AuditRecord:
        return AuditRecord(id=None, time="", app="shop/web", kind="health", message=message)

    try:
        await audit.append(record("before"))
        assert audit.writable()
        before = lost("health")
        pg.stop()
        try:
            assert idle.writable(), "the last known state, while a check starts"
            assert idle._probe is not None
            await idle._probe
            assert not idle.writable() and idle.failure is not None
            assert "cannot write to audit store" in idle.failure
            with caplog.at_level(logging.ERROR, logger="tether.controller"):
                await audit.append(record("while down"))
            assert lost("health") == before + 1
            (line,) = [
                r.getMessage() for r in caplog.records if "audit record lost" in r.getMessage()
            ]
            assert "after 2 attempt(s)" in line and '"message":"while down"' in line
            assert "***" in line or "127.0.0.1" in line
            assert shared_url.split("@")[0].split(":")[-1] not in line, "the password was logged"
            assert not audit.writable()
            assert audit._probe is not None
            await audit._probe
            assert not audit.writable(), "a re-check while the server is down still fails"
        finally:
            pg.start()
        assert audit._probe is not None
        await audit._probe

        async def ready_again() -> bool:
            if audit._probe is not None and not audit._probe.done():
                await audit._probe
            return audit.writable()

        await eventually(ready_again, WAIT, "readiness back after the restart")
        await audit.append(record("after"))
        assert [r.message for r in await store.query()] == ["after", "before"]
    finally:
        await audit.stop()
        await idle.stop()
        await store.close()
