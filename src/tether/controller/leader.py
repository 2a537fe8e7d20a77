"""Leader election on a coordination.k8s.io/v1 Lease, so only one controller replica acts.

The semantics are client-go's: a candidate takes the Lease when it does not exist or when
its holder stopped renewing it (``renewTime + leaseDurationSeconds`` is in the past, or the
holder released it); every write carries the resourceVersion that was read, so when two
candidates race the API server accepts one and answers 409 to the other. The leader renews
every ``retry_period`` and gives up once renewing has failed for ``renew_deadline``, which
is shorter than the lease duration, so it stops acting before anyone else may start.

Two choices differ from client-go. A leader that sees another live holder steps down at
once rather than retrying until its deadline, and on shutdown the lease is released only
after the leader's work has stopped, so a successor never overlaps it. And expiry is judged
from the Lease's ``renewTime`` against this machine's wall clock, so replicas need
synchronised clocks (NTP); client-go times expiry from when it first saw a record, which
tolerates skew but makes a freshly started candidate wait a full lease duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tether import metrics
from tether.backoff import Backoff
from tether.errors import KubeError
from tether.kube.client import KubeClient
from tether.model import Obj

log = logging.getLogger(__name__)

LEASE_API_VERSION = "coordination.k8s.io/v1"
# Candidates wait retry_period plus up to this fraction more between attempts, so replicas
# that started together do not keep hitting the API server in lockstep. Kept small because
# the worst-case takeover time after a crash is lease_duration + retry_period * (1 + JITTER).
JITTER = 0.2
WORK_FAILED = "on_started_leading failed"


class _Attempt(enum.Enum):
    ACQUIRED = "acquired"  # we hold the lease now (taken or renewed)
    HELD = "held"  # someone else holds a live lease
    FAILED = "failed"  # the API call failed or lost a race: try again


def format_micro_time(t: datetime) -> str:
    """A MicroTime as the API server writes it: ``2026-11-26T04:31:38.123456Z``."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


class LeaderElector:
    """Campaigns for one Lease and runs a callback while holding it.

    ``release_on_stop=False`` makes a cancelled ``run()`` leave the Lease as it is, as a
    crashed process would, so the next leader has to wait for it to expire.
    """

    def __init__(
        self,
        kube: KubeClient,
        *,
        namespace: str,
        name: str = "tether-controller",
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        release_on_stop: bool = True,
    ) -> None:
        if not identity:
            raise ValueError("leader election needs a non-empty identity")
        # The leader must notice it failed to renew (renew_deadline) before its lease can
        # expire for the others (lease_duration), or two replicas could act at once.
        if not lease_duration > renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if not renew_deadline > retry_period * (1 + JITTER):
            raise ValueError(f"renew_deadline must exceed retry_period * {1 + JITTER}")
        if retry_period <= 0:
            raise ValueError("retry_period must be positive")
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_stop = release_on_stop
        self.leading = asyncio.Event()
        """Set while this elector holds the lease."""
        self._observed: Obj | None = None  # the Lease as our last successful write left it
        self._last_error = ""

    @property
    def is_leader(self) -> bool:
        return self.leading.is_set()

    @property
    def _path(self) -> str:
        return f"/apis/{LEASE_API_VERSION}/namespaces/{self.namespace}/leases/{self.name}"

    # ---- the loop ---------------------------------------------------------------------
    async def run(
        self,
        on_started_leading: Callable[[], Awaitable[None]],
        on_stopped_leading: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Campaigns for ever: waits to acquire, then runs ``on_started_leading`` as a task
        and renews. As in client-go, that callback may run for the whole term or start
        background work and return; leadership lasts until the lease is lost either way.
        If it raises, this replica steps down and releases the lease so a healthy one can
        lead. On loss the task (if still running) is cancelled and ``on_stopped_leading``
        awaited, then campaigning resumes. Cancel ``run()`` to stop; a leader then releases
        the lease (unless ``release_on_stop`` is False)."""
        while True:
            await self._acquire()
            work_failed = await self._lead(on_started_leading, on_stopped_leading)
            if work_failed:
                # Give the other replicas the first chance at the lease we just released.
                await asyncio.sleep(self.retry_period)

    async def _acquire(self) -> None:
        log.info("campaigning for lease %s/%s as %s", self.namespace, self.name, self.identity)
        while True:
            if await self._attempt(self.renew_deadline) is _Attempt.ACQUIRED:
                return
            await asyncio.sleep(Backoff(self.retry_period, factor=1, jitter=JITTER).delay(1))

    async def _lead(
        self,
        on_started_leading: Callable[[], Awaitable[None]],
        on_stopped_leading: Callable[[], Awaitable[None]] | None,
    ) -> bool:
        """Runs the work while renewing; returns True if the work failed."""
        self.leading.set()
        metrics.LEADER.set(1)
        log.info("%s acquired lease %s/%s", self.identity, self.namespace, self.name)

        async def work_fn() -> None:
            await on_started_leading()

        work = asyncio.create_task(work_fn(), name=f"leader-work-{self.name}")
        try:
            why = await self._renew_while(work)
        except BaseException:
            # Cancelled (or a bug below): the work must not outlive the leadership.
            self._not_leading("stopped")
            stopped = await self._stop(work)
            # Release only once the work has stopped: a successor must never overlap it.
            if self.release_on_stop and stopped:
                await self.release()
            await self._call_stopped(on_stopped_leading)
            raise
        # Say so at once (is_leader, the metric), before waiting for the work to stop.
        self._not_leading(why)
        stopped = await self._stop(work)
        if why == WORK_FAILED and stopped:
            # Nothing runs any more, so hold nothing: a peer can take over at once.
            await self.release()
        await self._call_stopped(on_stopped_leading)
        return why == WORK_FAILED

    async def _renew_while(self, work: asyncio.Task[None]) -> str:
        """Renews every retry_period until leadership ends; returns why it ended."""
        loop = asyncio.get_running_loop()
        last_renewed = loop.time()
        while True:
            if work.done():
                await asyncio.sleep(self.retry_period)
            else:
                await asyncio.wait([work], timeout=self.retry_period)
                if work.done() and (work.cancelled() or work.exception() is not None):
                    return WORK_FAILED
            remaining = self.renew_deadline - (loop.time() - last_renewed)
            outcome = await self._attempt(max(remaining, 0.1))
            if outcome is _Attempt.ACQUIRED:
                last_renewed = loop.time()
                continue
            if outcome is _Attempt.HELD:
                return "another replica holds the lease"
            if loop.time() - last_renewed >= self.renew_deadline:
                return f"could not renew for {self.renew_deadline:g}s"

    async def _stop(self, work: asyncio.Task[None]) -> bool:
        """Cancels the work and waits (bounded) for it; True once it has finished.

        After a failed renewal the work has ``lease_duration - renew_deadline`` seconds to
        stop before another replica may start: it must honour cancellation promptly."""
        if not work.done():
            work.cancel()
            await asyncio.wait([work], timeout=self.renew_deadline)
        if not work.done():
            log.error("leader work did not stop within %gs of cancellation", self.renew_deadline)
            return False
        if not work.cancelled() and work.exception() is not None:
            log.error("leader work failed", exc_info=work.exception())
        return True

    def _not_leading(self, why: str) -> None:
        self.leading.clear()
        metrics.LEADER.set(0)
        self._observed = None
        # Stopping on request is routine; any other loss means something went wrong.
        level = logging.INFO if why == "stopped" else logging.WARNING
        log.log(
            level,
            "%s stepped down from lease %s/%s: %s",
            self.identity,
            self.namespace,
            self.name,
            why,
        )

    @staticmethod
    async def _call_stopped(on_stopped_leading: Callable[[], Awaitable[None]] | None) -> None:
        if on_stopped_leading is None:
            return
        try:
            await on_stopped_leading()
        except Exception:
            log.exception("on_stopped_leading failed")

    # ---- one attempt --------------------------------------------------------------------
    async def _attempt(self, timeout: float) -> _Attempt:
        try:
            async with asyncio.timeout(timeout):
                outcome = await self._try_acquire_or_renew()
        except (KubeError, TimeoutError) as e:
            self._failed(str(e) or f"lease request timed out after {timeout:.1f}s")
            return _Attempt.FAILED
        except Exception as e:
            # Unexpected, but still only a failed attempt: the renew deadline decides.
            self._failed(f"{type(e).__name__}: {e}", exc_info=True)
            return _Attempt.FAILED
        self._last_error = ""
        return outcome

    def _failed(self, message: str, *, exc_info: bool = False) -> None:
        # The same failure every retry_period: say it once, not every two seconds.
        if message != self._last_error:
            log.warning(
                "leader election for %s/%s: %s",
                self.namespace,
                self.name,
                message,
                exc_info=exc_info,
            )
            self._last_error = message

    async def _try_acquire_or_renew(self) -> _Attempt:
        now = datetime.now(UTC)
        # Fast path for a leader: write over the Lease our last renewal returned. If anyone
        # else wrote since, its resourceVersion is stale and the server answers 409.
        observed = self._observed if self.leading.is_set() else None
        if observed is not None and await self._write(observed, self._spec(observed, now)):
            return _Attempt.ACQUIRED
        current: Obj | None = await self.kube.request("GET", self._path, ok_missing=True)
        if current is None:
            lease: Obj = {
                "apiVersion": LEASE_API_VERSION,
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(None, now),
            }
            try:
                self._observed = await self.kube.request(
                    "POST", self._path.rsplit("/", 1)[0], body=lease
                )
            except KubeError as e:
                if e.status == 409:  # another candidate created it first
                    return _Attempt.FAILED
                raise
            return _Attempt.ACQUIRED
        spec = current.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        if holder and holder != self.identity and not lease_expired(spec, now):
            self._observed = None
            return _Attempt.HELD
        if await self._write(current, self._spec(current, now)):
            return _Attempt.ACQUIRED
        return _Attempt.FAILED

    def _spec(self, current: Obj | None, now: datetime) -> dict[str, Any]:
        old = (current or {}).get("spec") or {}
        ours = old.get("holderIdentity") == self.identity
        stamp = format_micro_time(now)
        return {
            "holderIdentity": self.identity,
            # An integer field: rounding up keeps it at least as long as we assume it is.
            "leaseDurationSeconds": math.ceil(self.lease_duration),
            # Renewing keeps the acquisition time and count; taking over starts a new term.
            "acquireTime": old.get("acquireTime") if ours and old.get("acquireTime") else stamp,
            "renewTime": stamp,
            "leaseTransitions": int(old.get("leaseTransitions") or 0)
            + (0 if ours or current is None else 1),
        }

    async def _write(self, current: Obj, spec: dict[str, Any]) -> bool:
        """PUTs ``spec`` at ``current``'s resourceVersion; False if someone wrote first."""
        body = {**current, "spec": spec}
        try:
            self._observed = await self.kube.request("PUT", self._path, body=body)
        except KubeError as e:
            if e.status == 409:
                self._observed = None
                return False
            raise
        return True

    # ---- release ------------------------------------------------------------------------
    async def release(self) -> bool:
        """Gives the lease up if we hold it, so a successor need not wait for it to expire.

        ``run()`` calls this when it is cancelled while leading. Returns True if released.
        """
        try:
            async with asyncio.timeout(self.renew_deadline):
                current: Obj | None = await self.kube.request("GET", self._path, ok_missing=True)
                spec = (current or {}).get("spec") or {}
                if current is None or spec.get("holderIdentity") != self.identity:
                    return False
                now = datetime.now(UTC)
                released = {
                    **spec,
                    "holderIdentity": "",
                    "leaseDurationSeconds": 1,
                    # In the past too, for electors that only look at the timestamps.
                    "renewTime": format_micro_time(now - timedelta(seconds=2)),
                }
                # At the resourceVersion we read: never overwrite a successor's lease.
                if not await self._write(current, released):
                    return False
        except Exception as e:  # called while shutting down: report, never raise
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, e)
            return False
        finally:
            self._observed = None
        log.info("%s released lease %s/%s", self.identity, self.namespace, self.name)
        return True


def lease_expired(spec: dict[str, Any], now: datetime) -> bool:
    """A Lease whose holder stopped renewing: ``renewTime + leaseDurationSeconds`` passed."""
    renewed = parse_micro_time(spec.get("renewTime"))
    if renewed is None:
        return True
    with contextlib.suppress(TypeError, ValueError):
        duration = float(spec.get("leaseDurationSeconds") or 0)
        return renewed + timedelta(seconds=duration) < now
    return True
