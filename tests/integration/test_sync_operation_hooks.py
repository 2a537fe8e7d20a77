"""Hooks run by a sync operation against the real control plane: PreSync before the objects,
PostSync after them, a failed PreSync hook stops the sync and runs the SyncFail hooks, and a
dry run lists the hooks it would run without creating them."""

from __future__ import annotations

from typing import Any

import yaml
from own_namespace_app import app, engine, home
from test_engine import AppFixture

from cluster_helpers import eventually
from tether.engine import Engine
from tether.kube import KubeClient
from tether.sync.operation import Step, SyncOperation
from tether.sync.record import write_end
from tether.sync.state import FAILED, HOOK_SUCCEEDED, SUCCEEDED, OperationRequest

_FIXTURES = (app, engine, home)


def job(name: str, phase: str, *, fail: bool = False, wave: int = 0) -> str:
    pod_meta: dict[str, Any] = {"annotations": {"sim.tether.dev/behavior": "fail"}} if fail else {}
    return yaml.safe_dump(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "annotations": {"tether.dev/hook": phase, "tether.dev/sync-wave": str(wave)},
            },
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": pod_meta,
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "run", "image": "busybox", "command": ["true"]}],
                    },
                },
            },
        }
    )


def config(name: str) -> str:
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}
    )


async def run(op: SyncOperation, seen: list[Step], timeout: float = 90) -> Step:
    async def once() -> bool:
        seen.append(await op.step())
        return seen[-1].done

    await eventually(once, timeout=timeout, what="the operation's end")
    return seen[-1]


async def test_pre_and_post_sync_hooks_run_around_the_objects(
    engine: Engine, app: AppFixture, kube: KubeClient
) -> None:
    app.repo.commit(
        {
            "app/migrate.yaml": job("migrate", "PreSync"),
            "app/config.yaml": config("settings"),
            "app/smoke.yaml": job("smoke", "PostSync"),
        }
    )
    op = engine.operation(await app.create(), OperationRequest())
    seen: list[Step] = []
    first = await op.step()
    seen.append(first)
    assert not first.done
    assert first.state.sync_phase == "PreSync"
    assert f"Job.batch {app.dest}/migrate" in first.waiting_for
    assert await kube.get("v1", "ConfigMap", "settings", app.dest) is None

    step = await run(op, seen)
    assert step.state.phase == SUCCEEDED, step.state.message
    hooks = {(r.sync_phase, r.key.name): r.hook_phase for r in step.state.resources if r.hook_type}
    assert hooks == {("PreSync", "migrate"): HOOK_SUCCEEDED, ("PostSync", "smoke"): HOOK_SUCCEEDED}
    assert await kube.get("v1", "ConfigMap", "settings", app.dest) is not None
    assert any(s.state.sync_phase == "PostSync" and not s.done for s in seen)
    written = await write_end(kube, await app.get(), step)
    inventory = {(i["kind"], i["name"]) for i in written.status.get("inventory") or []}
    assert inventory == {("ConfigMap", "settings")}
    recorded = written.status["operationState"]["syncResult"]["resources"]
    assert {(r["name"], r.get("hookPhase")) for r in recorded if r.get("hookType")} == {
        ("migrate", HOOK_SUCCEEDED),
        ("smoke", HOOK_SUCCEEDED),
    }


async def test_a_failed_pre_sync_hook_runs_the_sync_fail_hooks(
    engine: Engine, app: AppFixture, kube: KubeClient
) -> None:
    app.repo.commit(
        {
            "app/migrate.yaml": job("migrate", "PreSync", fail=True),
            "app/config.yaml": config("settings"),
            "app/page.yaml": job("page", "SyncFail"),
        }
    )
    op = engine.operation(await app.create(), OperationRequest())
    step = await run(op, [])
    assert step.state.phase == FAILED
    assert step.state.failed_phase == "PreSync"
    assert f"PreSync hook Job.batch {app.dest}/migrate failed" in step.state.message
    page = [r for r in step.state.resources if r.key.name == "page"]
    assert [(r.sync_phase, r.hook_phase) for r in page] == [("SyncFail", HOOK_SUCCEEDED)]
    assert await kube.get("v1", "ConfigMap", "settings", app.dest) is None


async def test_a_dry_run_lists_the_hooks_it_would_run(
    engine: Engine, app: AppFixture, kube: KubeClient
) -> None:
    app.repo.commit(
        {"app/migrate.yaml": job("migrate", "PreSync"), "app/config.yaml": config("settings")}
    )
    res = await engine.sync(await app.create(), dry_run=True)
    assert res.ok, res.message
    assert ("would run", "migrate") in [(r.action, r.key.name) for r in res.results]
    assert await kube.get("batch/v1", "Job", "migrate", app.dest) is None
    assert await kube.get("v1", "ConfigMap", "settings", app.dest) is None
