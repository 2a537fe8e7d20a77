"""Sync operations stepped against the real control plane: waves that wait for health, a wave
that never gets healthy, prune after the last wave in reverse wave order, a CRD and its custom
resource in one sync, and an operation resumed by a new engine from the recorded state."""

from __future__ import annotations

import uuid
from typing import Any

import yaml
from own_namespace_app import app, engine, home
from test_engine import AppFixture

from cluster_helpers import eventually, widget_crd
from tether.engine import Engine
from tether.kube import KubeClient
from tether.sync.operation import Step, SyncOperation
from tether.sync.record import claim, run_to_end, write_progress
from tether.sync.state import FAILED, SUCCEEDED, OperationRequest

_FIXTURES = (app, engine, home)
WAVE = "tether.dev/sync-wave"


def cm(name: str, wave: int, data: dict[str, str] | None = None) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "annotations": {WAVE: str(wave)}},
            "data": data or {"k": name},
        }
    )


def unready_deployment(name: str, wave: int) -> str:
    """A Deployment whose pod runs but never becomes Ready (Progressing for ever)."""
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": {WAVE: str(wave)}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {
                    "labels": {"app": name},
                    "annotations": {"sim.tether.dev/behavior": "never-ready"},
                },
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    return yaml.safe_dump(obj)


async def make_ready(kube: KubeClient, name: str, namespace: str) -> None:
    """Changes the Deployment so its next pods become Ready (as a fix by hand would)."""
    live = await kube.get("apps/v1", "Deployment", name, namespace)
    assert live is not None
    await kube.merge_patch(
        live,
        {"spec": {"template": {"metadata": {"annotations": {"sim.tether.dev/behavior": None}}}}},
    )


async def step_until(op: SyncOperation, check: Any, timeout: float = 60) -> Step:
    """Steps ``op`` until ``check(step)`` holds."""
    last: list[Step] = []

    async def once() -> bool:
        last[:] = [await op.step()]
        return bool(check(last[0]))

    await eventually(once, timeout=timeout, what="the operation's step")
    return last[0]


def applied_names(step: Step) -> list[tuple[int, str]]:
    return [
        (r.wave, r.key.name)
        for r in step.state.resources
        if r.action in ("created", "configured") and not r.hook_type
    ]


async def test_waves_wait_for_health_in_order(
    engine: Engine, app: AppFixture, kube: KubeClient
) -> None:
    sha = app.repo.commit(
        {
            "app/web.yaml": unready_deployment("web", 1),
            "app/second.yaml": cm("second", 2),
            "app/third.yaml": cm("third", 3),
        }
    )
    a = await app.create()
    op = engine.operation(a, OperationRequest())
    step = await op.step()
    assert not step.done
    assert step.state.revision == sha
    assert (step.state.sync_phase, step.state.wave) == ("Sync", 1)
    assert "wave 1 of Sync" in step.waiting_for
    assert f"Deployment.apps {app.dest}/web" in step.waiting_for
    assert await kube.get("v1", "ConfigMap", "second", app.dest) is None

    await make_ready(kube, "web", app.dest)
    step = await step_until(op, lambda s: s.done)
    assert step.state.phase == SUCCEEDED, step.state.message
    assert step.result is not None and step.result.ok
    assert applied_names(step) == [(1, "web"), (2, "second"), (3, "third")]
    assert await kube.get("v1", "ConfigMap", "third", app.dest) is not None


async def test_a_wave_that_never_gets_healthy_fails_naming_the_object(
    engine: Engine, app: AppFixture, kube: KubeClient
) -> None:
    on_fail = yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "on-fail", "annotations": {"tether.dev/hook": "SyncFail"}},
            "data": {"k": "failed"},
        }
    )
    app.repo.commit(
        {
            "app/web.yaml": unready_deployment("web", 0),
            "app/after.yaml": cm("after", 1),
            "app/on-fail.yaml": on_fail,
        }
    )
    a = await app.create()
    op = engine.operation(a, OperationRequest(), timeout=2)
    step = await run_to_end(op, kube, a)
    assert step.state.phase == FAILED
    assert "wave 0 of Sync not healthy after 2s" in step.state.message
    # The timeout is a failure: the SyncFail hook ran.
    ran = [(r.key.name, r.hook_type, r.hook_phase) for r in step.state.resources if r.hook_type]
    assert ran == [("on-fail", "SyncFail", "Succeeded")]
    assert step.state.failed_phase == "Sync"
    assert f"Deployment.apps {app.dest}/web is Progressing" in step.state.message
    assert await kube.get("v1", "ConfigMap", "after", app.dest) is None
    st = (await app.get()).status
    assert st["operationState"]["phase"] == FAILED
    assert "not healthy after 2s" in st["operationState"]["message"]


async def test_prune_runs_after_the_last_wave_in_reverse_wave_order(
    engine: Engine, app: AppFixture, kube: KubeClient
) -> None:
    app.repo.commit(
        {
            "app/keep.yaml": cm("keep", 0),
            "app/early.yaml": cm("early", 1),
            "app/late.yaml": cm("late", 2),
        }
    )
    a = await app.create()
    first = await engine.sync(a)
    assert first.ok, first.message
    app.repo.commit(
        {
            "app/keep.yaml": cm("keep", 0, {"k": "v2"}),
            "app/new.yaml": cm("new", 5),
            "app/early.yaml": None,
            "app/late.yaml": None,
        }
    )
    res = await engine.sync(await app.get(), prune=True, allow_mass_prune=True)
    assert res.ok, res.message
    order = [(r.action, r.key.name) for r in res.results if r.action != "unchanged"]
    assert order == [
        ("configured", "keep"),
        ("created", "new"),
        ("pruned", "late"),
        ("pruned", "early"),
    ]
    for name in ("early", "late"):
        gone = await kube.get("v1", "ConfigMap", name, app.dest)
        assert gone is None or gone["metadata"].get("deletionTimestamp")


async def test_a_crd_and_its_custom_resource_in_one_sync(
    engine: Engine, app: AppFixture, kube: KubeClient
) -> None:
    group = f"w{uuid.uuid4().hex[:8]}.example.com"
    crd = widget_crd(group, "widgets", "Widget")
    widget = {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {"name": "small"},
        "spec": {"size": 2},
    }
    app.repo.commit(
        {"app/crd.yaml": yaml.safe_dump(crd), "app/widget.yaml": yaml.safe_dump(widget)}
    )
    a = await app.create()
    try:
        res = await engine.sync(a)
        assert res.ok, res.message
        assert await kube.get(f"{group}/v1", "Widget", "small", app.dest) is not None
    finally:
        await kube.delete(crd["apiVersion"], crd["kind"], crd["metadata"]["name"])


async def test_a_new_engine_resumes_at_the_recorded_wave(
    engine: Engine, app: AppFixture, kube: KubeClient
) -> None:
    app.repo.commit(
        {
            "app/first.yaml": cm("first", 1),
            "app/web.yaml": unready_deployment("web", 2),
            "app/last.yaml": cm("last", 3),
        }
    )
    a = await app.create()
    op = engine.operation(a, OperationRequest(), run_by="first-engine")
    a = op.app = await claim(kube, a, op.state)
    step = await op.step()
    assert (step.state.sync_phase, step.state.wave) == ("Sync", 2), step.state.message
    assert await write_progress(kube, a, step.state) is not None

    # Wave 1 drifts by hand while wave 2 waits: a resumed operation does not apply it again.
    live_first = await kube.get("v1", "ConfigMap", "first", app.dest)
    assert live_first is not None
    await kube.merge_patch(live_first, {"data": {"k": "by hand"}})
    await make_ready(kube, "web", app.dest)

    resumed = engine.resume(await app.get())
    assert (resumed.state.wave, resumed.state.run_by) == (2, "first-engine")
    step = await step_until(resumed, lambda s: s.done)
    assert step.state.phase == SUCCEEDED, step.state.message
    assert applied_names(step) == [(1, "first"), (2, "web"), (3, "last")]
    after = await kube.get("v1", "ConfigMap", "first", app.dest)
    assert after is not None and after["data"] == {"k": "by hand"}
    assert await kube.get("v1", "ConfigMap", "last", app.dest) is not None
