"""Notification delivery: a queue and a worker per sink, retries with backoff, bounded loss.

``notify()`` is synchronous and never waits on the network, so reconciling never slows down
for a slow chat service. Each sink has its own bounded queue and worker: a sink that hangs or
fails only delays its own notifications. When a queue is full the oldest entry is dropped, so a
long outage costs old news, not the latest state.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Protocol

import aiohttp

from tether.backoff import Backoff
from tether.metrics import NOTIFICATIONS
from tether.notify.model import Notification
from tether.notify.sinks import NotifyError, Sink, accepts

log = logging.getLogger(__name__)

OUTCOMES = ("sent", "retried", "dropped")
_NOTIFICATION_FIELDS = {"revision", "diff", "field_manager", "objects", "time", "severity"}


class NamedApp(Protocol):
    """What ``send`` needs of an Application."""

    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...


class Notifier:
    """Delivers notifications to sinks in the background. ``start()`` before use.

    ``sent``, ``retried`` and ``dropped`` count outcomes by sink name, as the
    ``tether_notifications_total`` metric does. A notification is retried ``max_attempts - 1``
    times, waiting ``base_delay * 2**k`` (at most ``max_delay``, with jitter) in between.
    """

    def __init__(
        self,
        sinks: Sequence[Sink],
        *,
        max_attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        queue_size: int = 1000,
    ) -> None:
        names = [s.name for s in sinks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            # Queues, counters and log lines are keyed by name.
            raise ValueError(f"notification sink names must be unique: {', '.join(dupes)}")
        if max_attempts < 1 or queue_size < 1:
            raise ValueError("max_attempts and queue_size must be at least 1")
        self.sinks = list(sinks)
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sent: Counter[str] = Counter()
        self.retried: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self._overflows: Counter[str] = Counter()
        self._queues: dict[str, asyncio.Queue[Notification]] = {
            s.name: asyncio.Queue(maxsize=queue_size) for s in self.sinks
        }
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        for s in self.sinks:
            for outcome in OUTCOMES:
                # Touch every series so a dashboard shows 0, not "no data", before the first event.
                NOTIFICATIONS.labels(sink=s.name, outcome=outcome)

    # ---- the caller's side --------------------------------------------------------------
    def notify(self, n: Notification) -> None:
        """Queue ``n`` for every sink that wants its event; returns at once.

        Call it from the event loop's thread (the queues are asyncio queues).
        """
        for sink in self.sinks:
            if not accepts(sink, n):
                continue
            if self._closed:
                self._count(sink.name, "dropped")
                continue
            q = self._queues[sink.name]
            if q.full():
                q.get_nowait()
                q.task_done()
                self._count(sink.name, "dropped")
                self._overflows[sink.name] += 1
                # One line per hundred, not per drop: a dead sink under a busy controller would
                # otherwise flood the log with the same warning.
                if self._overflows[sink.name] % 100 == 1:
                    log.warning(
                        "notification sink %s is behind: its queue is full, dropped the oldest "
                        "(%d so far)",
                        sink.name,
                        self._overflows[sink.name],
                    )
            q.put_nowait(n)

    def send(self, event: str, app: NamedApp, message: str, **fields: Any) -> None:
        """``notify()`` for a caller holding an Application: the controller's call shape.

        ``fields`` are ``Notification`` fields; others are ignored, so the caller can pass its
        richer records (each object's extra keys are dropped the same way by ``to_json``).
        """
        known = {k: v for k, v in fields.items() if k in _NOTIFICATION_FIELDS}
        self.notify(
            Notification(
                event=event, app=app.name, namespace=app.namespace, message=message, **known
            )
        )

    # ---- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Start one delivery task per sink. Notifications queued before this are delivered."""
        if self._closed:
            raise RuntimeError("notifier is stopped")
        if self._tasks:
            return
        self._session = aiohttp.ClientSession()
        self._tasks = [
            asyncio.create_task(self._run(s), name=f"notify-{s.name}") for s in self.sinks
        ]

    async def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is queued for up to ``timeout`` seconds, then drop the rest (counted)."""
        if self._closed:
            return
        self._closed = True
        if self._tasks:
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*(q.join() for q in self._queues.values()))
            except TimeoutError:
                pass
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
        for name, q in self._queues.items():
            left = q.qsize()
            while not q.empty():
                q.get_nowait()
                q.task_done()
            if left:
                self._count(name, "dropped", left)
                log.warning(
                    "notification sink %s: dropped %d undelivered notifications on shutdown",
                    name,
                    left,
                )
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def aclose(self) -> None:
        await self.stop()

    async def __aenter__(self) -> Notifier:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ---- delivery -----------------------------------------------------------------------
    async def _run(self, sink: Sink) -> None:
        q = self._queues[sink.name]
        while True:
            n = await q.get()
            try:
                await self._deliver(sink, n)
            except asyncio.CancelledError:
                self._count(sink.name, "dropped")
                log.warning(
                    "notification sink %s: dropped a %s notification for %s/%s on shutdown",
                    sink.name,
                    n.event,
                    n.namespace,
                    n.app,
                )
                raise
            finally:
                q.task_done()

    async def _deliver(self, sink: Sink, n: Notification) -> None:
        assert self._session is not None
        for attempt in range(1, self.max_attempts + 1):
            try:
                await sink.send(self._session, n)
            except Exception as e:
                # A sink's own error names the sink only; anything else is a bug in a sink and
                # its text may hold the URL, so only its type is logged.
                why = e.detail if isinstance(e, NotifyError) else type(e).__name__
                if attempt == self.max_attempts:
                    self._count(sink.name, "dropped")
                    log.warning(
                        "notification sink %s: dropped a %s notification for %s/%s after "
                        "%d attempts: %s",
                        sink.name,
                        n.event,
                        n.namespace,
                        n.app,
                        attempt,
                        why,
                    )
                    return
                self._count(sink.name, "retried")
                delay = self._backoff(attempt)
                log.info(
                    "notification sink %s: attempt %d of %d failed (%s); retrying in %.2fs",
                    sink.name,
                    attempt,
                    self.max_attempts,
                    why,
                    delay,
                )
                await asyncio.sleep(delay)
            else:
                self._count(sink.name, "sent")
                return

    def _backoff(self, attempt: int) -> float:
        """Exponential, capped, with half of it random: sinks that failed together (one chat
        service down) do not all retry in the same instant."""
        return Backoff(base=self.base_delay / 2, cap=self.max_delay / 2, jitter=1.0).delay(attempt)

    def _count(self, sink: str, outcome: str, k: int = 1) -> None:
        {"sent": self.sent, "retried": self.retried, "dropped": self.dropped}[outcome][sink] += k
        NOTIFICATIONS.labels(sink=sink, outcome=outcome).inc(k)
