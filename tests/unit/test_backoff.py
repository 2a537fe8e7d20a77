"""The one backoff: growth, cap, jitter bounds, and reading Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tether.api.application import Retry
from tether.backoff import Backoff, retry_after
from tether.controller.queue import WorkQueue

pytestmark = pytest.mark.unit


def test_delays_grow_by_the_factor_up_to_the_cap() -> None:
    policy = Backoff(base=0.5, cap=5.0)

    assert [policy.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_an_attempt_below_one_waits_the_base() -> None:
    assert Backoff(base=0.5).delay(0) == Backoff(base=0.5).delay(-3) == 0.5


def test_a_very_long_run_of_failures_stays_at_the_cap() -> None:
    assert Backoff(base=0.5, cap=60.0).delay(100_000) == 60.0


def test_jitter_adds_at_most_its_fraction_on_top() -> None:
    policy = Backoff(base=1.0, cap=8.0, jitter=0.5)

    assert policy.delay(3, rand=lambda: 0.0) == 4.0
    assert policy.delay(3, rand=lambda: 1.0) == 6.0
    assert policy.delay(10, rand=lambda: 1.0) == 12.0


def test_jittered_delays_differ_between_clients() -> None:
    policy = Backoff(base=1.0, cap=8.0, jitter=1.0)

    delays = {policy.delay(2) for _ in range(50)}

    assert len(delays) > 1
    assert all(2.0 <= d <= 4.0 for d in delays)


@pytest.mark.parametrize(
    "fields", [{"base": -1.0}, {"cap": -1.0}, {"factor": 0.5}, {"jitter": -0.1}]
)
def test_a_policy_that_cannot_wait_is_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="invalid backoff"):
        Backoff(**fields)


def test_the_work_queue_and_the_sync_retry_policy_use_it() -> None:
    queue = WorkQueue()
    key = ("ns", "app")

    assert [queue.backoff(key) for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 32, 60, 60]
    queue.forget(key)
    assert queue.backoff(key) == 0.5
    retry = Retry(duration=5.0, factor=3, max_duration=100.0)
    assert [retry.delay(n) for n in (1, 2, 3, 4)] == [5.0, 15.0, 45.0, 100.0]


def test_retry_after_reads_seconds() -> None:
    assert retry_after("3") == 3.0
    assert retry_after(" 0 ") == 0.0


def test_retry_after_reads_an_http_date() -> None:
    now = datetime(2026, 11, 27, 13, 0, 0, tzinfo=UTC)

    assert retry_after("Fri, 27 Nov 2026 13:00:07 GMT", now) == 7.0
    assert retry_after("Fri, 27 Nov 2026 12:59:00 GMT", now) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "Fri, 99 Nov 2026 13:00 GMT"])
def test_an_unreadable_retry_after_leaves_the_choice_to_the_caller(value: str | None) -> None:
    assert retry_after(value) is None


@pytest.mark.unit
@pytest.mark.parametrize(
    ("method", "status", "preconditions", "repeat"),
    [
        ("GET", 500, False, True),
        ("GET", 429, False, True),
        ("POST", 503, False, True),
        ("POST", 500, False, False),
        ("PATCH", 502, False, True),
        ("PATCH", 500, False, False),  # an apply the server cannot build stays unbuildable
        ("DELETE", 500, False, False),
        ("DELETE", 500, True, True),
        ("GET", 501, False, False),
        ("GET", 404, False, False),
    ],
)
def test_which_answers_the_client_repeats(
    method: str, status: int, preconditions: bool, repeat: bool
) -> None:
    from tether.kube.answers import may_retry

    assert may_retry(method, status, preconditions) is repeat
