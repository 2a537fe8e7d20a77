"""What a reconcile does once it has compared an app: go on with the running operation,
take a user's request, start an automated sync when the policy says one is due, or else
write the status (only when it changed). One step of an operation at a time: while it waits
(a wave not healthy yet, a hook running), the app is queued again and no worker is held.

``Controller.reconcile`` compares; ``Acting.act`` decides and does. The operation's own steps
are ``controller.operations``; what is reported about them, ``controller.outcomes``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tether.api.application import Application
from tether.controller import operation, operations, policy, selfheal
from tether.controller.requested_by import AUTOMATED_BY
from tether.engine import Comparison, Condition, Engine
from tether.errors import KubeError
from tether.model import Obj, ResourceKey
from tether.sync.state import CLI_GRACE, OperationRequest

if TYPE_CHECKING:
    from tether.controller.app_store import AppStore
    from tether.controller.controller import ControllerOptions
    from tether.controller.dependencies import DependencyGate
    from tether.controller.finalizer import AppFinalizer
    from tether.controller.outcomes import Outcomes
    from tether.controller.outlets import AppLog, Outlets
    from tether.controller.pinning import Pins
    from tether.controller.queue import WorkQueue
    from tether.controller.state import AppState
    from tether.sync.operation import SyncOperation


class Acting:
    """The controller's decisions after a comparison, with its collaborators. ``store`` keeps
    an Application the API server returned (the controller's map of apps); ``leave_alone``
    marks an app being deleted as not to be synced."""

    def __init__(
        self,
        *,
        engine: Engine,
        opts: ControllerOptions,
        out: Outlets,
        outcomes: Outcomes,
        ops: operations.Operations,
        pins: Pins,
        queue: WorkQueue,
        deps: DependencyGate,
        finalizer: AppFinalizer,
        apps: AppStore,
        store: Callable[[Obj], None],
        leave_alone: Callable[[Obj, AppState, str], None],
    ) -> None:
        self.engine = engine
        self.opts = opts
        self.out = out
        self.outcomes = outcomes
        self.ops = ops
        self.pins = pins
        self.queue = queue
        self.deps = deps
        self.finalizer = finalizer
        self.apps = apps
        self._store = store
        self._leave_alone = leave_alone

    async def act(
        self,
        app: Application,
        cmp: Comparison,
        st: AppState,
        reasons: set[str],
        drifted: list[ResourceKey],
        logx: AppLog,
    ) -> None:
        """After the comparison: step the running operation, else take a request, else
        start an automated sync if one is due, else only write the status."""
        key = (app.namespace, app.name)
        # An operation the CLI ran with no controller is audited before anything new starts
        # (a new operation would replace the record of it in status).
        with contextlib.suppress(KubeError):
            await self.outcomes.catch_up_cli(app)
        current = operations.running(app)
        if current is not None and current.held_by_live_cli(datetime.now(UTC)):
            # ``tether app sync`` runs it in its own process and is alive: leave it be, and
            # take it up only if its heartbeat stops (the command was killed).
            self.queue.add(key, "operation", delay=CLI_GRACE / 3)
            return
        if current is not None:
            # One operation at a time: this one (ours, or left by an engine that stopped)
            # goes on; a pending request and automated syncs wait for it to end.
            cleared = await self.ops.clear_taken(app)
            if cleared is not None:
                app = Application.from_obj(cleared)
                self._store(cleared)
            await self._advance(app, cmp, st, self.ops.resume(app), logx)
            return
        request = operations.requested(app)
        if request is not None:
            refused = await self.pins.refuse(app, request)
            if refused is not None:  # a sync to another revision than the pinned one
                self._store(refused)
                await self.finish(Application.from_obj(refused), cmp, st)
                return
            await self._start(app, cmp, st, request, logx, pending=True)
            return
        trigger = policy.due_trigger(app, cmp, st, policy.main_reason(reasons), drifted)
        if self.deps.hold(app, cmp, wants_sync=bool(trigger)):
            trigger = ""  # a dependency is not ready, or dependsOn has a cycle
        trigger = policy.window_hold(
            app, cmp, trigger, lambda d: self.queue.add(key, "window", delay=d), logx
        )
        if trigger:
            auto = await self._automated_request(app, cmp, st, trigger, drifted)
            if auto is not None:
                await self._start(app, cmp, st, auto, logx, pending=False)
                return
        await self.finish(app, cmp, st)

    async def _automated_request(
        self,
        app: Application,
        cmp: Comparison,
        st: AppState,
        trigger: str,
        drifted: list[ResourceKey],
    ) -> OperationRequest | None:
        """The request of an automated sync, or None when self-heal gave up on every
        drifted object."""
        skip: set[ResourceKey] = set()
        if trigger == "self-heal":
            skip = await selfheal.stop_fighting(
                self.out,
                app,
                cmp,
                st,
                drifted,
                limit=self.opts.fight_limit,
                window=self.opts.fight_window,
            )
            if set(drifted) <= skip:
                return None
        return OperationRequest(
            trigger=trigger,
            initiated_by=AUTOMATED_BY,
            # The app's own targetRevision (history shows what was asked, e.g. HEAD); the
            # comparison just made is handed to the first step, which pins its commit.
            revision="",
            prune=app.sync_policy.prune,
            skip=sorted(skip),
        )

    async def _start(
        self,
        app: Application,
        cmp: Comparison,
        st: AppState,
        request: OperationRequest,
        logx: AppLog,
        *,
        pending: bool,
    ) -> None:
        """Claims a new operation and takes its first step."""
        try:
            app, op = await self.ops.begin(app, cmp, request, pending=pending)
        except operation.Refused as e:
            self._leave_alone(e.obj or app.obj, st, e.why)
            return
        except operation.Busy:
            # Another engine started one meanwhile (a CLI, as no controller was seen):
            # the next reconcile takes it up.
            self.queue.add((app.namespace, app.name), "operation", delay=1.0)
            return
        self._store(app.obj)
        # The SyncStarted Event is written beside the first step, not before it: the sync
        # does not wait for it, and the reconcile ends only once it is written.
        started = asyncio.create_task(
            self.outcomes.started(app, request.trigger, cmp.revision, logx)
        )
        try:
            await self._advance(app, cmp, st, op, logx)
        finally:
            await started

    async def _advance(
        self, app: Application, cmp: Comparison, st: AppState, op: SyncOperation, logx: AppLog
    ) -> None:
        """One step of ``op``; while it waits the app is queued again, never a worker held."""
        key = (app.namespace, app.name)
        step, app = await self.ops.step(app, op, cmp)
        self._store(app.obj)
        if not step.done:
            self.queue.add(key, "operation", delay=step.wait)
            return
        request = step.state.operation
        trigger = request.trigger
        res = step.result
        end_cmp = step.comparison or cmp
        automated = request.initiated_by == AUTOMATED_BY
        failures = 0
        if res is not None and (res.ok or automated):
            failures = policy.count_outcome(app, end_cmp, st, res.ok)
        end_cmp.conditions.extend(self.conditions(app, end_cmp, st))
        self.deps.hold(app, end_cmp, wants_sync=False)
        try:
            written = await self.ops.record_end(app, step)
        except KubeError as e:
            if e.status != 404:
                raise
            return  # the Application was deleted meanwhile: nothing to write to
        self._store(written.obj)
        if res is None:
            return
        await self.outcomes.finished(app, end_cmp, st, trigger, res, request)
        if failures:
            delay = policy.retry_delay(app, failures)
            if delay is not None:
                logx.warning(
                    "sync failed (attempt %d): %s; retrying in %.0fs", failures, res.message, delay
                )
                self.queue.add(key, "retry", delay=delay)
            else:
                revision = res.revision or end_cmp.revision
                await self.outcomes.give_up(app, revision, failures, res.message, logx)
        await self.outcomes.health(app, end_cmp, st)
        if operations.requested(written) is not None:
            self.queue.add(key, "operation")  # a request waited for this one to end

    def conditions(self, app: Application, cmp: Comparison, st: AppState) -> list[Condition]:
        """The controller's own conditions of an app, beside the comparison's."""
        out = selfheal.fighting_conditions(cmp, st) + self.finalizer.conditions(app.obj)
        pinned = self.pins.condition(app, st.pin)
        if pinned is not None:
            out.append(pinned)
        exhausted = policy.retries_exhausted(app, cmp, st)
        if exhausted is not None:
            out.append(exhausted)
        return out

    async def finish(self, app: Application, cmp: Comparison, st: AppState) -> None:
        """Status of a reconcile that ran no operation (written only when it changed)."""
        cmp.conditions.extend(self.conditions(app, cmp, st))
        await self.outcomes.health(app, cmp, st)
        latest = Application.from_obj(self.apps.get((app.namespace, app.name), app.obj))
        try:
            out = await self.engine.write_status(latest, cmp, None, only_if_changed=True)
        except KubeError as e:
            if e.status == 404:
                return  # the Application was deleted meanwhile: nothing to write to
            raise
        if out is not None:
            self._store(out)
