"""One log line per cause per interval, saying how many repeats it left out."""

from __future__ import annotations

import logging

import pytest

from tether.lograte import RateLimitedLog

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_repeats_within_the_interval_are_counted_into_the_next_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    logger = logging.getLogger("tether.test.lograte")
    limited = RateLimitedLog(logger, interval=60.0, clock=clock)
    caplog.set_level(logging.WARNING, logger=logger.name)

    assert limited.log(logging.WARNING, "repo-a", "poll of %s failed", "a")
    assert [limited.log(logging.WARNING, "repo-a", "poll of %s failed", "a") for _ in range(9)] == [
        False
    ] * 9
    # Another cause is not held back by the first.
    assert limited.log(logging.WARNING, "repo-b", "poll of %s failed", "b")
    clock.now += 60.0
    assert limited.log(logging.WARNING, "repo-a", "poll of %s failed", "a")

    assert [r.getMessage() for r in caplog.records] == [
        "poll of a failed",
        "poll of b failed",
        "poll of a failed (9 more like this since the last such line)",
    ]
