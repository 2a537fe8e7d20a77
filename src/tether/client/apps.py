"""What ``tether --server`` asks of Applications, through ``/api/v1``: the same methods and
results as the direct path (``tether.cli.backend``), so each command prints the same thing
either way. A sync is recorded by the API and then followed by reading the app, with the
service's own waiting code (``tether.service.follow``)."""

from __future__ import annotations

import asyncio
import functools
import math
import time
from typing import TYPE_CHECKING, Any

from tether.client.http import ApiClient, ApiRefused
from tether.client.reading import ApiReader, app_path
from tether.errors import TetherError
from tether.model import Obj
from tether.service.documents import outcome_of_document
from tether.service.follow import (
    Progress,
    follow_operation,
    until_stopped,
    wait_for,
    wait_health_in_status,
)
from tether.service.results import SyncOutcome, SyncRequest, WaitResult, WaitTimedOut
from tether.service.view import AppView, view_of_status
from tether.sync.state import DEFAULT_TIMEOUT, ENDED, OperationRequest, OperationState

if TYPE_CHECKING:  # only a rollback needs them (and the identity module they bring)
    from tether.service.rollback_plan import RollbackRequest, RollbackResult

ROLLBACK_DEFAULT_TIMEOUT = 300.0
"""Seconds the server gives a rollback's sync when the request names none."""
GIT_TIME = 120.0
"""Seconds a rollback may spend reading and pushing Git, on top of its sync's timeout."""


class RemoteApplications:
    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.reader = ApiReader(api)

    @property
    def where(self) -> str:
        return self.reader.where

    async def _call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        """``ApiReader.call`` (its keyword ``options``) from a worker thread."""
        return await asyncio.to_thread(functools.partial(self.reader.call, method, path, **options))

    # ---- reading (ApiReader's, from a worker thread) -----------------------------------
    async def get(self, name: str, namespace: str) -> Obj:
        return await asyncio.to_thread(self.reader.get, name, namespace)

    async def diff(self, name: str, namespace: str, revision: str | None) -> dict[str, Any]:
        return await asyncio.to_thread(self.reader.diff, name, namespace, revision)

    async def history(self, name: str, namespace: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.reader.history, name, namespace)

    # ---- acting ----------------------------------------------------------------------
    async def refresh(self, name: str, namespace: str) -> str:
        answer = await self._call("POST", app_path(namespace, name, "/refresh"))
        return str(answer.get("requested") or "")

    async def pin(
        self, name: str, namespace: str, revision: str, *, reason: str, source: int | None
    ) -> dict[str, Any]:
        """``POST .../pin``: the pin as written (``Pin.to_dict``)."""
        body: dict[str, Any] = {"revision": revision, "reason": reason}
        if source is not None:
            body["source"] = source
        answer = await self._call("POST", app_path(namespace, name, "/pin"), body=body)
        pin = answer.get("pin")
        if not isinstance(pin, dict):
            raise TetherError(f"{self.where} answered the pin of {namespace}/{name} without it")
        return pin

    async def unpin(self, name: str, namespace: str) -> dict[str, Any]:
        """``DELETE .../pin``: ``{"unpinned": [revisions], "by": who}``."""
        return await self._call("DELETE", app_path(namespace, name, "/pin"))

    async def sync(
        self,
        req: SyncRequest,
        *,
        dry_run: bool = False,
        timeout: float = 120.0,
        progress: Progress | None = None,
    ) -> SyncOutcome:
        """As ``ApplicationService.sync`` with a controller running: the API records the
        request; this follows the operation by its id, then health, until ``timeout``."""
        say = progress or (lambda _line: None)
        deadline = time.monotonic() + (timeout if timeout > 0 else DEFAULT_TIMEOUT)
        path = app_path(req.namespace, req.name, "/sync")
        answer = await self._call("POST", path, body=sync_body(req, dry_run))
        if dry_run:
            outcome = outcome_of_document(answer.get("outcome") or {})
            outcome.runner = "dry run, by the tether server: nothing was changed or recorded"
            return outcome
        request = OperationRequest.from_dict(answer.get("operation") or {})
        controller = str(answer.get("controller") or "")
        say(f"sync requested; controller {controller} runs it")
        outcome = await follow_operation(
            self.get, req.name, req.namespace, request.id, controller, deadline, say
        )
        outcome.notices = [str(n) for n in answer.get("notices") or []]
        if outcome.ok and timeout > 0:
            left = max(deadline - time.monotonic(), 1.0)
            say(f"waiting up to {left:.0f}s for {req.name} to become healthy")
            await wait_health_in_status(self.get, req.name, req.namespace, outcome, deadline)
        return outcome

    async def rollback(
        self, req: RollbackRequest, progress: Progress | None = None
    ) -> RollbackResult:
        """``POST .../rollback``: the server writes the restoring commit as the caller (the
        token's user is its author; ``req.author`` is not sent) and syncs it, answering once
        the sync ended. Its refusals are the direct path's errors: BranchMoved and
        PushRejected (the branch moved), WaitTimedOut."""
        from tether.service.rollback_plan import BranchMoved, RollbackResult
        from tether.source.commits import PushRejected

        seconds = math.ceil(req.timeout) if req.timeout > 0 else 0
        body: dict[str, Any] = {
            "to": req.to,
            "steps": req.steps,
            "message": req.message,
            "branch": req.branch,
            "expect": req.expect,
            "prune": req.prune,
        }
        if seconds:
            body["timeout"] = seconds
        path = app_path(req.namespace, req.name, "/rollback")
        wait = (seconds or ROLLBACK_DEFAULT_TIMEOUT) + GIT_TIME
        if progress is not None:
            progress(f"the tether server writes Git and syncs (up to {wait:.0f}s)")
        try:
            answer = await self._call("POST", path, body=body, timeout=wait)
        except ApiRefused as e:
            if e.reason == "BranchMoved":
                raise BranchMoved(e.message, [], hint=e.hint) from None
            if e.reason == PushRejected.__name__:
                raise PushRejected(e.message, hint=e.hint) from None
            if e.reason == WaitTimedOut.reason:
                raise WaitTimedOut(e.message, hint=e.hint) from None
            raise
        return RollbackResult.from_dict(answer)

    async def terminate(
        self, name: str, namespace: str, *, wait: bool = True, timeout: float = 60.0
    ) -> OperationState:
        """Asks the server to stop the running operation and, with ``wait``, follows it
        until it ended (the controller ends it at its next step)."""
        answer = await self._call("DELETE", app_path(namespace, name, "/operation"))
        state = OperationState.from_dict(answer.get("operationState") or {})
        if not wait or state.phase in ENDED:
            return state
        _, now = await until_stopped(self.get, name, namespace, time.monotonic() + timeout)
        if now is None or now.phase in ENDED:
            return now or state
        raise WaitTimedOut(
            f"operation {now.operation.id} on {namespace}/{name} is still {now.phase} after "
            f"{timeout:g}s (run by {now.run_by or '?'})",
            hint=f"the engine running it ({now.run_by or 'the controller'}) ends it at its "
            f"next step; see its log, or wait with 'tether app wait {name}'",
        )

    async def wait(
        self,
        name: str,
        namespace: str,
        *,
        health: bool = True,
        sync: bool = True,
        timeout: float = 120.0,
    ) -> WaitResult:
        """As ``ApplicationService.wait`` with a controller running: from the status."""

        async def view() -> AppView:
            return view_of_status(await self.get(name, namespace))

        return await wait_for(view, name, namespace, health=health, sync=sync, timeout=timeout)


def sync_body(req: SyncRequest, dry_run: bool) -> dict[str, Any]:
    """The body of ``POST .../sync`` for ``req``."""
    body: dict[str, Any] = {
        "revision": req.revision,
        "prune": req.prune,
        "dryRun": dry_run,
        "resources": [r.to_dict() for r in req.resources],
        "forceWindow": req.force_window,
        "ignoreDependencies": req.ignore_dependencies,
    }
    if req.allow_mass_prune:
        body["allowMassPrune"] = True
    return body


__all__ = ["RemoteApplications", "app_path", "sync_body"]
