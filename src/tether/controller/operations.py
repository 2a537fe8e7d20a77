"""Running sync operations in the controller: start, take over, step, record — one step a reconcile.

An operation (``tether.sync.operation.SyncOperation``) advances one step per call. The
controller starts one for an automated sync or a request a user left in
``Application.operation`` (``tether app sync``), takes up one found Running or Terminating
in ``status.operationState`` (its own, or one left by a controller or CLI that stopped), and
calls ``step`` once per reconcile. After each step the progress is written; while the
operation waits for a wave or a hook the app is queued again after ``Step.wait`` (a live
event of its objects brings it back sooner), so no worker is held while a wave waits.
"""

from __future__ import annotations

import contextlib

from tether.api.application import Application
from tether.compare import Comparison
from tether.controller import operation
from tether.controller.policy import revisions_if_several
from tether.engine import Engine
from tether.errors import KubeError
from tether.kube import KubeClient
from tether.model import Obj
from tether.status import has_several_sources, now
from tether.sync.operation import Step, SyncOperation
from tether.sync.record import write_end
from tether.sync.state import HOOK_RUNNING, RUNNING, TERMINATING, OperationRequest, OperationState


def running(app: Application) -> OperationState | None:
    """The operation recorded on the app that has not ended (Running or Terminating)."""
    raw = app.status.get("operationState") or {}
    if raw.get("phase") not in (RUNNING, TERMINATING):
        return None
    return OperationState.from_dict(raw)


def requested(app: Application) -> OperationRequest | None:
    """A request ``tether app sync`` left on the app, not taken by any engine yet."""
    raw = app.obj.get("operation")
    if not isinstance(raw, dict) or not raw:
        return None
    return OperationRequest.from_dict(raw)


def fits(cmp: Comparison, op: SyncOperation) -> bool:
    """``cmp`` is the comparison ``op`` would make itself: at the revision it pinned or asks
    for (else the operation compares on its own)."""
    want = op.state.revision or op.state.operation.revision
    if cmp.error is not None or (want and has_several_sources(op.app)):
        return False
    return not want or want == cmp.revision


class Operations:
    """Starts, resumes and steps the operations of the apps this controller runs."""

    def __init__(self, kube: KubeClient, engine: Engine, identity: str) -> None:
        self.kube = kube
        self.engine = engine
        self.identity = identity

    async def begin(
        self, app: Application, cmp: Comparison, request: OperationRequest, *, pending: bool
    ) -> tuple[Application, SyncOperation]:
        """Claims ``request`` (``status.operationState`` Running, at the resourceVersion
        read; raises ``operation.Refused`` or ``operation.Busy``), clears it from
        ``Application.operation`` when it came from there (``pending``), and returns the
        app as written and the operation, ready for its first step."""
        # What the comparison found, when it is at the revision asked for; the operation's
        # first step pins its own either way.
        found = not request.revision or request.revision == cmp.revision
        claimed = OperationState(
            operation=request,
            phase=RUNNING,
            message="sync in progress",
            revision=cmp.revision if found else "",
            revisions=(revisions_if_several(app, cmp) or []) if found else [],
            started_at=now(),
            generation=app.generation,
            run_by=self.identity,
        )
        app = await operation.claim(self.kube, app, claimed)
        if pending:
            # A crash here leaves the request beside a Running state of the same id: the
            # next reconcile resumes that operation and clears the request then.
            cleared = await operation.clear_request(self.kube, app.obj, request.id)
            if cleared is not None:
                app = Application.from_obj(cleared)
        op = SyncOperation.start(
            self.kube,
            self.engine.comparer,
            self.engine.live,
            app,
            request,
            run_by=self.identity,
        )
        return app, op

    def resume(self, app: Application) -> SyncOperation:
        """The operation recorded on ``app``, from now on run by this controller."""
        op = SyncOperation.resume(self.kube, self.engine.comparer, self.engine.live, app)
        op.state.run_by = self.identity
        return op

    async def clear_taken(self, app: Application) -> Obj | None:
        """Clears a request that the Running operation already is (claimed, then a crash
        before the request was cleared)."""
        state, request = running(app), requested(app)
        if state is None or request is None or state.operation.id != request.id:
            return None
        return await operation.clear_request(self.kube, app.obj, request.id)

    async def step(
        self, app: Application, op: SyncOperation, cmp: Comparison | None
    ) -> tuple[Step, Application]:
        """One step, and the record of its progress (at the resourceVersion the step started
        from, so a Terminating written meanwhile is not overwritten). Once done the caller
        writes the whole status with ``record_end``, after adding its own conditions."""
        step = await op.step(cmp if cmp is not None and fits(cmp, op) else None)
        if step.done:
            return step, app
        await self._watch_hooks(step.state)
        written = await operation.write_progress(self.kube, app, step.state)
        if written is None:
            # Terminated (or replaced) while this step ran: the next step starts from
            # what is recorded now, at once.
            return Step(step.state, wait=0.0, waiting_for="the recorded operation"), app
        return step, written

    async def _watch_hooks(self, state: OperationState) -> None:
        """The live cache watches the kinds of the hooks running, so a hook's end (a Job
        completing) brings the app back at once rather than at the next look."""
        cache = self.engine.cache
        if cache is None:
            return
        for rec in state.resources:
            if rec.hook_phase != HOOK_RUNNING or not rec.version:
                continue
            api_version = f"{rec.key.group}/{rec.version}" if rec.key.group else rec.version
            with contextlib.suppress(KubeError):  # not allowed to watch it: looked at anyway
                await cache.ensure(api_version, rec.key.kind)

    async def record_end(self, app: Application, step: Step) -> Application:
        return await write_end(self.kube, app, step)
