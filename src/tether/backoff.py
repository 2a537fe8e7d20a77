"""Waiting between attempts: the one backoff every retry loop in tether uses.

A delay grows by ``factor`` per attempt from ``base`` up to ``cap``; ``jitter`` then adds up to
that fraction on top, at random, so clients that failed together (one API server or chat service
down) do not all come back in the same instant. The same shape as client-go's ``wait.Backoff``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

# Beyond this many doublings every useful base is past any cap; stopping here keeps
# ``factor ** n`` from overflowing a float on a very long run of failures.
_MAX_EXPONENT = 64


@dataclass(frozen=True)
class Backoff:
    """Delays for attempt 1, 2, 3…: ``min(cap, base * factor**(n-1))``, plus up to ``jitter``
    of that at random."""

    base: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0 or self.factor < 1 or self.jitter < 0:
            raise ValueError(f"invalid backoff {self}: base, cap, jitter >= 0 and factor >= 1")

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based; lower counts as 1)."""
        exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
        step = min(self.cap, self.base * self.factor**exponent)
        if self.jitter:
            step += step * self.jitter * rand()
        return float(step)


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (RFC 9110: delay-seconds or an HTTP date);
    None when absent or unreadable, so the caller's own backoff applies."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        from email.utils import parsedate_to_datetime  # rare: most servers send seconds

        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None
