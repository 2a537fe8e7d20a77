"""Recording a sync operation on its Application: claiming it, its progress after each step,
the whole status at its end, and running an operation to its end for engines that hold it
themselves (the CLI when no controller runs, ``Engine.sync``).

Every write of an operation's record is conditional on the resourceVersion of the copy it
judged (the one held, else one just read), so two engines never both think they run one
operation: a claim fails when another operation is running (``Busy``) or the Application
is being deleted (``Refused``), and progress is not written over a record that changed
meanwhile — set Terminating by ``tether app terminate-op``, or replaced — the engine then
goes on from what is recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tether.api.application import API_VERSION, KIND, Application
from tether.compare import Comparison
from tether.deletion.policy import being_deleted
from tether.errors import KubeError, TetherError
from tether.kube import FIELD_MANAGER, KubeClient
from tether.model import Obj
from tether.status import now, write_status
from tether.sync.operation import Step, SyncOperation
from tether.sync.state import RUNNING, TERMINATING, OperationState

WRITE_ATTEMPTS = 3
HEARTBEAT = 5.0
"""Seconds between two progress writes of an engine that waits (its heartbeat)."""
FIRST_LOOK = 0.25
"""An engine with no watch (the CLI) looks at a waiting stage again after this, then twice
as long each time, up to what the step asks (``Step.wait``)."""


class Refused(Exception):
    """The sync must not start: the Application is gone or being deleted."""

    def __init__(self, obj: Obj | None, why: str) -> None:
        super().__init__(why)
        self.obj = obj
        self.why = why


class Busy(TetherError):
    """Another operation is running on the Application: it is resumed, not started over."""


def claim_body(state: OperationState) -> dict[str, Any]:
    """``state`` as a merge patch of ``status.operationState`` that replaces what an earlier
    operation left there (keys it set and this one does not are removed)."""
    body = state.to_dict()
    for optional in ("revisions", "failedPhase"):
        body.setdefault(optional, None)
    return body


async def claim(kube: KubeClient, app: Application, state: OperationState) -> Application:
    """Writes ``state`` (a new Running operation) at the resourceVersion of the copy judged
    claimable (``app`` itself when it is, else one read anew) and returns the Application
    as written. Raises Refused when it is gone or being deleted, Busy when another
    operation is running on it."""
    path = (await kube.resource_for(API_VERSION, KIND)).path(app.namespace, app.name, "status")
    state.heartbeat_at = now()
    # The copy held is tried first: the write's resourceVersion precondition makes it as
    # safe as a copy just read (409 if anyone wrote since), and a refusal is confirmed on
    # one just read. So a claim costs one request, not a GET and a PATCH.
    held: Obj | None = app.obj if app.obj.get("metadata", {}).get("resourceVersion") else None
    for _ in range(WRITE_ATTEMPTS):
        fresh = held if held is not None and _claimable(held) else None
        held = None
        if fresh is None:
            fresh = await kube.get(API_VERSION, KIND, app.name, app.namespace)
            _refuse_claim(app, fresh)
        assert fresh is not None
        body: dict[str, Any] = {
            "metadata": {"resourceVersion": str(fresh["metadata"]["resourceVersion"])},
            "status": {"operationState": claim_body(state)},
        }
        try:
            out: Obj = await kube.request(
                "PATCH",
                path,
                query={"fieldManager": FIELD_MANAGER},
                # resourceVersion in a patch is a precondition: 409 if anyone wrote since.
                body=body,
                content_type="application/merge-patch+json",
            )
        except KubeError as e:
            if e.status == 409:
                continue  # written meanwhile (perhaps the deletion mark): read it again
            if e.status == 404:
                raise Refused(None, "it was deleted") from None
            raise
        return Application.from_obj(out)
    raise KubeError(
        f"Application {app.namespace}/{app.name} kept changing while a sync was starting",
        status=409,
        hint="the sync is retried",
    )


def _claimable(obj: Obj) -> bool:
    """Nothing in ``obj`` refuses a claim: not being deleted, no operation running."""
    current = (obj.get("status") or {}).get("operationState") or {}
    return not being_deleted(obj) and current.get("phase") not in (RUNNING, TERMINATING)


def _refuse_claim(app: Application, fresh: Obj | None) -> None:
    """Raises Refused when ``fresh`` (the Application just read) is gone or being deleted,
    Busy when another operation runs on it."""
    if fresh is None:
        raise Refused(None, "it was deleted")
    why = being_deleted(fresh)
    if why:
        raise Refused(fresh, why)
    current = (fresh.get("status") or {}).get("operationState") or {}
    if current.get("phase") in (RUNNING, TERMINATING):
        other = current.get("runBy") or "another engine"
        raise Busy(
            f"Application {app.namespace}/{app.name}: operation "
            f"{(current.get('operation') or {}).get('id', '')} run by {other} is "
            f"{str(current.get('phase')).lower()}",
            hint=f"wait for it with 'tether app wait {app.name}', or stop it with "
            f"'tether app terminate-op {app.name}'",
        )


async def write_progress(
    kube: KubeClient, app: Application, state: OperationState
) -> Application | None:
    """Writes ``state`` (an operation's progress) at the resourceVersion of ``app``, the
    Application the step started from. When it changed meanwhile the write is made again at
    the new one, unless the recorded operation changed: set Terminating, or replaced. Then
    nothing is written and None returned: the caller goes on from what is recorded."""
    path = (await kube.resource_for(API_VERSION, KIND)).path(app.namespace, app.name, "status")
    obj: Obj | None = app.obj
    state.heartbeat_at = now()
    for _ in range(WRITE_ATTEMPTS):
        if obj is None:
            return None
        recorded = (obj.get("status") or {}).get("operationState") or {}
        if (
            recorded.get("phase") != RUNNING
            or (recorded.get("operation") or {}).get("id") != state.operation.id
        ):
            return None
        rv = str(obj["metadata"]["resourceVersion"])
        try:
            out: Obj = await kube.request(
                "PATCH",
                path,
                query={"fieldManager": FIELD_MANAGER},
                body={
                    "metadata": {"resourceVersion": rv},
                    "status": {"operationState": state.to_dict()},
                },
                content_type="application/merge-patch+json",
            )
        except KubeError as e:
            if e.status == 404:
                return None
            if e.status != 409:
                raise
            obj = await kube.get(API_VERSION, KIND, app.name, app.namespace)
            continue
        return Application.from_obj(out)
    raise KubeError(
        f"Application {app.namespace}/{app.name} kept changing while its sync's progress "
        "was written",
        status=409,
        hint="the operation goes on from its last recorded step",
    )


async def write_end(kube: KubeClient, app: Application, step: Step) -> Application:
    """The whole status at the operation's end: sync, health, inventory, history, and the
    operation's state."""
    assert step.comparison is not None, "an ended step carries its comparison"
    out = await write_status(
        kube,
        app,
        step.comparison,
        step.result,
        trigger=step.state.operation.trigger,
        operation=step.state,
    )
    return Application.from_obj(out) if out is not None else app


async def run_to_end(
    op: SyncOperation,
    kube: KubeClient,
    app: Application,
    *,
    record: bool = True,
    on_step: Callable[[Step], Awaitable[None] | None] | None = None,
    comparison: Comparison | None = None,
) -> Step:
    """Steps ``op`` until it ends. With ``record``: claims it first (unless the app already
    records it: a resumed operation), writes its progress when it moved (and every
    ``HEARTBEAT`` seconds while it waits) and the whole status at its end. With no watch to
    wake it, it looks again soon after a wait begins, then less and less often.
    ``comparison``: one just made, used by the first step."""
    if record and _recorded_id(app) != op.state.operation.id:
        app = op.app = await claim(kube, app, op.state)
    written, look = _progress_key(op.state), FIRST_LOOK
    last_write = asyncio.get_running_loop().time()
    while True:
        step = await op.step(comparison)
        comparison = None
        if on_step is not None:
            pending = on_step(step)
            if pending is not None:
                await pending
        if step.done:
            if record:
                await write_end(kube, app, step)
            return step
        moved = _progress_key(step.state) != written
        look = FIRST_LOOK if moved else min(look * 2, max(step.wait, FIRST_LOOK))
        clock = asyncio.get_running_loop().time()
        if record and (moved or clock - last_write >= HEARTBEAT):
            out = await write_progress(kube, app, step.state)
            if out is None:
                app = op.app = await _take_recorded(kube, op)
                continue  # terminated meanwhile: the next step ends it
            app = op.app = out
            written, last_write = _progress_key(step.state), clock
        await asyncio.sleep(min(look, step.wait))


def _recorded_id(app: Application) -> str:
    recorded = app.status.get("operationState") or {}
    if recorded.get("phase") not in (RUNNING, TERMINATING):
        return ""
    return str((recorded.get("operation") or {}).get("id") or "")


def _progress_key(state: OperationState) -> dict[str, Any]:
    """What a progress write says, but its heartbeat."""
    out = state.to_dict()
    out.pop("heartbeatAt", None)
    return out


async def _take_recorded(kube: KubeClient, op: SyncOperation) -> Application:
    """The record changed under a running operation: Terminating is taken on (the next step
    ends it); anything else means another engine has it, and this one stops."""
    obj = await kube.get(API_VERSION, KIND, op.app.name, op.app.namespace)
    if obj is None:
        raise TetherError(f"Application {op.app.namespace}/{op.app.name} was deleted")
    app = Application.from_obj(obj)
    recorded = OperationState.from_dict(app.status.get("operationState") or {})
    if recorded.operation.id == op.state.operation.id and recorded.phase == TERMINATING:
        op.state.phase = TERMINATING
        return app
    raise TetherError(
        f"the sync of Application {app.namespace}/{app.name} was taken over or ended by "
        f"{recorded.run_by or 'another engine'} ({recorded.phase}: {recorded.message})",
        hint=f"see 'tether app get {app.name}'",
    )
