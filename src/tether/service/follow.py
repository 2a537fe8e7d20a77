"""Following an Application through its status, whoever reads it: an operation by its id until
it ends, then health until it settles; an operation until it stops; the app until it is Synced
and Healthy. One implementation for the direct path (reads from the Kubernetes API) and for
``tether --server`` (reads from tether's HTTP API): each passes its own ``read``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tether.model import Obj
from tether.service.results import SyncOutcome, WaitResult, WaitTimedOut, outcome_of_state
from tether.service.view import HEALTHY, AppView, missing, view_of_status
from tether.sync.state import ENDED, OperationState

POLL = 0.5
"""Seconds between reads of the Application while waiting on it."""

Read = Callable[[str, str], Awaitable[Obj]]
"""``read(name, namespace)``: the Application as it is now; raises when it is gone."""
Progress = Callable[[str], None]


def state_of(obj: Obj) -> OperationState | None:
    raw = (obj.get("status") or {}).get("operationState")
    if not raw:
        return None
    return OperationState.from_dict(raw)


def progress_line(state: OperationState) -> str:
    where = "pruning" if state.pruning else f"{state.sync_phase} wave {state.wave}"
    return f"{state.phase}, {where}" + (f": {state.message}" if state.message else "")


async def follow_operation(
    read: Read,
    name: str,
    namespace: str,
    operation_id: str,
    controller: str,
    deadline: float,
    say: Progress,
) -> SyncOutcome:
    """Until the controller has run operation ``operation_id`` to its end; its outcome.
    Raises WaitTimedOut at ``deadline`` (a ``time.monotonic()`` value)."""
    last = ""
    while True:
        state = state_of(await read(name, namespace))
        ours = state is not None and state.operation.id == operation_id
        if ours and state is not None and state.phase in ENDED:
            return outcome_of_state(state, by_controller=True)
        line = progress_line(state) if ours and state is not None else "waiting to start"
        if line != last:
            say(line)
            last = line
        if time.monotonic() >= deadline:
            what = line if ours else f"the request was not taken up by controller {controller}"
            raise WaitTimedOut(
                f"sync of {namespace}/{name} (operation {operation_id}) not finished: {what}",
                hint=f"keep waiting with 'tether app wait {name}', or stop it with "
                f"'tether app terminate-op {name}'",
            )
        await asyncio.sleep(POLL)


async def wait_health_in_status(
    read: Read, name: str, namespace: str, outcome: SyncOutcome, deadline: float
) -> None:
    """After a sync a controller ran: until the status says Healthy (or Degraded), or the
    deadline; folds sync and health into ``outcome``."""
    while True:
        view = view_of_status(await read(name, namespace))
        outcome.sync_status, outcome.health_status = view.sync_status, view.health_status
        outcome.health_message = view.health_message
        if view.health_status in (*HEALTHY, "Degraded") or time.monotonic() >= deadline:
            break
        await asyncio.sleep(POLL)
    outcome.waited_for_health = True


async def until_stopped(
    read: Read, name: str, namespace: str, deadline: float
) -> tuple[Obj, OperationState | None]:
    """Until no operation runs (the state then has ended, or there is none) or the deadline;
    the app and its operation's state as last read."""
    while True:
        obj = await read(name, namespace)
        state = state_of(obj)
        if state is None or state.phase in ENDED or time.monotonic() >= deadline:
            return obj, state
        await asyncio.sleep(POLL)


async def wait_for(
    view: Callable[[], Awaitable[AppView]],
    name: str,
    namespace: str,
    *,
    health: bool,
    sync: bool,
    timeout: float,
    poll: float = POLL,
) -> WaitResult:
    """Until no operation runs and ``view()`` is Synced (``sync``) and Healthy (``health``);
    raises WaitTimedOut naming what is still not so."""
    deadline = time.monotonic() + timeout
    while True:
        seen = await view()
        left = missing(seen, health=health, sync=sync)
        if not left:
            return seen.result()
        if time.monotonic() >= deadline:
            raise WaitTimedOut(
                f"{namespace}/{name} after {timeout:g}s: " + "; ".join(left),
                hint=f"see 'tether app get {name}' and 'tether app diff {name}'",
            )
        await asyncio.sleep(poll)


__all__ = [
    "POLL",
    "Read",
    "follow_operation",
    "progress_line",
    "state_of",
    "until_stopped",
    "wait_for",
    "wait_health_in_status",
]
