"""What the cluster is, for renderers: its version and every API it serves, as Helm's
``Capabilities`` hold them (``--kube-version``, ``--api-versions``).

Read from ``/version`` and discovery, kept per cluster for a short time so a burst of
renders asks once, and refreshed soon after a CRD adds a group.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from tether.kube.client import KubeClient

FACTS_TTL = 60.0
"""Seconds the facts of a cluster are reused."""

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")
_cache: dict[str, tuple[float, tuple[str, tuple[str, ...]]]] = {}
_locks: dict[str, asyncio.Lock] = {}


async def cluster_facts(kube: KubeClient, ttl: float = FACTS_TTL) -> tuple[str, tuple[str, ...]]:
    """``(kube version, api versions)``: e.g. ``1.20.2`` and every ``group/version`` (``v1``
    for the core group) and ``group/version/Kind`` served, sorted."""
    key = kube.server
    lock = _locks.setdefault(key, asyncio.Lock())
    async with lock:
        hit = _cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < ttl:
            return hit[1]
        facts = (await kube_version(kube), await api_versions(kube))
        _cache[key] = (time.monotonic(), facts)
        return facts


def forget(kube: KubeClient | None = None) -> None:
    """Drops the cached facts (of one cluster, or all): the next call asks again."""
    if kube is None:
        _cache.clear()
    else:
        _cache.pop(kube.server, None)


async def kube_version(kube: KubeClient) -> str:
    """``major.minor.patch`` from ``/version`` (``v1.20.2+k3s1`` → ``1.20.2``)."""
    body = await kube.request("GET", "/version")
    git_version = str((body or {}).get("gitVersion") or "")
    m = _VERSION.match(git_version)
    if m:
        return ".".join(m.groups())
    major = str((body or {}).get("major") or "").rstrip("+")
    minor = str((body or {}).get("minor") or "").rstrip("+")
    return f"{major}.{minor}.0" if major and minor else ""


async def api_versions(kube: KubeClient) -> tuple[str, ...]:
    """Every served group/version and group/version/Kind (subresources left out)."""
    core = await kube.request("GET", "/api")
    gvs = [str(v) for v in (core or {}).get("versions") or []]
    groups = await kube.request("GET", "/apis")
    for g in (groups or {}).get("groups") or []:
        gvs += [str(v["groupVersion"]) for v in g.get("versions") or []]
    bodies = await asyncio.gather(*(_resources(kube, gv) for gv in gvs))
    out = set(gvs)
    for gv, body in zip(gvs, bodies, strict=True):
        for r in (body or {}).get("resources") or []:
            if "/" not in str(r.get("name", "")) and r.get("kind"):
                out.add(f"{gv}/{r['kind']}")
    return tuple(sorted(out))


async def _resources(kube: KubeClient, gv: str) -> Any:
    path = f"/apis/{gv}" if "/" in gv else f"/api/{gv}"
    return await kube.request("GET", path, ok_missing=True)
