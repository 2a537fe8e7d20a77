"""The controller's work queue and retry policy, as pure logic on a real event loop."""

from __future__ import annotations

import asyncio

import pytest

from tether.api.application import Application, Retry, new_application
from tether.controller.queue import WorkQueue

pytestmark = pytest.mark.unit

A = ("ns", "a")
B = ("ns", "b")


async def test_an_app_is_queued_once_and_its_reasons_merge() -> None:
    q = WorkQueue()
    q.add(A, "poll")
    q.add(A, "webhook")
    q.add(B, "spec")
    assert len(q) == 2
    assert await q.get() == (A, {"poll", "webhook"})
    assert await q.get() == (B, {"spec"})
    assert len(q) == 0


async def test_an_add_while_processing_queues_exactly_one_more_pass_after_done() -> None:
    q = WorkQueue()
    q.add(A, "poll")
    key, _ = await q.get()
    q.add(A, "live")
    q.add(A, "webhook")
    assert len(q) == 0, "never handed to a second worker while the first has it"
    assert not q.idle(A)
    q.done(key)
    assert len(q) == 1
    assert await q.get() == (A, {"live", "webhook"})
    q.done(A)
    assert q.idle(A)


async def test_get_waits_for_work() -> None:
    q = WorkQueue()
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    q.add(A, "spec")
    assert await asyncio.wait_for(waiter, 5) == (A, {"spec"})


async def test_a_delayed_add_fires_later_and_an_earlier_deadline_stands() -> None:
    q = WorkQueue()
    q.add(A, "retry", delay=0.05)
    assert len(q) == 0 and not q.idle(A)
    q.add(A, "resync", delay=3600)  # later: must not postpone the retry
    assert await asyncio.wait_for(q.get(), 5) == (A, {"retry", "resync"})


async def test_remove_cancels_a_delayed_add_and_close_drops_everything() -> None:
    q = WorkQueue()
    q.add(A, "retry", delay=0.01)
    q.remove(A)
    q.add(B, "retry", delay=0.01)
    q.close()
    q.add(B, "spec")
    await asyncio.sleep(0.05)
    assert len(q) == 0
    assert q.idle(A) and q.idle(B)


async def test_failures_back_off_exponentially_per_app_until_forgotten() -> None:
    q = WorkQueue()
    delays = [q.backoff(A) for _ in range(10)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert delays[-1] == 60.0, "capped"
    assert q.backoff(B) == 0.5, "each app counts its own failures"
    q.forget(A)
    assert q.backoff(A) == 0.5


async def test_progress_moves_when_a_worker_takes_or_finishes_work() -> None:
    q = WorkQueue()
    before = q.progress_at
    q.add(A, "spec")
    key, _ = await q.get()
    taken = q.progress_at
    assert taken >= before
    q.done(key)
    assert q.progress_at >= taken


def app_with_retry(retry: dict[str, object]) -> Application:
    obj = new_application("web", "ns", repo_url="https://g/x", path="p", auto_sync=True)
    obj["spec"]["syncPolicy"]["retry"] = retry
    return Application.from_obj(obj)


def test_retry_policy_defaults_and_delays() -> None:
    pol = app_with_retry({}).sync_policy.retry
    assert (pol.limit, pol.duration, pol.factor, pol.max_duration) == (5, 5.0, 2, 180.0)
    assert [pol.delay(n) for n in range(1, 8)] == [5, 10, 20, 40, 80, 160, 180]


def test_retry_policy_from_the_spec() -> None:
    pol = app_with_retry(
        {"limit": 1, "backoff": {"duration": "250ms", "factor": 3, "maxDuration": "1s"}}
    ).sync_policy.retry
    assert pol.limit == 1
    assert [pol.delay(n) for n in (1, 2, 3)] == [0.25, 0.75, 1.0]
    assert Retry(limit=-1).limit == -1
