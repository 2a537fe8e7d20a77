"""The per-application work queue: de-duplicating, delayed adds, per-key backoff.

An application is in the queue at most once; adding it again only merges the reasons
(poll, webhook, drift, ...). While a worker processes it, new adds mark it dirty and it is
queued again when the worker is done, so a burst of events becomes one more reconcile,
never two at once for one app (the model client-go's workqueue and kopf's batching use).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable

from tether.backoff import Backoff

AppKey = tuple[str, str]
"""(namespace, name) of an Application."""

RECONCILE_BACKOFF = Backoff(base=0.5, cap=60.0)
"""After a failed reconcile: no jitter, as client-go's per-item rate limiter."""


class WorkQueue:
    def __init__(self) -> None:
        self._queue: deque[AppKey] = deque()
        self._reasons: dict[AppKey, set[str]] = {}
        self._processing: set[AppKey] = set()
        self._timers: dict[AppKey, asyncio.TimerHandle] = {}
        self._cond = asyncio.Condition()
        self._failures: dict[AppKey, int] = {}
        self._delayed: dict[AppKey, set[str]] = {}
        self._closed = False
        self.progress_at = time.monotonic()
        """When a worker last took or finished an item (liveness)."""

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: AppKey, reasons: str | Iterable[str], delay: float = 0.0) -> None:
        """Queues ``key`` (now, or after ``delay`` seconds); merges with a pending entry."""
        new = {reasons} if isinstance(reasons, str) else set(reasons)
        if delay <= 0:
            self._enqueue(key, new)
            return
        loop = asyncio.get_running_loop()
        self._delayed.setdefault(key, set()).update(new)
        timer = self._timers.get(key)
        if timer is not None:
            if timer.when() <= loop.time() + delay:
                return  # an earlier deadline stands: a later add must not postpone work
            timer.cancel()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: AppKey) -> None:
        self._timers.pop(key, None)
        self._enqueue(key, self._delayed.pop(key, set()) or {"retry"})

    def _enqueue(self, key: AppKey, reasons: set[str]) -> None:
        if self._closed:
            return
        dirty = key in self._reasons
        self._reasons.setdefault(key, set()).update(reasons)
        if dirty or key in self._processing:
            return  # already waiting, or re-queued by done()
        self._queue.append(key)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify()

    async def get(self) -> tuple[AppKey, set[str]]:
        """The next app and every reason it was queued for since it was last taken."""
        async with self._cond:
            while not self._queue:
                await self._cond.wait()
            key = self._queue.popleft()
            self._processing.add(key)
            self.progress_at = time.monotonic()
            return key, self._reasons.pop(key, set())

    def done(self, key: AppKey) -> None:
        self._processing.discard(key)
        self.progress_at = time.monotonic()
        if key in self._reasons:
            self._queue.append(key)
            asyncio.get_running_loop().create_task(self._notify())

    def backoff(self, key: AppKey, policy: Backoff = RECONCILE_BACKOFF) -> float:
        """Delay before retrying ``key`` after a failure: doubles each time, up to the cap."""
        n = self._failures.get(key, 0) + 1
        self._failures[key] = n
        return policy.delay(n)

    def forget(self, key: AppKey) -> None:
        """Resets ``key``'s failure count (it succeeded)."""
        self._failures.pop(key, None)

    def idle(self, key: AppKey) -> bool:
        """True when ``key`` is neither waiting, delayed nor being processed."""
        return not (
            key in self._reasons
            or key in self._processing
            or key in self._timers
            or key in self._queue
        )

    def remove(self, key: AppKey) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._delayed.pop(key, None)

    def close(self) -> None:
        self._closed = True
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
