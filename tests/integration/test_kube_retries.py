"""The Kubernetes client repeats a request the API server refused with 429 or 5xx, when doing it
again is safe, waiting as Retry-After asks.

A real API server with API Priority and Fairness rarely answers 429 on demand, so a small proxy
stands between the client and the real server: it answers the first requests of a chosen kind
with a chosen fault and forwards everything else (and everything after) to the real server.
"""

from __future__ import annotations

import base64
import itertools
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from devcluster.procs import free_port

from tether.errors import KubeError
from tether.kube import KubeClient
from tether.kube.client import RETRY_ATTEMPTS


@dataclass
class Fault:
    method: str
    status: int
    times: int
    retry_after: str = ""
    path_part: str = ""


@dataclass
class FaultProxy:
    """Forwards to the real API server except for the faults it still has to answer."""

    upstream: str
    ssl_context: ssl.SSLContext
    faults: list[Fault] = field(default_factory=list)
    seen: list[tuple[str, str, int, float]] = field(default_factory=list)
    """(method, path, status answered, time.monotonic() on arrival) of every request."""

    def attempts(self, method: str, path_part: str = "") -> list[tuple[str, str, int, float]]:
        return [s for s in self.seen if s[0] == method and path_part in s[1]]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        for fault in self.faults:
            if fault.times and request.method == fault.method and fault.path_part in request.path:
                fault.times -= 1
                self.seen.append((request.method, request.path, fault.status, arrived))
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                status = {"kind": "Status", "apiVersion": "v1", "status": "Failure"}
                return web.json_response(
                    {**status, "message": "injected fault", "code": fault.status},
                    status=fault.status,
                    headers=headers,
                )
        body = await request.read()
        forwarded = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                self.upstream + request.path_qs,
                data=body or None,
                headers=forwarded,
                ssl=self.ssl_context,
            ) as resp,
        ):
            payload = await resp.read()
            self.seen.append((request.method, request.path, resp.status, arrived))
            return web.Response(
                body=payload,
                status=resp.status,
                content_type=resp.content_type,
            )


@pytest.fixture
async def proxied(kubeconfig: str, tmp_path: Path) -> AsyncIterator[tuple[FaultProxy, KubeClient]]:
    """A proxy in front of the real API server, and a client that talks through it."""
    config = yaml.safe_load(Path(kubeconfig).read_text())
    cluster = config["clusters"][0]["cluster"]
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    proxy = FaultProxy(cluster["server"], ssl.create_default_context(cadata=ca))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    config["clusters"][0]["cluster"] = {"server": f"http://127.0.0.1:{port}"}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    client = await KubeClient.connect(str(path))
    try:
        yield proxy, client
    finally:
        await client.close()
        await runner.cleanup()


def configmap(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"k": "v"},
    }


async def test_a_read_refused_with_429_succeeds_after_the_wait_the_server_asked_for(
    proxied: tuple[FaultProxy, KubeClient], namespace: str, kube: KubeClient
) -> None:
    proxy, client = proxied
    await kube.apply(configmap(namespace, "seen"))
    proxy.faults.append(Fault("GET", 429, times=2, retry_after="1", path_part="/configmaps"))

    items, _ = await client.list("v1", "ConfigMap", namespace)

    assert "seen" in [i["metadata"]["name"] for i in items]
    tries = proxy.attempts("GET", "/configmaps")
    assert [status for _, _, status, _ in tries] == [429, 429, 200]
    # Each repeat came no sooner than the one second Retry-After asked for.
    gaps = [b[3] - a[3] for a, b in itertools.pairwise(tries)]
    assert all(gap >= 1.0 for gap in gaps), gaps
    assert client.retries[("GET", 429)] == 2


async def test_a_server_side_apply_answered_503_is_applied_once_it_passes(
    proxied: tuple[FaultProxy, KubeClient], namespace: str, kube: KubeClient
) -> None:
    proxy, client = proxied
    proxy.faults.append(Fault("PATCH", 503, times=2, path_part="/configmaps/applied"))

    out = await client.apply(configmap(namespace, "applied"))

    assert out["data"] == {"k": "v"}
    assert [s for _, _, s, _ in proxy.attempts("PATCH", "/configmaps/applied")] == [503, 503, 201]
    stored = await kube.get("v1", "ConfigMap", "applied", namespace)
    assert stored is not None and stored["data"] == {"k": "v"}


async def test_a_create_refused_with_429_is_created_once(
    proxied: tuple[FaultProxy, KubeClient], namespace: str, kube: KubeClient
) -> None:
    proxy, client = proxied
    proxy.faults.append(Fault("POST", 429, times=1, retry_after="0", path_part="/configmaps"))

    await client.create(configmap(namespace, "created"))

    assert [s for _, _, s, _ in proxy.attempts("POST", "/configmaps")] == [429, 201]
    assert await kube.get("v1", "ConfigMap", "created", namespace) is not None


async def test_a_create_answered_500_is_not_repeated(
    proxied: tuple[FaultProxy, KubeClient], namespace: str, kube: KubeClient
) -> None:
    # After a 500 the server may have created the object: a repeat could create it twice (or
    # answer 409 for an object this very call made), so the error goes to the caller.
    proxy, client = proxied
    proxy.faults.append(Fault("POST", 500, times=1, path_part="/configmaps"))

    with pytest.raises(KubeError) as err:
        await client.create(configmap(namespace, "once"))

    assert err.value.status == 500
    assert [s for _, _, s, _ in proxy.attempts("POST", "/configmaps")] == [500]
    assert client.retries[("POST", 500)] == 0


async def test_a_delete_answered_500_is_repeated_only_with_preconditions(
    proxied: tuple[FaultProxy, KubeClient], namespace: str, kube: KubeClient
) -> None:
    proxy, client = proxied
    live = await kube.apply(configmap(namespace, "bound"))
    await kube.apply(configmap(namespace, "unbound"))
    proxy.faults.append(Fault("DELETE", 500, times=1, path_part="/configmaps/unbound"))
    proxy.faults.append(Fault("DELETE", 500, times=1, path_part="/configmaps/bound"))

    with pytest.raises(KubeError):
        await client.delete("v1", "ConfigMap", "unbound", namespace)
    deleted = await client.delete(
        "v1", "ConfigMap", "bound", namespace, preconditions_uid=live["metadata"]["uid"]
    )

    assert [s for _, _, s, _ in proxy.attempts("DELETE", "/unbound")] == [500]
    assert deleted is True
    assert [s for _, _, s, _ in proxy.attempts("DELETE", "/bound")] == [500, 200]


async def test_a_server_that_keeps_refusing_fails_after_the_last_attempt(
    proxied: tuple[FaultProxy, KubeClient], namespace: str
) -> None:
    proxy, client = proxied
    name = f"never-{uuid.uuid4().hex[:6]}"
    proxy.faults.append(Fault("GET", 503, times=100, retry_after="0", path_part=name))

    with pytest.raises(KubeError) as err:
        await client.get("v1", "ConfigMap", name, namespace)

    assert err.value.status == 503
    assert f"gave up after {RETRY_ATTEMPTS} attempts" in str(err.value)
    assert len(proxy.attempts("GET", name)) == RETRY_ATTEMPTS


async def test_a_retry_after_too_long_to_wait_fails_at_once_saying_so(
    proxied: tuple[FaultProxy, KubeClient], namespace: str
) -> None:
    proxy, client = proxied
    proxy.faults.append(Fault("GET", 429, times=1, retry_after="3600", path_part="/configmaps"))

    with pytest.raises(KubeError) as err:
        await client.list("v1", "ConfigMap", namespace)

    assert err.value.status == 429
    assert "the server asked to retry after 3600s" in str(err.value)
    assert len(proxy.attempts("GET", "/configmaps")) == 1
