"""The yardstick of every sync benchmark: what the API server itself allows.

``floor`` sends the given objects as raw server-side applies (no dry-run, no reads), a fixed
number at a time, through one pooled HTTP client, and returns the wall time. ``raw_list`` times
one plain list of a kind, the yardstick of a no-op sync. Neither uses tether's own client, so
the yardstick does not move when tether's client does.

    from floor import Floor
    async with Floor.open(kubeconfig) as f:
        seconds = await f.apply(objs)          # the floor for these objects
        seconds = await f.list("v1", "ConfigMap", namespaces)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
import yaml

FIELD_MANAGER = "bench-floor"
CONCURRENCY = 32


@dataclass
class Floor:
    session: aiohttp.ClientSession
    host: str
    headers: dict[str, str]
    concurrency: int = CONCURRENCY

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, kubeconfig: str, concurrency: int = CONCURRENCY) -> AsyncIterator[Floor]:
        host, headers, ctx = _load(kubeconfig)
        connector = aiohttp.TCPConnector(limit=concurrency, ssl=ctx)
        async with aiohttp.ClientSession(connector=connector) as session:
            yield cls(session, host, headers, concurrency)

    async def apply(self, objs: Iterable[dict[str, Any]]) -> float:
        """Seconds to server-side apply all of ``objs`` (each needs its namespace set if
        namespaced; the kinds must be core/v1 or named by :func:`path_of`)."""
        sem = asyncio.Semaphore(self.concurrency)
        headers = {**self.headers, "Content-Type": "application/apply-patch+yaml"}
        bodies = [(path_of(o), json.dumps(o)) for o in objs]

        async def one(path: str, body: str) -> None:
            async with (
                sem,
                self.session.patch(
                    f"{self.host}{path}?fieldManager={FIELD_MANAGER}&force=true",
                    data=body,
                    headers=headers,
                ) as resp,
            ):
                raw = await resp.read()
                if resp.status >= 300:
                    raise RuntimeError(f"floor apply {path}: {resp.status} {raw[:300]!r}")

        t0 = time.perf_counter()
        await asyncio.gather(*(one(p, b) for p, b in bodies))
        return time.perf_counter() - t0

    async def list(self, plural_path: str, namespaces: Iterable[str]) -> float:
        """Seconds to list ``plural_path`` (``/api/v1/configmaps``-style, without namespace)
        in each namespace, all at once: the reads a no-op sync cannot do without."""
        sem = asyncio.Semaphore(self.concurrency)
        group, plural = plural_path.rsplit("/", 1)

        async def one(ns: str) -> None:
            async with (
                sem,
                self.session.get(
                    f"{self.host}{group}/namespaces/{ns}/{plural}", headers=self.headers
                ) as resp,
            ):
                await resp.read()
                if resp.status >= 300:
                    raise RuntimeError(f"floor list {plural} in {ns}: {resp.status}")

        t0 = time.perf_counter()
        await asyncio.gather(*(one(ns) for ns in namespaces))
        return time.perf_counter() - t0


_PLURALS = {
    "ConfigMap": "configmaps",
    "Service": "services",
    "ServiceAccount": "serviceaccounts",
    "Secret": "secrets",
    "Namespace": "namespaces",
    "Deployment": "deployments",
}


def path_of(obj: dict[str, Any]) -> str:
    """The URL path of one object of the kinds the benchmarks use."""
    api_version = str(obj["apiVersion"])
    base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    meta = obj["metadata"]
    ns = meta.get("namespace")
    if ns and obj["kind"] != "Namespace":
        base += f"/namespaces/{ns}"
    return f"{base}/{_PLURALS[obj['kind']]}/{meta['name']}"


def ratio_line(what: str, seconds: float, floor: float, target: float) -> tuple[str, bool]:
    """``what: 1.23 s = 1.4x the floor (0.88 s); target <= 1.5x: MET`` and whether it is."""
    ratio = seconds / floor if floor > 0 else float("inf")
    met = ratio <= target
    verdict = "MET" if met else "NOT MET"
    line = (
        f"{what}: {seconds:.2f} s = {ratio:.2f}x the floor ({floor:.2f} s); "
        f"target <= {target}x: {verdict}"
    )
    return line, met


def _load(kubeconfig: str) -> tuple[str, dict[str, str], ssl.SSLContext]:
    """Server, headers and TLS of the kubeconfig's current context: a token or a client
    certificate, the CA as a file or inline (what the local control plane writes)."""
    cfg = yaml.safe_load(open(kubeconfig))  # noqa: SIM115
    current = cfg.get("current-context")
    ctx_entry = next(
        (c["context"] for c in cfg.get("contexts", []) if c["name"] == current),
        cfg["contexts"][0]["context"],
    )
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx_entry["cluster"])
    user = next(u["user"] for u in cfg["users"] if u["name"] == ctx_entry["user"])
    tls = ssl.create_default_context()
    if cluster.get("certificate-authority-data"):
        tls.load_verify_locations(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
    elif cluster.get("certificate-authority"):
        tls.load_verify_locations(cluster["certificate-authority"])
    headers = {"Accept": "application/json"}
    if user.get("token"):
        headers["Authorization"] = f"Bearer {user['token']}"
    cert, key = user.get("client-certificate"), user.get("client-key")
    if user.get("client-certificate-data"):
        tmp = tempfile.mkdtemp(prefix="floor-")
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        with open(cert, "wb") as f:
            f.write(base64.b64decode(user["client-certificate-data"]))
        with open(key, "wb") as f:
            f.write(base64.b64decode(user["client-key-data"]))
    if cert and key:
        tls.load_cert_chain(cert, key)
    return str(cluster["server"]).rstrip("/"), headers, tls
