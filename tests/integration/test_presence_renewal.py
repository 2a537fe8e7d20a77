"""The presence Lease's renewal: one PUT per renewal, and a Lease changed by someone else
is read again instead of being overwritten blindly."""

from __future__ import annotations

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
