"""What a caller asks an Application to do: sync (or dry-run it), refresh, terminate the
running operation, roll back, pin and unpin. Each goes through the service layer the
``tether`` command uses, and is recorded with the caller's name."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from tether.audit import MAX_LIMIT
from tether.errors import KubeError, TetherError
from tether.server.api.body import flag, json_body, number, objects, text
from tether.server.api.context import context_of
from tether.server.api.guard import GET, SYNC, Target, app_for
from tether.server.errors import ApiError
from tether.service import ApplicationService, SyncRequest
from tether.service.history import HISTORY_KINDS
from tether.service.identity import requester
from tether.service.pinning import pin, unpin
from tether.service.refresh import request_refresh
from tether.service.rollback import RollbackService
from tether.service.rollback_plan import HISTORY_ID_DIGITS, RollbackRequest
from tether.sync.state import ResourceSelector

log = logging.getLogger(__name__)
ROLLBACK_TIMEOUT = 300.0


@contextlib.contextmanager
def refused_as(word: str) -> Iterator[None]:
    """A refusal from the service that names no reason of its own answers 409 with one a
    program can act on: its class's name (DependencyNotReady), else ``word``."""
    try:
        yield
    except KubeError:
        raise
    except TetherError as e:
        if e.reason != TetherError.reason:
            raise
        reason = word if type(e) is TetherError else type(e).__name__
        raise ApiError(409, e.message, e.hint, reason=reason) from e


async def sync_route(request: web.Request) -> web.Response:
    """202 with the recorded request (the controller runs it); a dry run answers 200 with
    what the sync would do."""
    target = await app_for(request, SYNC)
    body = await json_body(request)
    req = SyncRequest(
        target.name,
        target.namespace,
        revision=text(body, "revision"),
        prune=flag(body, "prune"),
        resources=[ResourceSelector.from_dict(r) for r in objects(body, "resources")],
        ignore_dependencies=flag(body, "ignoreDependencies"),
        force_window=flag(body, "forceWindow"),
        allow_mass_prune=flag(body, "allowMassPrune"),
    )
    service = ApplicationService(context_of(request).engine)
    if flag(body, "dryRun"):
        with refused_as("SyncRefused"):
            outcome = await service.sync(req, dry_run=True)
        return web.json_response({"outcome": outcome.to_dict()})
    with refused_as("SyncRefused"):
        requested = await service.request_sync(req, initiated_by=target.caller.username)
    log.info(
        "sync of %s/%s requested by %s (operation %s)",
        target.namespace,
        target.name,
        target.caller.username,
        requested.request.id,
    )
    return web.json_response(
        {
            "operation": requested.request.to_dict(),
            "controller": requested.controller,
            "notices": requested.notices,
        },
        status=202,
    )


async def refresh_route(request: web.Request) -> web.Response:
    """202: the controller re-reads Git and compares at once. Needs only ``get``, as in
    Argo CD: a refresh changes nothing in the cluster."""
    target = await app_for(request, GET)
    token = await request_refresh(context_of(request).engine, target.name, target.namespace)
    await _audit(request, target, "refresh", f"refresh requested ({token})")
    return web.json_response({"requested": token}, status=202)


async def terminate_route(request: web.Request) -> web.Response:
    """200 with the operation's state: Terminating (the engine running it ends it at its
    next step), or Failed when a request nobody had taken up was withdrawn."""
    target = await app_for(request, SYNC)
    service = ApplicationService(context_of(request).engine)
    with refused_as("NoOperationRunning"):
        state = await service.terminate(target.name, target.namespace, wait=False)
    await _audit(
        request,
        target,
        "terminate",
        f"operation {state.operation.id} {state.phase.lower()}",
        result=state.phase,
    )
    return web.json_response({"operationState": state.to_dict()})


async def pin_route(request: web.Request) -> web.Response:
    target = await app_for(request, SYNC)
    body = await json_body(request)
    revision = text(body, "revision")
    if not revision:
        raise ApiError(400, "'revision' is required", hint="a commit, tag, branch or history ID")
    with refused_as("PinRefused"):
        held, _ = await pin(
            context_of(request).engine,
            target.name,
            target.namespace,
            revision,
            by=target.caller.username,
            reason=text(body, "reason"),
            source=number(body, "source", None),
        )
    return web.json_response({"pin": held.to_dict()})


async def unpin_route(request: web.Request) -> web.Response:
    target = await app_for(request, SYNC)
    with refused_as("NotPinned"):
        done = await unpin(
            context_of(request).engine, target.name, target.namespace, by=target.caller.username
        )
    return web.json_response(done.to_dict())


async def rollback_route(request: web.Request) -> web.Response:
    """Writes the restoring commit (as the caller) and syncs it, as ``tether app rollback``;
    200 with the rollback's result (``RollbackResult.to_dict``) once the sync ended, or when
    nothing was written (state ``manual``: no write access, the git commands are in it). A
    moved branch is 409 ``BranchMoved`` (or ``PushRejected``), which ``tether --server`` turns
    back into the direct path's errors and exit codes."""
    target = await app_for(request, SYNC)
    body = await json_body(request)
    to = text(body, "to")
    steps = number(body, "steps", 1) or 1
    if to and steps != 1:
        raise ApiError(400, "give 'to' or 'steps', not both")
    req = RollbackRequest(
        target.name,
        target.namespace,
        to=to,
        steps=steps,
        message=text(body, "message"),
        branch=text(body, "branch"),
        expect=text(body, "expect"),
        author=requester(target.caller.username, None),
        timeout=float(number(body, "timeout", int(ROLLBACK_TIMEOUT)) or ROLLBACK_TIMEOUT),
        prune=flag(body, "prune"),
    )
    if to.isdigit() and len(to) <= HISTORY_ID_DIGITS:
        req.entry = await _history_entry(request, target, int(to))
    with refused_as("RollbackRefused"):
        result = await RollbackService(context_of(request).engine).rollback(req)
    return web.json_response(result.to_dict())


async def _history_entry(request: web.Request, target: Target, ident: int) -> dict[str, Any] | None:
    """The sync record ``ident`` of the audit trail (the ids ``/history`` shows), as a
    history entry; None when the trail holds none (the id is then one of the status)."""
    store = context_of(request).store
    if store is None:
        return None
    records = await store.query(
        app=f"{target.namespace}/{target.name}", kinds=HISTORY_KINDS, limit=MAX_LIMIT
    )
    for r in records:
        if r.id == ident and r.revision:
            revisions = r.details.get("revisions")
            several = isinstance(revisions, list) and revisions
            return {"revision": r.revision, **({"revisions": revisions} if several else {})}
    return None


async def _audit(
    request: web.Request, target: Target, kind: str, message: str, result: str = ""
) -> None:
    audit = context_of(request).audit
    if audit is not None:
        await audit.record(
            kind, target.app(), user=target.caller.username, message=message, result=result
        )
