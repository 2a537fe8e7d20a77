"""Running one stage of a sync operation: the checks before the first one, applying a wave's
objects, creating its hooks, pruning, and judging whether the stage is done.

Everything done is recorded in the ``OperationState`` (one ``TaskRecord`` per object, hook
instance or prune), so a stage taken up again after a restart does not redo what it did.
"""

from __future__ import annotations

from dataclasses import dataclass

from tether.api.application import Application
from tether.compare import Comparison
from tether.errors import PruneBlocked
from tether.health import assess
from tether.kube import KubeClient
from tether.kube.client import split_api_version
from tether.live import LiveObjects
from tether.model import HealthStatus, Manifest, Obj, ResourceDiffStatus, ResourceKey
from tether.status import inventory_of
from tether.sync.apply import Applier, ResourceResult, refuse_shared
from tether.sync.hook_run import HookRunner
from tether.sync.namespaces import creates_destination
from tether.sync.options import FAIL_ON_SHARED, SyncOptions
from tether.sync.prune import PrunePlan, check_prune_safety, plan_prune
from tether.sync.state import (
    HOOK_FAILED,
    HOOK_RUNNING,
    RES_PRUNE_SKIPPED,
    RES_PRUNED,
    RES_SYNC_FAILED,
    RES_SYNCED,
    SYNC,
    OperationState,
    TaskRecord,
)
from tether.sync.tasks import Stage, SyncTask

APPLIED = ("created", "configured")


@dataclass
class Verdict:
    waiting: str = ""
    """What the stage still waits for ("" when done)."""
    failure: str = ""


class StageRunner:
    """Runs stages for one step of an operation, against one comparison."""

    def __init__(
        self,
        kube: KubeClient,
        live: LiveObjects,
        app: Application,
        state: OperationState,
        cmp: Comparison,
        dry_run: bool,
        applied: dict[ResourceKey, Obj],
    ) -> None:
        self.kube = kube
        self.app = app
        self.state = state
        self.cmp = cmp
        self.dry_run = dry_run
        self.applied = applied
        self.applier = Applier(kube, live)
        self.options = SyncOptions(app.sync_policy.sync_options)

    @staticmethod
    def prune_plan_of(app: Application, cmp: Comparison) -> PrunePlan:
        assert cmp.desired is not None
        desired = {m.key for m in cmp.desired.manifests}
        return plan_prune(app, set(inventory_of(app)), desired, cmp.live)

    # ---- before anything is applied ------------------------------------------------------
    async def preflight(self, prune: bool) -> str:
        """The refusals a sync makes before it applies anything (a failure message, or "");
        creates the destination namespace when asked."""
        cmp, app = self.cmp, self.app
        assert cmp.desired is not None
        inventory = set(inventory_of(app))
        allow_mass = self.state.operation.allow_mass_prune
        if (
            not cmp.desired.manifests
            and inventory
            and not app.sync_policy.allow_empty
            and not allow_mass
        ):
            raise PruneBlocked(
                f"the render of {app.source.path} at {cmp.revision[:10]} is empty while "
                f"the app owns {len(inventory)} object(s); refusing to treat that as "
                "'delete all'",
                hint="check spec.source.path, or sync with --allow-mass-prune",
            )
        plan = self.prune_plan_of(app, cmp)
        if prune:
            check_prune_safety(plan, inventory, allow_mass_prune=allow_mass)
        for key, why in plan.keep:
            self._record(ResourceResult(key, "kept", why), SYNC, 0)
        if not prune:
            for key, _ in plan.delete:
                why = "left Git; sync with prune to delete it"
                self._record(ResourceResult(key, "skipped", why), SYNC, 0)
        if cmp.shared and self.options.enabled(FAIL_ON_SHARED):
            results, message = refuse_shared(cmp)
            for r in results:
                self._record(r, SYNC, 0)
            return message
        refused = await self.applier.refuse_missing_namespaces(app, cmp)
        if refused:
            for r in refused:
                self._record(r, SYNC, 0)
            return cmp.conditions[-1].message
        if creates_destination(app):
            created = await self.applier.create_namespace(app, self.dry_run)
            if created is not None:
                self._record(created, SYNC, 0)
        return ""

    # ---- doing a stage -------------------------------------------------------------------
    async def run(self, stage: Stage) -> str:
        """Does what the stage has not done yet; a failure message, or ""."""
        if stage.pruning:
            return await self._prune(stage.prunes())
        failure = await self._apply(stage)
        if failure:
            return failure
        return await self._start_hooks(stage.hooks())

    async def _apply(self, stage: Stage) -> str:
        tiers: dict[int, list[SyncTask]] = {}
        for t in stage.applies():
            tiers.setdefault(t.tier, []).append(t)
        skip = set(self.state.operation.skip)
        for tier in sorted(tiers):
            todo: list[Manifest] = []
            for t in tiers[tier]:
                assert t.manifest is not None
                done = self._record_of(t.key, SYNC)
                if done is not None and done.action in APPLIED:
                    continue  # applied by this operation already (a resumed stage)
                st = self.cmp.resources.get(t.key)
                if st is not None and st.diff.status == ResourceDiffStatus.SYNCED:
                    self._record(ResourceResult(t.key, "unchanged"), SYNC, stage.wave, t.manifest)
                elif t.key in skip:
                    why = "self-heal stopped for this object"
                    self._record(ResourceResult(t.key, "skipped", why), SYNC, stage.wave)
                else:
                    todo.append(t.manifest)
            if not todo:
                continue
            outcomes = await self.applier.apply_all(
                todo, self.cmp, self.options, dry_run=self.dry_run
            )
            for m, r in zip(todo, outcomes, strict=True):
                self._record(r, SYNC, stage.wave, m)
            failures = [r for r in outcomes if r.action == "failed"]
            if failures:
                return f"{failures[0].key}: {failures[0].message}"
            if not self.dry_run:
                await self.applier.wait_for_kinds(todo)
        return ""

    async def _prune(self, tasks: list[SyncTask]) -> str:
        for t in tasks:
            assert t.prune_obj is not None
            done = self._record_of(t.key, SYNC)
            if done is not None and done.action == "pruned":
                continue
            r = await self.applier.prune_one(t.key, t.prune_obj, self.options, dry_run=self.dry_run)
            self._record(r, SYNC, t.wave, obj=t.prune_obj)
            if r.action == "failed":
                return f"{t.key}: {r.message}"
        return ""

    async def _start_hooks(self, tasks: list[SyncTask]) -> str:
        for t in tasks:
            assert t.hook is not None
            if self._hook_record(t) is not None:
                continue
            runner = HookRunner(self.kube, self.app)
            rec = await runner.start(t.hook, t.sync_phase, t.wave, dry_run=self.dry_run)
            self.state.record(rec)
            if rec.hook_phase == HOOK_FAILED:
                return f"{t.sync_phase} hook {rec.key} failed: {rec.message}"
        return ""

    # ---- is it done? ---------------------------------------------------------------------
    async def verdict(self, stage: Stage, *, objects_too: bool) -> Verdict:
        """Whether the stage is done: its hooks Succeeded and (``objects_too``) its objects
        Healthy or Suspended. A Degraded object or a failed hook fails it."""
        waiting: list[str] = []
        if objects_too and not stage.pruning:
            skipped = set(self.state.operation.skip)
            for t in stage.applies():
                if t.key in skipped:
                    continue
                obj = self.applied.get(t.key) or self.cmp.live.get(t.key)
                if obj is None:
                    waiting.append(f"{t.key} is Missing")
                    continue
                h = assess(obj)
                if h is None or h.status in (HealthStatus.HEALTHY, HealthStatus.SUSPENDED):
                    continue
                said = f"{t.key} is {h.status.value}" + (f": {h.message}" if h.message else "")
                if h.status == HealthStatus.DEGRADED:
                    return Verdict(failure=f"{stage.label()}: {said}")
                waiting.append(said)
        if not self.dry_run:
            failure = await self._observe_hooks(stage.hooks(), waiting)
            if failure:
                return Verdict(failure=failure)
        return Verdict(waiting="; ".join(waiting))

    async def _observe_hooks(self, tasks: list[SyncTask], waiting: list[str]) -> str:
        for t in tasks:
            rec = self._hook_record(t)
            if rec is None:
                continue
            if rec.hook_phase == HOOK_RUNNING:
                rec = await HookRunner(self.kube, self.app).observe(rec)
                self.state.record(rec)
            if rec.hook_phase == HOOK_FAILED:
                return f"{t.sync_phase} hook {rec.key} failed: {rec.message}"
            if rec.hook_phase == HOOK_RUNNING:
                waiting.append(
                    f"hook {rec.key} is Running" + (f": {rec.message}" if rec.message else "")
                )
        return ""

    # ---- records -------------------------------------------------------------------------
    def _record_of(self, key: ResourceKey, sync_phase: str) -> TaskRecord | None:
        for r in self.state.resources:
            if r.key == key and r.sync_phase == sync_phase and not r.hook_type:
                return r
        return None

    def _hook_record(self, t: SyncTask) -> TaskRecord | None:
        """The instance this operation created for the hook task, if any."""
        assert t.hook is not None
        prefix = t.hook.generate_name
        for r in self.state.resources:
            if (
                r.hook_type
                and r.sync_phase == t.sync_phase
                and r.key.kind == t.key.kind
                and r.key.group == t.key.group
                and r.key.namespace == t.key.namespace
                and (r.key.name == t.key.name or (prefix and r.key.name.startswith(prefix)))
            ):
                return r
        return None

    def _record(
        self,
        r: ResourceResult,
        sync_phase: str,
        wave: int,
        m: Manifest | None = None,
        *,
        obj: Obj | None = None,
    ) -> None:
        if r.applied is not None:
            self.applied[r.key] = r.applied
        status = {
            "created": RES_SYNCED,
            "configured": RES_SYNCED,
            "unchanged": RES_SYNCED,
            "failed": RES_SYNC_FAILED,
            "pruned": RES_PRUNED,
            "kept": RES_PRUNE_SKIPPED,
        }.get(r.action, "")
        source = obj if obj is not None else (m.obj if m is not None else None)
        self.state.record(
            TaskRecord(
                r.key,
                sync_phase,
                wave,
                r.action,
                status=status,
                message=r.message,
                version=_version(source) if source is not None else "",
            )
        )


def _version(obj: Obj) -> str:
    return split_api_version(str(obj.get("apiVersion") or "v1"))[1]
