"""The plan of a sync operation: every task (apply, hook, prune) grouped into stages, in run order.

A stage is what an operation does before it may wait: one wave of one sync phase (its
objects in kind order, and its hooks), or the prune step. Stages run in this order:
PreSync hooks by wave; the Sync phase's objects and Sync hooks by wave; the prune step
(reverse waves, ``PruneLast`` last, as ``tether.sync.prune`` orders it); PostSync hooks by
wave. SyncFail hooks form a plan of their own, run only after a failure. With a
``--resource`` selection only the selected objects are applied or pruned and no hook runs
(as in Argo CD).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from tether.model import Manifest, Obj, ResourceKey
from tether.sync.hooks import Hook, HookPhase
from tether.sync.plan import sort_key, tier_of, wave_of
from tether.sync.prune import PrunePlan
from tether.sync.state import PHASE_ORDER, POST_SYNC, PRE_SYNC, SYNC, SYNC_FAIL, ResourceSelector


@dataclass(frozen=True)
class SyncTask:
    """One thing an operation does: apply an object, run a hook, or prune an object."""

    sync_phase: str
    wave: int
    key: ResourceKey
    """For a hook made from ``generateName``: its ``generateName`` as the name."""
    manifest: Manifest | None = None
    hook: Hook | None = None
    prune_obj: Obj | None = field(default=None, repr=False)
    """The live object to delete (a prune task)."""

    @property
    def is_prune(self) -> bool:
        return self.prune_obj is not None

    @property
    def tier(self) -> int:
        return tier_of(self.key.kind)


@dataclass
class Stage:
    """The tasks an operation does before it may wait."""

    sync_phase: str
    wave: int
    pruning: bool = False
    tasks: list[SyncTask] = field(default_factory=list)

    @property
    def position(self) -> tuple[int, bool, int]:
        """Orders stages the way an operation runs them."""
        return position_of(self.sync_phase, self.pruning, self.wave)

    def label(self) -> str:
        if self.pruning:
            return "prune"
        return f"wave {self.wave} of {self.sync_phase}"

    def applies(self) -> list[SyncTask]:
        return [t for t in self.tasks if t.manifest is not None and t.hook is None]

    def hooks(self) -> list[SyncTask]:
        return [t for t in self.tasks if t.hook is not None]

    def prunes(self) -> list[SyncTask]:
        return [t for t in self.tasks if t.is_prune]


def position_of(sync_phase: str, pruning: bool, wave: int) -> tuple[int, bool, int]:
    index = PHASE_ORDER.index(sync_phase) if sync_phase in PHASE_ORDER else 0
    return (index, pruning, wave if not pruning else 0)


_HOOK_PHASES = {
    HookPhase.PRE_SYNC: PRE_SYNC,
    HookPhase.SYNC: SYNC,
    HookPhase.POST_SYNC: POST_SYNC,
}


def hook_key(hook: Hook) -> ResourceKey:
    key = hook.manifest.key
    if key.name:
        return key
    return ResourceKey(key.group, key.kind, key.namespace, hook.generate_name)


def build_plan(
    manifests: list[Manifest],
    hooks: list[Hook],
    prune_plan: PrunePlan | None,
    selection: list[ResourceSelector] | None = None,
    *,
    prune: bool = True,
) -> list[SyncTask]:
    """Every task of the operation, in run order (SyncFail hooks excluded: ``sync_fail_plan``).

    ``prune_plan`` None or ``prune`` False: no prune tasks. ``selection``: only the matching
    objects, no hooks.
    """
    tasks: list[SyncTask] = []
    selected = selection or []

    def chosen(key: ResourceKey) -> bool:
        return not selected or any(s.matches(key) for s in selected)

    if not selected:
        for hook in hooks:
            for phase in sorted(hook.phases, key=lambda p: list(HookPhase).index(p)):
                if phase in _HOOK_PHASES:
                    tasks.append(
                        SyncTask(
                            _HOOK_PHASES[phase], hook.weight, hook_key(hook), hook.manifest, hook
                        )
                    )
    for m in manifests:
        if chosen(m.key):
            tasks.append(SyncTask(SYNC, wave_of(m), m.key, m))
    if prune and prune_plan is not None:
        tasks.extend(
            SyncTask(SYNC, wave_of(Manifest(obj, "", 0)), key, prune_obj=obj)
            for key, obj in prune_plan.delete
            if chosen(key)
        )
    return [t for stage in stages_of(tasks) for t in stage.tasks]


def sync_fail_plan(hooks: list[Hook]) -> list[SyncTask]:
    """The SyncFail hooks, by wave."""
    tasks = [
        SyncTask(SYNC_FAIL, h.weight, hook_key(h), h.manifest, h)
        for h in hooks
        if HookPhase.SYNC_FAIL in h.phases
    ]
    return [t for stage in stages_of(tasks) for t in stage.tasks]


def stages_of(tasks: list[SyncTask]) -> list[Stage]:
    """Groups tasks into stages in run order. Prune tasks form one stage after the Sync
    waves, kept in the order given (the prune plan's); other tasks are sorted by kind."""
    groups: dict[tuple[int, bool, int], Stage] = {}
    prunes: list[SyncTask] = []
    by_stage: dict[tuple[int, bool, int], list[SyncTask]] = defaultdict(list)
    for t in tasks:
        if t.is_prune:
            prunes.append(t)
            continue
        pos = position_of(t.sync_phase, False, t.wave)
        if pos not in groups:
            groups[pos] = Stage(t.sync_phase, t.wave)
        by_stage[pos].append(t)
    if prunes:
        pos = position_of(SYNC, True, 0)
        groups[pos] = Stage(SYNC, 0, pruning=True)
        by_stage[pos] = prunes
    out: list[Stage] = []
    for pos in sorted(groups):
        stage = groups[pos]
        if stage.pruning:
            stage.tasks = by_stage[pos]
        else:
            stage.tasks = sorted(by_stage[pos], key=_task_order)
        out.append(stage)
    return out


def _task_order(t: SyncTask) -> tuple[int, int, tuple[int, str, str, str, str]]:
    """Objects before hooks (a Sync hook sees its wave's objects), then tier and kind."""
    m = t.manifest
    return (
        1 if t.hook is not None else 0,
        t.tier,
        sort_key(m) if m is not None else (0, t.key.kind, "", "", t.key.name),
    )
