"""Following an app through its status (``tether.service.follow``), the one implementation the
direct path and ``tether --server`` share: given what ``read`` answers, what it returns or
why it gives up. ``read`` here answers Application objects as the API would hold them."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tether.model import Obj
from tether.service.follow import Read, follow_operation, until_stopped, wait_for
from tether.service.results import SyncOutcome, WaitTimedOut
from tether.service.view import view_of_status

pytestmark = pytest.mark.unit

PAST = 0.0
"""A deadline already gone: each function reads once and decides."""


def app(operation: dict[str, Any] | None, **status: Any) -> Obj:
    st: dict[str, Any] = dict(status)
    if operation is not None:
        st["operationState"] = operation
    return {"metadata": {"name": "web", "namespace": "shop"}, "status": st}


def reader(obj: Obj) -> Read:
    async def read(name: str, namespace: str) -> Obj:
        assert (namespace, name) == ("shop", "web")
        return obj

    return read


async def test_an_ended_operation_of_ours_is_its_outcome() -> None:
    op = {
        "operation": {"id": "op-1"},
        "phase": "Succeeded",
        "message": "changed 1 object(s)",
        "revision": "abc",
        "runBy": "controller-1",
        "syncResult": {"resources": [{"kind": "ConfigMap", "name": "c", "action": "created"}]},
    }
    lines: list[str] = []
    outcome = await follow_operation(
        reader(app(op)), "web", "shop", "op-1", "controller-1", time.monotonic() + 60, lines.append
    )
    assert isinstance(outcome, SyncOutcome)
    assert (outcome.phase, outcome.run_by, outcome.operation_id) == (
        "Succeeded",
        "controller-1",
        "op-1",
    )
    assert outcome.runner == "run by controller controller-1" and outcome.by_controller
    assert [r.key.name for r in outcome.records] == ["c"]
    assert lines == []


async def test_a_request_never_taken_up_times_out_naming_the_controller() -> None:
    other = {"operation": {"id": "op-0"}, "phase": "Succeeded"}
    lines: list[str] = []
    with pytest.raises(WaitTimedOut) as e:
        await follow_operation(
            reader(app(other)), "web", "shop", "op-1", "ctl-7", PAST, lines.append
        )
    assert e.value.message == (
        "sync of shop/web (operation op-1) not finished: the request was not taken up by "
        "controller ctl-7"
    )
    assert "tether app terminate-op web" in e.value.hint
    assert lines == ["waiting to start"]


async def test_a_running_operation_times_out_saying_where_it_is() -> None:
    running = {"operation": {"id": "op-1"}, "phase": "Running", "syncPhase": "Sync", "wave": 2}
    with pytest.raises(WaitTimedOut) as e:
        await follow_operation(reader(app(running)), "web", "shop", "op-1", "c", PAST, print)
    assert e.value.message.endswith("not finished: Running, Sync wave 2")


async def test_until_stopped_returns_the_last_state_read() -> None:
    obj, state = await until_stopped(reader(app(None)), "web", "shop", PAST)
    assert state is None and obj["metadata"]["name"] == "web"
    terminating = {"operation": {"id": "op-1"}, "phase": "Terminating"}
    _, state = await until_stopped(reader(app(terminating)), "web", "shop", PAST)
    assert state is not None and state.phase == "Terminating"


async def test_wait_for_says_what_is_still_not_so() -> None:
    obj = app(None, sync={"status": "OutOfSync"}, health={"status": "Healthy"})

    async def view() -> Any:
        return view_of_status(obj)

    with pytest.raises(WaitTimedOut) as e:
        await wait_for(view, "web", "shop", health=True, sync=True, timeout=0)
    assert e.value.message == "shop/web after 0s: sync is OutOfSync"
    result = await wait_for(view, "web", "shop", health=True, sync=False, timeout=0)
    assert (result.sync_status, result.health_status) == ("OutOfSync", "Healthy")
