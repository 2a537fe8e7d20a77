"""The presence Lease's renewal: one PUT per renewal, a Lease changed by someone else read
again instead of being overwritten blindly, and a renewal that timed out (a real admission
webhook holds it, then refuses it) followed by one PUT again, not a read."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from admission_hold import AdmissionHold
from cluster_helpers import WAIT
from tether.controller.leader import LEASE_API_VERSION
from tether.controller.presence import PRESENCE_LEASE, Presence, active_controller
from tether.kube import KubeClient

PATH = "/apis/{}/namespaces/{}/leases/{}"


async def test_a_renewal_is_one_put_and_survives_a_foreign_write(
    kube: KubeClient, namespace: str
) -> None:
    presence = Presence(kube, "renewer", lambda: [namespace])
    assert await presence.announce(namespace)  # created: a GET (404) and a POST
    assert await active_controller(kube, namespace) == "renewer"
    before = dict(kube.requests)
    assert await presence.announce(namespace)
    spent = {k: n - before.get(k, 0) for k, n in kube.requests.items() if n != before.get(k, 0)}
    assert spent == {("PUT", 200): 1}, spent
    # Someone else writes the Lease: our remembered resourceVersion is stale (409).
    path = PATH.format(LEASE_API_VERSION, namespace, PRESENCE_LEASE)
    lease = await kube.request("GET", path)
    lease["spec"]["holderIdentity"] = "someone-else"
    await kube.request("PUT", path, body=lease)
    assert await presence.announce(namespace)
    assert await active_controller(kube, namespace) == "renewer"
    await presence.release()
    assert await active_controller(kube, namespace) is None


async def test_a_renewal_that_timed_out_is_sent_again_without_a_read(
    kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    presence = Presence(kube, "renewer", lambda: [namespace], renew_period=1.0)
    assert await presence.announce(namespace)
    hold = await AdmissionHold(
        kube, namespace, "leases", 1, "", operation="UPDATE", group="coordination.k8s.io"
    ).start(tmp_path)
    try:
        # Renewals land until the API server calls the webhook; the first it calls is held
        # past the renewal's timeout (renew_period), so that renewal fails.
        deadline = time.monotonic() + WAIT
        renewed = True
        while not hold.held.is_set() and time.monotonic() < deadline:
            renewed = await presence.announce(namespace)
            if not hold.held.is_set():
                await asyncio.sleep(0.1)
        assert hold.held.is_set() and not renewed
        hold.release()  # refused: the renewal that timed out never landed
        before = dict(kube.requests)
        assert await presence.announce(namespace)
        spent = {k: n - before.get(k, 0) for k, n in kube.requests.items() if n != before.get(k, 0)}
        assert spent == {("PUT", 200): 1}, spent
        assert await active_controller(kube, namespace) == "renewer"
    finally:
        await hold.stop()
        await presence.release()
