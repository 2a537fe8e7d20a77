"""A sync operation that advances one step per call, from the state recorded on the Application.

``SyncOperation.step`` is called again and again — by the controller on each reconcile of an
app with a Running operation, or in a loop by ``tether app sync`` when no controller runs —
until it reports the operation ended. Each call:

1. compares the app at the operation's pinned revision (the render cache makes this cheap);
2. builds the plan (``tether.sync.tasks.build_plan``): PreSync hooks, the Sync phase's
   objects and hooks wave by wave (kind order within a wave), the prune step (reverse waves,
   ``PruneLast`` last), PostSync hooks; SyncFail hooks only after a failure;
3. takes up the plan where ``OperationState`` (``sync_phase``, ``wave``, ``pruning``, the
   hook instances in ``resources``) says it stands: applies the current wave's objects that
   differ, creates its hooks, and returns ``Step(wait=...)`` while they are not yet healthy
   (hooks: Succeeded). A wave is waited on only when something follows it. A wave done goes
   on to the next within the same call, so a sync of one wave is one call;
4. ends the operation Failed when an apply or a hook fails, or when a wave is still not
   healthy after the operation timeout (naming the object and its state), after running the
   SyncFail hooks; Failed with "terminated" when ``phase`` was set to Terminating.

The caller writes ``Step.state`` to ``status.operationState`` after each call (so a
controller restarted in the middle of wave 2 resumes at wave 2), and when ``Step.done`` the
whole status with ``Step.result`` (history, inventory; ``tether.status.write_status``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from tether.api.application import Application
from tether.compare import Comparer, Comparison
from tether.errors import PruneBlocked, TetherError
from tether.kube import KubeClient
from tether.live import LiveObjects
from tether.model import Obj, ResourceKey
from tether.project import ProjectViolation
from tether.status import (
    Condition,
    has_several_sources,
    inventory_of,
    now,
    record_outcome,
    source_revisions,
)
from tether.sync.apply import ResourceResult, SyncResult
from tether.sync.hooks import Hook, hook_of
from tether.sync.stage_run import StageRunner, Verdict
from tether.sync.state import (
    DEFAULT_TIMEOUT,
    FAILED,
    PRE_SYNC,
    RUNNING,
    SUCCEEDED,
    SYNC_FAIL,
    TERMINATING,
    OperationRequest,
    OperationState,
)
from tether.sync.tasks import Stage, build_plan, position_of, stages_of, sync_fail_plan

RECHECK = 2.0
"""Seconds between two looks at a wave that is not healthy yet, when nothing else wakes
the engine up."""


@dataclass
class Step:
    state: OperationState
    done: bool = False
    wait: float = 0.0
    """Seconds until the next call is useful (the controller also comes back earlier, on a
    live event of the app's objects)."""
    waiting_for: str = ""
    """What the operation waits for, in one line: ``wave 2: Deployment ns/web is Progressing``."""
    result: SyncResult | None = None
    """When done: the outcome, for status, history, audit and the CLI."""
    comparison: Comparison | None = None
    """The comparison this call made, folded with what it applied."""


@dataclass
class SyncOperation:
    kube: KubeClient
    comparer: Comparer
    live: LiveObjects
    app: Application
    state: OperationState
    dry_run: bool = False
    """A dry run does every wave in one call, waits for nothing, runs no hooks (they are
    listed as what would run) and records nothing."""
    timeout: float = DEFAULT_TIMEOUT
    extra: dict[str, str] = field(default_factory=dict)
    _applied: dict[ResourceKey, Obj] = field(default_factory=dict, repr=False)

    @classmethod
    def start(
        cls,
        kube: KubeClient,
        comparer: Comparer,
        live: LiveObjects,
        app: Application,
        request: OperationRequest,
        *,
        run_by: str,
        dry_run: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> SyncOperation:
        """A new operation for ``request``; its revision is pinned by the first step."""
        state = OperationState(
            operation=request,
            phase=RUNNING,
            started_at=now(),
            generation=app.generation,
            sync_phase=PRE_SYNC,
            run_by=run_by,
            first_install=not app.status.get("history") and not inventory_of(app),
        )
        return cls(kube, comparer, live, app, state, dry_run=dry_run, timeout=timeout)

    @classmethod
    def resume(
        cls,
        kube: KubeClient,
        comparer: Comparer,
        live: LiveObjects,
        app: Application,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> SyncOperation:
        """The operation recorded in ``app.status.operationState`` (Running or Terminating)."""
        recorded = app.status.get("operationState")
        if not isinstance(recorded, dict) or not recorded:
            raise TetherError(
                f"Application {app.namespace}/{app.name} has no operation to resume",
                hint="start one with 'tether app sync'",
            )
        state = OperationState.from_dict(recorded)
        if state.ended:
            raise TetherError(
                f"the operation of Application {app.namespace}/{app.name} already ended "
                f"({state.phase}: {state.message})",
                hint="start a new one with 'tether app sync'",
            )
        return cls(kube, comparer, live, app, state, timeout=timeout)

    # ---- one step -------------------------------------------------------------------------
    async def step(self, comparison: Comparison | None = None) -> Step:
        """Advances as far as it can without waiting; see the module docstring.
        ``comparison`` is one just made at the operation's revision (the controller's)."""
        st = self.state
        first = not st.checked
        self._applied.clear()  # what this step applies; earlier steps' are in ``cmp.live``
        cmp = comparison if comparison is not None else await self._compare(first)
        if st.ended:
            return Step(st, done=True, result=self._result(cmp), comparison=cmp)
        if st.phase == TERMINATING:
            return self._end(FAILED, "terminated", cmp)
        if cmp.error is not None:
            lasting = isinstance(cmp.error, ProjectViolation)  # waiting will not change it
            if not first and not lasting and self._elapsed() <= self.timeout:
                # Git or the cluster could not be read in the middle of an operation: what
                # was done stands; look again (the operation timeout bounds it).
                why = f"cannot compare: {cmp.error}"
                return Step(st, wait=RECHECK, waiting_for=why, comparison=cmp)
            return self._end(FAILED, str(cmp.error), cmp)
        if not st.revision:
            st.revision = cmp.revision
            if has_several_sources(self.app):
                st.revisions = source_revisions(cmp)
        runner = StageRunner(self.kube, self.live, self.app, st, cmp, self.dry_run, self._applied)
        try:
            if comparison is not None and first:
                await self.comparer.validate_missing(cmp)
            if first:
                refusal = await runner.preflight(self._prune_wanted())
                if refusal:
                    return self._end(FAILED, refusal, cmp)
                st.checked = True
            if st.sync_phase == SYNC_FAIL:
                return await self._run_sync_fail(runner, cmp)
            return await self._run(runner, cmp, first)
        except PruneBlocked as e:
            cmp.conditions.append(Condition("PruneBlocked", str(e)))
            return self._end(FAILED, str(e), cmp)
        except TetherError as e:
            if not any(c.message == str(e) for c in cmp.conditions):
                cmp.conditions.append(Condition("SyncError", str(e), reason=e.reason))
            return self._end(FAILED, str(e), cmp)

    async def _run(self, runner: StageRunner, cmp: Comparison, first: bool) -> Step:
        st = self.state
        stages = self._stages(cmp)
        here = position_of(st.sync_phase, st.pruning, st.wave)
        todo = [s for s in stages if first or s.position >= here]
        for i, stage in enumerate(todo):
            st.sync_phase, st.wave, st.pruning = stage.sync_phase, stage.wave, stage.pruning
            failure = await runner.run(stage)
            if failure:
                return await self._fail(runner, failure, cmp)
            last = i == len(todo) - 1
            verdict = await runner.verdict(stage, objects_too=not last and not self.dry_run)
            if verdict.failure:
                return await self._fail(runner, verdict.failure, cmp)
            if verdict.waiting and not self.dry_run:
                return await self._wait(stage, verdict, runner, cmp)
        changed = sum(1 for r in st.resources if r.action in ("created", "configured", "pruned"))
        verb = "dry run: would change" if self.dry_run else "changed"
        return self._end(
            SUCCEEDED, f"{verb} {changed} object(s)" if changed else "already in sync", cmp
        )

    async def _wait(
        self, stage: Stage, verdict: Verdict, runner: StageRunner, cmp: Comparison
    ) -> Step:
        st = self.state
        waiting = f"{stage.label()}: {verdict.waiting}"
        if self._elapsed() > self.timeout:
            # A timeout is a failure like any other: the SyncFail hooks run.
            message = f"{stage.label()} not healthy after {self.timeout:g}s: {verdict.waiting}"
            return await self._fail(runner, message, cmp)
        st.message = f"waiting for {waiting}"
        return Step(st, wait=RECHECK, waiting_for=waiting, comparison=cmp)

    async def _fail(self, runner: StageRunner, message: str, cmp: Comparison) -> Step:
        """A stage failed: the SyncFail hooks run (if any), then the operation ends Failed."""
        st = self.state
        st.message = message
        tasks = [] if self.dry_run or st.operation.resources else sync_fail_plan(self._hooks(cmp))
        if not tasks:
            return self._end(FAILED, message, cmp, condition=True)
        st.failed_phase = st.sync_phase
        st.sync_phase, st.wave, st.pruning = SYNC_FAIL, tasks[0].wave, False
        return await self._run_sync_fail(runner, cmp)

    async def _run_sync_fail(self, runner: StageRunner, cmp: Comparison) -> Step:
        st = self.state
        here = position_of(st.sync_phase, False, st.wave)
        for stage in stages_of(sync_fail_plan(self._hooks(cmp))):
            if stage.position < here:
                continue
            st.wave = stage.wave
            failure = await runner.run(stage)
            verdict = await runner.verdict(stage, objects_too=False)
            failure = failure or verdict.failure
            if failure:
                st.message = f"{st.message}; SyncFail hook failed: {failure}"
                break
            if verdict.waiting:
                # The failure may itself be the timeout: SyncFail hooks get as long again.
                if self._elapsed() > 2 * self.timeout:
                    st.message = f"{st.message}; SyncFail hooks not done in time"
                    break
                waiting = f"{stage.label()}: {verdict.waiting}"
                return Step(st, wait=RECHECK, waiting_for=waiting, comparison=cmp)
        return self._end(FAILED, st.message, cmp, condition=True)

    # ---- the plan -------------------------------------------------------------------------
    def _hooks(self, cmp: Comparison) -> list[Hook]:
        if cmp.desired is None or not cmp.desired.hooks:
            return []
        out: list[Hook] = []
        for m in cmp.desired.hooks:
            h = hook_of(m, first_install=self.state.first_install)
            if h is not None:
                out.append(h)
        return out

    def _prune_wanted(self) -> bool:
        prune = self.state.operation.prune
        return self.app.sync_policy.prune if prune is None else prune

    def _stages(self, cmp: Comparison) -> list[Stage]:
        assert cmp.desired is not None
        prune_plan = StageRunner.prune_plan_of(self.app, cmp)
        tasks = build_plan(
            cmp.desired.manifests,
            self._hooks(cmp),
            prune_plan,
            self.state.operation.resources,
            prune=self._prune_wanted(),
        )
        return stages_of(tasks)

    async def _compare(self, first: bool) -> Comparison:
        return await self.comparer.compare(self.app, self._revision() or None, validate=first)

    def _revision(self) -> str:
        """The revision to compare at: the one the operation pinned (the app's first
        rendering source's), else the one asked for."""
        st = self.state
        if not st.revision:
            return st.operation.revision
        if has_several_sources(self.app):
            for i, s in enumerate(self.app.sources):
                if s is self.app.source and i < len(st.revisions):
                    return st.revisions[i]
            return st.operation.revision
        return st.revision

    def _elapsed(self) -> float:
        try:
            started = datetime.strptime(self.state.started_at, "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            return 0.0
        return (datetime.now(UTC) - started.replace(tzinfo=UTC)).total_seconds()

    # ---- the end --------------------------------------------------------------------------
    def _end(self, phase: str, message: str, cmp: Comparison, *, condition: bool = False) -> Step:
        st = self.state
        st.phase, st.message, st.finished_at = phase, message, now()
        if (
            phase == FAILED
            and (condition or not cmp.conditions)
            and not any(c.message == message for c in cmp.conditions)
        ):
            cmp.conditions.append(Condition("SyncError", message, reason="ApplyFailed"))
        result = self._result(cmp)
        if not self.dry_run:
            record_outcome(cmp, result)
        return Step(st, done=True, result=result, comparison=cmp)

    def _result(self, cmp: Comparison) -> SyncResult:
        st = self.state
        return SyncResult(
            st.phase,
            st.message,
            st.revision or cmp.revision,
            st.started_at,
            finished_at=st.finished_at,
            target_revision=(
                st.operation.revision or cmp.target_revision or self.app.source.target_revision
            ),
            results=[
                ResourceResult(r.key, r.action, r.message, applied=self._applied.get(r.key))
                for r in st.resources
            ],
            comparison=cmp,
            dry_run=self.dry_run,
        )
