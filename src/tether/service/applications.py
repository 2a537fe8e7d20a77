"""The application service: what a person can ask of Applications (list, get, diff, sync,
terminate an operation, wait), for the ``tether`` command and the HTTP API. Following an
operation and waiting on an app through its status is ``tether.service.follow``, which the
command's ``--server`` mode uses too, reading through the HTTP API.

It prints nothing and returns typed results; a refusal is a ``TetherError`` with a hint.

A sync that is not a dry run is an *operation*. When a controller is running for the
Application's namespace, the request is recorded on the Application (``operation``, as Argo CD
does) and the controller runs it: one engine writes the status, so nothing races. Only when no
controller is running does the service run the operation itself, in this process. Either way
the outcome says who ran it.
"""

from __future__ import annotations

import builtins
import getpass
import socket
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tether.api.application import Application
from tether.engine import Engine
from tether.errors import KubeError, TetherError
from tether.model import Obj
from tether.service import running
from tether.service.follow import (
    POLL,
    Progress,
    follow_operation,
    progress_line,
    state_of,
    until_stopped,
    wait_for,
    wait_health_in_status,
)
from tether.service.reading import list_apps, read_app
from tether.service.results import (
    OperationInProgress,
    SyncOutcome,
    SyncRequest,
    SyncRequested,
    WaitResult,
    WaitTimedOut,
)
from tether.service.view import AppView, view_of_comparison, view_of_status
from tether.sync.state import (
    DEFAULT_TIMEOUT,
    ENDED,
    FAILED,
    RUNNING,
    TERMINATING,
    OperationRequest,
    OperationState,
)

if TYPE_CHECKING:
    from tether.compare import Comparison
    from tether.kube import KubeClient

PATCH_ATTEMPTS = 3


async def active_controller(kube: KubeClient, namespace: str) -> str | None:
    """``tether.controller.presence.active_controller``, imported when a sync, a wait or a
    terminate asks: it brings the controller's leader election and metrics, which a diff
    does not need."""
    from tether.controller.presence import active_controller as running_for

    return await running_for(kube, namespace)


def who_asks() -> str:
    """``user@host``: who asked for a sync, as recorded in ``operation.initiatedBy``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no $USER (a bare container)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class ApplicationService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.kube = engine.kube

    # ---- reading ---------------------------------------------------------------------
    async def list(self, namespace: str) -> list[Obj]:
        return await list_apps(self.kube, namespace)

    async def get(self, name: str, namespace: str) -> Application:
        return await read_app(self.kube, name, namespace)

    async def diff(self, name: str, namespace: str, revision: str | None = None) -> Comparison:
        """The comparison of the app with Git (at ``revision`` if given); raises its error."""
        cmp = await self.engine.compare(await self.get(name, namespace), revision)
        if cmp.error is not None:
            raise cmp.error
        return cmp

    # ---- sync ------------------------------------------------------------------------
    async def sync(
        self,
        req: SyncRequest,
        *,
        dry_run: bool = False,
        timeout: float = 120.0,
        progress: Progress | None = None,
        trigger: str = "manual",
        initiated_by: str = "",
        prune_by_policy: bool = False,
    ) -> SyncOutcome:
        """Syncs the app; see the module docstring for who runs it.

        ``timeout`` bounds the whole command: the operation (its waves and hooks) and then
        the wait for health; 0 means the operation's default timeout and no wait for health.
        ``trigger`` and ``initiated_by`` are recorded on the operation (a rollback passes
        ``rollback`` and the user it wrote the commit for; default: a manual sync by
        ``who_asks()``). ``prune_by_policy``: unless ``req.prune``, prune as the app's
        ``syncPolicy.automated.prune`` says (a rollback deploys like auto-sync would).
        """
        say = progress or (lambda _line: None)
        deadline = time.monotonic() + (timeout if timeout > 0 else DEFAULT_TIMEOUT)
        app = await self.get(req.name, req.namespace)
        if dry_run:
            return await running.dry_run(self.engine, app, req)
        request, notices = await self._checked_request(
            app, req, trigger, initiated_by, prune_by_policy
        )
        controller = await active_controller(self.kube, req.namespace)
        if controller:
            app = await self._record_request(app, request)
            say(f"sync requested; controller {controller} runs it")
            outcome = await follow_operation(
                self._read, app.name, app.namespace, request.id, controller, deadline, say
            )
        else:
            refuse_running(app)
            say(f"no controller is running for namespace {req.namespace}: syncing here")
            outcome = await running.run_here(
                self.engine, app, request, deadline - time.monotonic(), say
            )
        outcome.notices = notices
        if outcome.ok and timeout > 0:
            await self._wait_health(app, outcome, deadline, say)
        return outcome

    async def request_sync(
        self,
        req: SyncRequest,
        *,
        trigger: str = "manual",
        initiated_by: str = "",
        prune_by_policy: bool = False,
    ) -> SyncRequested:
        """Records a sync request for the controller and returns at once (the HTTP API's
        ``POST .../sync``): the same checks as ``sync``; the caller follows the operation by
        its id in ``status.operationState``. Raises TetherError when no controller runs for
        the namespace, since nothing would take the request up."""
        app = await self.get(req.name, req.namespace)
        request, notices = await self._checked_request(
            app, req, trigger, initiated_by, prune_by_policy
        )
        controller = await active_controller(self.kube, req.namespace)
        if not controller:
            raise TetherError(
                f"no controller is running for namespace {req.namespace}",
                hint="start one that watches this namespace, or sync with 'tether app sync' "
                "against the Kubernetes API",
            )
        await self._record_request(app, request)
        return SyncRequested(request=request, controller=controller, notices=notices)

    async def _checked_request(
        self,
        app: Application,
        req: SyncRequest,
        trigger: str,
        initiated_by: str,
        prune_by_policy: bool,
    ) -> tuple[OperationRequest, builtins.list[str]]:
        """The operation a sync request becomes, once windows, dependencies and a pin let it
        run; with the notices to print (a window overridden)."""
        from tether.controller.windows import check_manual_sync  # a sync's, not a diff's

        notices: builtins.list[str] = []
        overridden = check_manual_sync(
            req.name, await self.engine.sync_windows(app), datetime.now(UTC), req.force_window
        )
        if overridden:
            notices.append(f"--force-window: {overridden}")
        from tether.controller.dependencies import refuse_unready
        from tether.pin import refuse_unpinned_revision

        await refuse_unready(self.kube, app, ignore_readiness=req.ignore_dependencies)
        await refuse_unpinned_revision(self.engine, app, req.revision)
        request = OperationRequest(
            trigger=trigger,
            initiated_by=initiated_by or who_asks(),
            revision=req.revision,
            prune=None if prune_by_policy and not req.prune else req.prune,
            resources=list(req.resources),
            allow_mass_prune=req.allow_mass_prune,
        )
        return request, notices

    async def _record_request(self, app: Application, request: OperationRequest) -> Application:
        """Writes ``operation`` on the Application, at the resourceVersion just checked, so
        an operation that began meanwhile is seen rather than queued behind unknowingly.
        The controller takes a new request as a hard refresh: a manual sync deploys the
        branch's tip as Git has it now, not as the controller last polled it."""
        for attempt in range(PATCH_ATTEMPTS):
            refuse_running(app)
            patch = {
                "metadata": {"resourceVersion": app.obj["metadata"]["resourceVersion"]},
                "operation": request.to_dict(),
            }
            try:
                return Application.from_obj(await self.kube.merge_patch(app.obj, patch))
            except KubeError as e:
                if e.status != 409 or attempt == PATCH_ATTEMPTS - 1:
                    raise
            app = await self.get(app.name, app.namespace)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _wait_health(
        self, app: Application, outcome: SyncOutcome, deadline: float, say: Progress
    ) -> None:
        """After a sync that succeeded: until the app is healthy (or Degraded), or the
        deadline. A controller keeps the status current; with none, this process compares
        and writes the status itself, as it ran the sync."""
        left = max(deadline - time.monotonic(), 1.0)
        say(f"waiting up to {left:.0f}s for {app.name} to become healthy")
        if not outcome.by_controller:
            fresh = await self.get(app.name, app.namespace)
            cmp = await self.engine.wait_healthy(fresh, left, revision=outcome.revision)
            await self.engine.write_status(fresh, cmp)
            outcome.sync_status = cmp.sync_status.value
            outcome.health_status = cmp.health.status.value
            outcome.health_message = cmp.health.message
            outcome.waited_for_health = True
            return
        await wait_health_in_status(self._read, app.name, app.namespace, outcome, deadline)

    # ---- terminate -------------------------------------------------------------------
    async def terminate(
        self, name: str, namespace: str, *, wait: bool = True, timeout: float = 60.0
    ) -> OperationState:
        """Stops the running operation: marks it Terminating (the engine running it ends it
        Failed, "terminated", at its next step) and, with ``wait``, waits until it ended. A
        request no engine has taken up yet is withdrawn instead."""
        obj = await self._read(name, namespace)
        state = state_of(obj)
        if state is None or state.phase not in (RUNNING, TERMINATING):
            if obj.get("operation"):
                return await self._withdraw(obj)
            last = f" (the last one {state.phase}: {state.message})" if state else ""
            raise TetherError(
                f"no operation is running on Application {namespace}/{name}{last}",
                hint=f"see its state with 'tether app get {name}'",
            )
        if state.phase == RUNNING:
            obj = await self.kube.patch_status(obj, {"operationState": {"phase": TERMINATING}})
        if not wait:
            return state_of(obj) or state
        obj, now_state = await until_stopped(
            self._read, name, namespace, time.monotonic() + timeout
        )
        if now_state is None or now_state.phase in ENDED:
            return now_state or state
        return await self._end_abandoned(Application.from_obj(obj), now_state, timeout)

    async def _end_abandoned(
        self, app: Application, state: OperationState, waited: float
    ) -> OperationState:
        """The operation is still Terminating after ``waited`` seconds. With no controller
        running, no engine is left to take it up (the command that ran it was stopped):
        this command ends it, as any engine would at its next step. With a controller
        running, that controller ends it; say so."""
        controller = await active_controller(self.kube, app.namespace)
        if controller or state.phase != TERMINATING:
            raise WaitTimedOut(
                f"operation {state.operation.id} on {app.namespace}/{app.name} is still "
                f"{state.phase} after {waited:g}s (run by {state.run_by or '?'})",
                hint=f"the engine running it ({controller or state.run_by}) ends it at its "
                f"next step; see its log, or wait with 'tether app wait {app.name}'",
            )
        return await running.end_terminating(self.engine, app)

    async def _withdraw(self, obj: Obj) -> OperationState:
        request = OperationRequest.from_dict(obj.get("operation") or {})
        patch = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}}
        try:
            await self.kube.merge_patch(obj, {**patch, "operation": None})
        except KubeError as e:
            if e.status != 409:
                raise
            raise OperationInProgress(
                f"the sync requested on {obj['metadata']['name']} was taken up meanwhile",
                hint="run 'tether app terminate-op' again to stop it",
            ) from e
        return OperationState(
            operation=request, phase=FAILED, message="withdrawn before an engine took it up"
        )

    # ---- wait ------------------------------------------------------------------------
    async def wait(
        self,
        name: str,
        namespace: str,
        *,
        health: bool = True,
        sync: bool = True,
        timeout: float = 120.0,
    ) -> WaitResult:
        """Until no operation runs and the app is Synced (``sync``) and Healthy (``health``);
        raises WaitTimedOut naming what is still not so."""
        by_controller = bool(await active_controller(self.kube, namespace))
        return await wait_for(
            lambda: self._view(name, namespace, by_controller),
            name,
            namespace,
            health=health,
            sync=sync,
            timeout=timeout,
            poll=POLL if by_controller else 1.0,
        )

    async def _view(self, name: str, namespace: str, by_controller: bool) -> AppView:
        """The app as a controller keeps its status, or compared here when none runs."""
        obj = await self._read(name, namespace)
        if by_controller:
            return view_of_status(obj)
        cmp = await self.engine.compare(Application.from_obj(obj))
        return view_of_comparison(obj, cmp)

    # rollback writes a commit to Git and then syncs it here: tether.service.rollback

    async def _read(self, name: str, namespace: str) -> Obj:
        return (await self.get(name, namespace)).obj


def refuse_running(app: Application) -> None:
    """Raises OperationInProgress while an operation runs or a request waits on the app."""
    where = f"{app.namespace}/{app.name}"
    hint = (
        f"wait for it with 'tether app wait {app.name}', "
        f"or stop it with 'tether app terminate-op {app.name}'"
    )
    state = state_of(app.obj)
    if state is not None and state.phase in (RUNNING, TERMINATING):
        raise OperationInProgress(
            f"a sync of {where} is {state.phase} (operation {state.operation.id}, "
            f"run by {state.run_by or 'an engine'}): {progress_line(state)}",
            hint=hint,
        )
    pending = app.obj.get("operation")
    if pending:
        req = OperationRequest.from_dict(pending)
        raise OperationInProgress(
            f"a sync of {where} was requested by {req.initiated_by or 'someone'} "
            f"(operation {req.id}) and not yet started",
            hint=hint,
        )


__all__ = ["POLL", "ApplicationService", "Progress", "refuse_running", "who_asks"]
