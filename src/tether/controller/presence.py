"""The active controller's announcement that it runs: a Lease per watched namespace.

``tether app sync`` asks ``active_controller`` whether a controller runs for the app's
namespace: when one does, the CLI records the request on the Application and the controller
runs it; when none does, the CLI runs the operation itself. The announcement is a
coordination.k8s.io/v1 Lease named ``tether-controller-presence`` in each namespace the
controller watches, held by the active controller only (the leader, under HA), renewed
every few seconds, and released when the controller stops cleanly. A controller that dies
stops renewing; its Lease then expires after ``leaseDurationSeconds``.

Unlike the leader Lease, nobody campaigns for this one: only the active controller writes
it, so it simply overwrites whatever a previous active controller left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tether.controller.leader import LEASE_API_VERSION, format_micro_time, lease_expired
from tether.errors import KubeError
from tether.kube.client import KubeClient
from tether.model import Obj

log = logging.getLogger(__name__)

PRESENCE_LEASE = "tether-controller-presence"
LEASE_DURATION = 15.0
RENEW_PERIOD = 5.0


def _path(namespace: str) -> str:
    return f"/apis/{LEASE_API_VERSION}/namespaces/{namespace}/leases/{PRESENCE_LEASE}"


async def active_controller(kube: KubeClient, namespace: str) -> str | None:
    """The identity of the controller running for ``namespace`` (its presence Lease is
    held and renewed in time), None when none runs."""
    lease: Obj | None = await kube.request("GET", _path(namespace), ok_missing=True)
    spec = (lease or {}).get("spec") or {}
    holder = str(spec.get("holderIdentity") or "")
    if not holder or lease_expired(spec, datetime.now(UTC)):
        return None
    return holder


class Presence:
    """Holds the presence Lease in each namespace ``namespaces()`` names, while ``run()``
    runs; cancelling ``run()`` releases them."""

    def __init__(
        self,
        kube: KubeClient,
        identity: str,
        namespaces: Callable[[], list[str]],
        *,
        lease_duration: float = LEASE_DURATION,
        renew_period: float = RENEW_PERIOD,
    ) -> None:
        if not renew_period < lease_duration:
            raise ValueError("renew_period must be shorter than lease_duration")
        self.kube = kube
        self.identity = identity
        self.namespaces = namespaces
        self.lease_duration = lease_duration
        self.renew_period = renew_period
        self.held: set[str] = set()
        self._last_error: dict[str, str] = {}
        self._written: dict[str, Obj] = {}
        """The Lease as this controller last wrote it, per namespace: a renewal is then one
        PUT (its resourceVersion guards it), not a GET and a PUT."""

    async def run(self) -> None:
        try:
            while True:
                for ns in self.namespaces():
                    await self.announce(ns)
                await asyncio.sleep(self.renew_period)
        finally:
            # Shielded: a cancelled run() still gets its releases out.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self.release())

    async def announce(self, namespace: str) -> bool:
        """Writes (creates or renews) the Lease in ``namespace``; False when it failed
        (said once per distinct failure, then retried on the next round)."""
        try:
            async with asyncio.timeout(self.renew_period):
                await self._write(namespace)
        except (KubeError, TimeoutError) as e:
            message = str(e) or "timed out"
            if self._last_error.get(namespace) != message:
                log.warning(
                    "cannot announce the controller in %s (lease %s): %s",
                    namespace,
                    PRESENCE_LEASE,
                    message,
                )
                self._last_error[namespace] = message
            return False
        self._last_error.pop(namespace, None)
        self.held.add(namespace)
        return True

    async def _write(self, namespace: str) -> None:
        path = _path(namespace)
        # Kept when a renewal fails or times out (it may not have landed): the next one is
        # again one PUT at the same resourceVersion, answered 409 only if this one landed.
        mine = self._written.get(namespace)
        if mine is not None:
            try:
                self._written[namespace] = await self._put(path, mine)
                return
            except KubeError as e:
                if e.status not in (404, 409):
                    raise
                # Changed or deleted by someone else since our write: read it again.
                del self._written[namespace]
        current: Obj | None = await self.kube.request("GET", path, ok_missing=True)
        if current is None:
            lease: Obj = {
                "apiVersion": LEASE_API_VERSION,
                "kind": "Lease",
                "metadata": {"name": PRESENCE_LEASE, "namespace": namespace},
                "spec": self._spec(None, datetime.now(UTC)),
            }
            self._written[namespace] = await self.kube.request(
                "POST", path.rsplit("/", 1)[0], body=lease
            )
            return
        self._written[namespace] = await self._put(path, current)

    async def _put(self, path: str, current: Obj) -> Obj:
        spec = self._spec(current, datetime.now(UTC))
        out: Obj = await self.kube.request("PUT", path, body={**current, "spec": spec})
        return out

    def _spec(self, current: Obj | None, now: datetime) -> dict[str, Any]:
        old = (current or {}).get("spec") or {}
        stamp = format_micro_time(now)
        ours = old.get("holderIdentity") == self.identity
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": math.ceil(self.lease_duration),
            "acquireTime": old.get("acquireTime") if ours and old.get("acquireTime") else stamp,
            "renewTime": stamp,
        }

    async def release(self) -> None:
        """Clears the holder of every Lease this controller holds (a clean stop)."""
        for ns in sorted(self.held):
            try:
                async with asyncio.timeout(self.renew_period):
                    await self._release(ns)
            except Exception as e:  # called while stopping: report, never raise
                log.warning("could not release lease %s/%s: %s", ns, PRESENCE_LEASE, e)
        self.held.clear()
        self._written.clear()

    async def _release(self, namespace: str) -> None:
        path = _path(namespace)
        current: Obj | None = await self.kube.request("GET", path, ok_missing=True)
        spec = (current or {}).get("spec") or {}
        if current is None or spec.get("holderIdentity") != self.identity:
            return
        released = {
            **spec,
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "renewTime": format_micro_time(datetime.now(UTC) - timedelta(seconds=2)),
        }
        with contextlib.suppress(KubeError):  # 409: a successor wrote it; leave it alone
            await self.kube.request("PUT", path, body={**current, "spec": released})
