"""The plan of a sync operation: stages in run order, kind order within a wave, prune after the
Sync waves in reverse wave order, hooks by phase and wave, SyncFail apart, and a --resource
selection (pure logic)."""

from __future__ import annotations

import pytest

from tether.model import Manifest, Obj, ResourceKey
from tether.sync.hooks import DeletePolicy, Hook, HookPhase
from tether.sync.prune import PrunePlan
from tether.sync.state import POST_SYNC, PRE_SYNC, SYNC, SYNC_FAIL, ResourceSelector
from tether.sync.tasks import SyncTask, build_plan, stages_of, sync_fail_plan

pytestmark = pytest.mark.unit

NS = "shop"


def obj(kind: str, name: str, wave: int | None = None, api: str = "v1") -> Obj:
    meta: dict[str, object] = {"name": name, "namespace": NS}
    if wave is not None:
        meta["annotations"] = {"tether.dev/sync-wave": str(wave)}
    return {"apiVersion": api, "kind": kind, "metadata": meta}


def m(kind: str, name: str, wave: int | None = None, api: str = "v1") -> Manifest:
    return Manifest(obj(kind, name, wave, api))


def hook(name: str, *phases: HookPhase, weight: int = 0, generate: bool = False) -> Hook:
    o: Obj = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"namespace": NS}}
    o["metadata"]["generateName" if generate else "name"] = name
    return Hook(
        Manifest(o),
        frozenset(phases),
        ",".join(p.value for p in phases),
        frozenset({DeletePolicy.BEFORE_HOOK_CREATION}),
        weight,
    )


def names(tasks: list[SyncTask]) -> list[tuple[str, int, str, str]]:
    return [
        (
            t.sync_phase,
            t.wave,
            "prune" if t.is_prune else ("hook" if t.hook else "apply"),
            t.key.name,
        )
        for t in tasks
    ]


def test_waves_in_order_and_kinds_in_order_within_a_wave() -> None:
    plan = build_plan(
        [
            m("Deployment", "web", 1, "apps/v1"),
            m("ConfigMap", "late", 2),
            m("Service", "web"),
            m("ConfigMap", "config"),
            m("Namespace", "extra"),
            m("ConfigMap", "early", -1),
        ],
        [],
        None,
    )
    assert names(plan) == [
        (SYNC, -1, "apply", "early"),
        (SYNC, 0, "apply", "extra"),
        (SYNC, 0, "apply", "config"),
        (SYNC, 0, "apply", "web"),
        (SYNC, 1, "apply", "web"),
        (SYNC, 2, "apply", "late"),
    ]


def test_hooks_by_phase_and_wave_around_the_sync_and_its_prune() -> None:
    prune = PrunePlan(
        delete=[
            (ResourceKey("", "ConfigMap", NS, "old-late"), obj("ConfigMap", "old-late", 3)),
            (ResourceKey("", "ConfigMap", NS, "old-early"), obj("ConfigMap", "old-early", 1)),
        ]
    )
    plan = build_plan(
        [m("ConfigMap", "config", 1)],
        [
            hook("migrate", HookPhase.PRE_SYNC, weight=2),
            hook("backup", HookPhase.PRE_SYNC, weight=-1),
            hook("smoke", HookPhase.POST_SYNC),
            hook("during", HookPhase.SYNC, weight=1),
            hook("both", HookPhase.PRE_SYNC, HookPhase.POST_SYNC, weight=5),
            hook("cleanup", HookPhase.SYNC_FAIL),
            hook("never", HookPhase.SKIP),
        ],
        prune,
    )
    assert names(plan) == [
        (PRE_SYNC, -1, "hook", "backup"),
        (PRE_SYNC, 2, "hook", "migrate"),
        (PRE_SYNC, 5, "hook", "both"),
        (SYNC, 1, "apply", "config"),
        (SYNC, 1, "hook", "during"),
        (SYNC, 3, "prune", "old-late"),
        (SYNC, 1, "prune", "old-early"),
        (POST_SYNC, 0, "hook", "smoke"),
        (POST_SYNC, 5, "hook", "both"),
    ]
    stages = stages_of(plan)
    assert [s.label() for s in stages] == [
        "wave -1 of PreSync",
        "wave 2 of PreSync",
        "wave 5 of PreSync",
        "wave 1 of Sync",
        "prune",
        "wave 0 of PostSync",
        "wave 5 of PostSync",
    ]


def test_sync_fail_hooks_form_a_plan_of_their_own() -> None:
    hooks = [
        hook("page", HookPhase.SYNC_FAIL, weight=1),
        hook("note-", HookPhase.SYNC_FAIL, generate=True),
        hook("smoke", HookPhase.POST_SYNC),
    ]
    assert names(sync_fail_plan(hooks)) == [
        (SYNC_FAIL, 0, "hook", "note-"),
        (SYNC_FAIL, 1, "hook", "page"),
    ]


def test_no_prune_when_not_asked() -> None:
    prune = PrunePlan(delete=[(ResourceKey("", "ConfigMap", NS, "old"), obj("ConfigMap", "old"))])
    plan = build_plan([m("ConfigMap", "config")], [], prune, prune=False)
    assert names(plan) == [(SYNC, 0, "apply", "config")]


def test_a_resource_selection_applies_and_prunes_only_what_it_names_and_runs_no_hook() -> None:
    prune = PrunePlan(
        delete=[
            (ResourceKey("", "ConfigMap", NS, "old"), obj("ConfigMap", "old")),
            (ResourceKey("", "ConfigMap", NS, "gone"), obj("ConfigMap", "gone")),
        ]
    )
    selection = [
        ResourceSelector.parse(":ConfigMap:config"),
        ResourceSelector.parse(f":ConfigMap:{NS}/gone"),
    ]
    plan = build_plan(
        [m("ConfigMap", "config"), m("ConfigMap", "other"), m("Deployment", "web", 0, "apps/v1")],
        [hook("migrate", HookPhase.PRE_SYNC)],
        prune,
        selection,
    )
    assert names(plan) == [(SYNC, 0, "apply", "config"), (SYNC, 0, "prune", "gone")]
