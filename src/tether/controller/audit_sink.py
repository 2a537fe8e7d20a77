"""The controller's audit sink over a store: appends off the event loop with retries, lost
records logged and counted, readiness while the store is down, and retention."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tether import metrics
from tether.api.application import Application
from tether.audit import AuditError, AuditQueryError, AuditRecord, AuditStore
from tether.audit.model import format_time
from tether.backoff import Backoff

log = logging.getLogger("tether.controller")


AUDIT_BACKOFF = Backoff(base=0.5, cap=5.0, jitter=0.2)
"""Waits between attempts to write an audit record (each may also wait for SQLite's lock)."""
RETENTION_BACKOFF = Backoff(base=30.0, cap=600.0, jitter=0.2)


class StoreAudit:
    """The controller's audit sink over a store; appends run off the event loop.

    A write that fails is retried; a record still not written is logged whole (the log is
    then the trail's only copy) and counted in ``tether_audit_records_lost_total``. While
    the store cannot write, ``writable()`` is False and the controller reports not ready,
    re-checking the store at most every ``probe_interval`` seconds until it can write again.
    """

    def __init__(
        self,
        store: AuditStore,
        *,
        attempts: int = 3,
        backoff: Backoff = AUDIT_BACKOFF,
        probe_interval: float = 5.0,
        health_interval: float = 30.0,
    ) -> None:
        self.store = store
        self.attempts = attempts
        self.backoff = backoff
        self.probe_interval = probe_interval
        self.failure: str | None = None
        """Why the last write (or re-check) failed; None while the store writes."""
        self._probe: asyncio.Task[None] | None = None
        self.health_interval = health_interval
        self._probed_at = time.monotonic()

    async def record(self, kind: str, app: Application, **fields: Any) -> None:
        rec = AuditRecord(
            id=None,
            time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            app=f"{app.namespace}/{app.name}",
            kind=kind,
            revision=str(fields.get("revision", "")),
            author=str(fields.get("author", "")),
            message=str(fields.get("message", "")),
            trigger=str(fields.get("trigger", "")),
            result=str(fields.get("result", "")),
            objects=list(fields.get("objects") or []),
            details=dict(fields.get("details") or {}),
            user=str(fields.get("user", "")),
        )
        await self.append(rec)

    async def append(self, rec: AuditRecord) -> None:
        """Writes ``rec``, retrying; never raises: a lost record is logged and counted."""
        error: AuditError | None = None
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(self.backoff.delay(attempt))
            try:
                await self.store.append(rec)
            except AuditQueryError as e:
                error = e  # the record itself is malformed: writing it again cannot help
                break
            except AuditError as e:
                error = e
                continue
            self.failure = None
            self._probed_at = time.monotonic()  # a write is as good as a check
            return
        assert error is not None
        if not isinstance(error, AuditQueryError):
            self.failure = str(error)
            self._probed_at = time.monotonic()  # just failed: re-check after an interval
        metrics.AUDIT_RECORDS_LOST.labels(kind=rec.kind).inc()
        log.error(
            "audit record lost after %d attempt(s): %s; the record: %s",
            attempt + 1,
            error,
            json.dumps(rec.to_dict(), sort_keys=True, separators=(",", ":")),
            extra={"app": rec.app, "revision": rec.revision},
        )

    def writable(self) -> bool:
        """False while the store cannot write; each call after ``probe_interval`` starts a
        re-check in the background, so a store that recovers makes the controller ready.

        While it writes, a call after ``health_interval`` without a write starts a check too:
        a database server that went down while nothing was written turns readiness off
        without waiting for a record to be lost."""
        now = time.monotonic()
        idle = self._probe is None or self._probe.done()
        if self.failure is None:
            if idle and now - self._probed_at >= self.health_interval:
                self._probed_at = now
                self._probe = asyncio.get_running_loop().create_task(self._recheck())
            return True
        if idle and now - self._probed_at >= self.probe_interval:
            self._probed_at = now
            self._probe = asyncio.get_running_loop().create_task(self._recheck())
        return False

    async def stop(self) -> None:
        """Waits for a re-check in progress: the store must not be closed under it."""
        if self._probe is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe

    async def _recheck(self) -> None:
        try:
            await self.store.check_writable()
        except AuditError as e:
            if self.failure is None:
                log.error("audit store %s cannot be written: %s", self.store.location, e)
            self.failure = str(e)
            return
        if self.failure is not None:
            log.info("audit store %s is writable again", self.store.location)
        self.failure = None


async def expire_once(store: AuditStore, window: timedelta) -> int:
    """Removes the records older than ``window``; logs and counts them."""
    cutoff = format_time(datetime.now(UTC) - window)
    n = await store.expire(cutoff)
    metrics.AUDIT_RECORDS_EXPIRED.inc(n)
    log.info(
        "audit retention removed %d record(s) older than %s from %s", n, cutoff, store.location
    )
    return n


async def run_retention(store: AuditStore, window: timedelta, interval: float) -> None:
    """The leader's retention loop: at once, then every ``interval`` seconds; a failure is
    logged and tried again sooner (backing off), never fatal."""
    failures = 0
    while True:
        try:
            await expire_once(store, window)
            failures = 0
            await asyncio.sleep(interval)
        except AuditError as e:
            failures += 1
            log.error("audit retention failed: %s", e)
            await asyncio.sleep(min(interval, RETENTION_BACKOFF.delay(failures)))
