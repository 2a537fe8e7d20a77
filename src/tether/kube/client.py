"""One adapter over the Kubernetes API: discovery, server-side apply, dry-run, delete, watch.

Requests go through :class:`~tether.kube.transport.Transport` (one pooled session, TLS and
credentials from :mod:`tether.kube.config`, ``orjson`` bodies): objects stay plain dicts and a
request costs little more than the bytes sent.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from tether.errors import KubeError
from tether.kube.answers import (
    DEFAULT_TIMEOUT,
    MAX_RETRY_AFTER,
    RETRY_ATTEMPTS,
    RETRY_BACKOFF,
    api_error,
    may_retry,
)
from tether.kube.config import KubeConfig, load_config
from tether.kube.resources import ApiResource, discovery_path, read_discovery, split_api_version
from tether.kube.transport import Transport
from tether.model import Obj

FIELD_MANAGER = "tether"

__all__ = [  # the transport's settings stay importable from here, where they always were
    "DEFAULT_TIMEOUT",
    "FIELD_MANAGER",
    "MAX_RETRY_AFTER",
    "RETRY_ATTEMPTS",
    "RETRY_BACKOFF",
    "ApiResource",
    "Gone",
    "KubeClient",
    "WatchEvent",
    "may_retry",
    "split_api_version",
]


@dataclass
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: Obj


class Gone(KubeError):
    """The watch's resourceVersion is too old (410): list again."""


class KubeClient(Transport):
    """An async client for one cluster: discovery and the verbs over a :class:`Transport`.
    Use ``await KubeClient.connect(...)``, or ``KubeClient(config)`` with a
    :class:`~tether.kube.config.KubeConfig` of your own."""

    def __init__(self, config: KubeConfig, *, pool_size: int = 64) -> None:
        super().__init__(config, pool_size=pool_size)
        self._resources: dict[tuple[str, str], ApiResource] = {}
        self._by_gv: dict[str, list[ApiResource]] = {}
        self._discovered_groups = False
        self._discovery_lock = asyncio.Lock()

    @classmethod
    async def connect(
        cls, kubeconfig: str | None = None, context: str | None = None, *, pool_size: int = 64
    ) -> KubeClient:
        """A client for the kubeconfig's context (``$KUBECONFIG``'s files merged, or
        ``~/.kube/config``), or, in a Pod given no kubeconfig, its service account."""
        return cls(load_config(kubeconfig, context), pool_size=pool_size)

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- discovery ----------------------------------------------------------------------
    async def _discover_group_version(self, gv: str) -> list[ApiResource]:
        body = await self.request("GET", discovery_path(gv), ok_missing=True)
        found = read_discovery(gv, body)
        self._by_gv[gv] = found
        for res in found:
            self._resources[(gv, res.kind)] = res
        return found

    async def resource_for(self, api_version: str, kind: str) -> ApiResource:
        """Discovery, cached; a miss refreshes that group-version (a new CRD becomes usable)."""
        res = self._resources.get((api_version, kind))
        if res is not None:
            return res
        async with self._discovery_lock:
            res = self._resources.get((api_version, kind))
            if res is None:
                await self._discover_group_version(api_version)
                res = self._resources.get((api_version, kind))
        if res is None:
            raise KubeError(
                f"the cluster does not serve kind {kind} in apiVersion {api_version}",
                status=404,
                hint=await self._unserved_hint(api_version, kind),
            )
        return res

    async def _unserved_hint(self, api_version: str, kind: str) -> str:
        """What to do about an unserved kind: the versions of its group that do serve it
        (``autoscaling/v2`` on a 1.20 cluster: ``autoscaling/v2beta2``...), or the CRD."""
        group, _ = split_api_version(api_version)
        served: list[str] = []
        try:
            if group:
                body = await self.request("GET", f"/apis/{group}", ok_missing=True)
                versions = [str(v.get("groupVersion")) for v in (body or {}).get("versions", [])]
            else:
                versions = ["v1"]
            for gv in versions:
                if gv == api_version:
                    continue
                found = self._by_gv.get(gv)
                if found is None:
                    found = await self._discover_group_version(gv)
                if any(r.kind == kind for r in found):
                    served.append(gv)
        except KubeError:
            served = []
        if served:
            which = "that apiVersion" if len(served) == 1 else "one of those apiVersions"
            return (
                f"this cluster serves {kind} as {', '.join(served)}: use {which}, "
                f"or a cluster that serves {api_version}"
            )
        return "check the apiVersion, or install the CRD that defines it"

    async def wait_for_resource(self, api_version: str, kind: str, timeout: float = 30) -> None:
        """After creating a CRD: wait until discovery serves its kind."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await self.resource_for(api_version, kind)
                return
            except KubeError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def preferred_resources(self) -> list[ApiResource]:
        """Every listable resource type at each group's preferred version."""
        core = await self._discover_group_version("v1")
        out = list(core)
        groups = await self.request("GET", "/apis")
        for g in groups.get("groups", []):
            gv = g["preferredVersion"]["groupVersion"]
            out.extend(await self._discover_group_version(gv))
        return [r for r in out if "list" in r.verbs]

    # ---- verbs --------------------------------------------------------------------------
    async def _res_of(self, obj: Obj) -> ApiResource:
        return await self.resource_for(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))

    async def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> Obj | None:
        res = await self.resource_for(api_version, kind)
        out: Obj | None = await self.request("GET", res.path(namespace, name), ok_missing=True)
        return out

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str = "",
        label_selector: str = "",
    ) -> tuple[list[Obj], str]:
        """Returns (items with apiVersion/kind filled in, list resourceVersion)."""
        res = await self.resource_for(api_version, kind)
        query = {"labelSelector": label_selector} if label_selector else None
        body = await self.request("GET", res.path(namespace), query=query, timeout=120)
        items: list[Obj] = body.get("items", [])
        for it in items:
            it.setdefault("apiVersion", res.api_version)
            it.setdefault("kind", res.kind)
        return items, str(body.get("metadata", {}).get("resourceVersion", ""))

    async def apply(
        self,
        obj: Obj,
        *,
        field_manager: str = FIELD_MANAGER,
        force: bool = True,
        dry_run: bool = False,
        field_validation: str = "",
    ) -> Obj:
        """Server-side apply. ``dry_run`` returns what the server would store;
        ``field_validation`` (``Ignore``, ``Warn``, ``Strict``) is sent when given."""
        res = await self._res_of(obj)
        meta = obj.get("metadata") or {}
        ns = str(meta.get("namespace") or "") if res.namespaced else ""
        if res.namespaced and not ns:
            raise KubeError(f"{obj.get('kind')} {meta.get('name')} needs a namespace")
        query = {"fieldManager": field_manager}
        if force:
            query["force"] = "true"
        if field_validation:
            query["fieldValidation"] = field_validation
        if dry_run:
            query["dryRun"] = "All"
        out: Obj = await self.request(
            "PATCH",
            res.path(ns, str(meta.get("name", ""))),
            query=query,
            body=obj,
            content_type="application/apply-patch+yaml",
        )
        return out

    async def patch_status(self, obj: Obj, status: dict[str, Any]) -> Obj:
        res = await self._res_of(obj)
        meta = obj["metadata"]
        out: Obj = await self.request(
            "PATCH",
            res.path(meta.get("namespace", ""), meta["name"], "status"),
            query={"fieldManager": FIELD_MANAGER},
            body={"status": status},
            content_type="application/merge-patch+json",
        )
        return out

    async def merge_patch(
        self, obj: Obj, patch: dict[str, Any], *, field_manager: str = FIELD_MANAGER
    ) -> Obj:
        res = await self._res_of(obj)
        meta = obj["metadata"]
        out: Obj = await self.request(
            "PATCH",
            res.path(meta.get("namespace", ""), meta["name"]),
            query={"fieldManager": field_manager},
            body=patch,
            content_type="application/merge-patch+json",
        )
        return out

    async def create(self, obj: Obj) -> Obj:
        res = await self._res_of(obj)
        ns = str((obj.get("metadata") or {}).get("namespace") or "")
        out: Obj = await self.request("POST", res.path(ns), body=obj)
        return out

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str = "",
        *,
        propagation: str = "Foreground",
        dry_run: bool = False,
        preconditions_uid: str = "",
    ) -> bool:
        """Deletes one object; False if it was already gone."""
        res = await self.resource_for(api_version, kind)
        body: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": propagation,
        }
        if preconditions_uid:
            body["preconditions"] = {"uid": preconditions_uid}
        if dry_run:
            # The API server reads DeleteOptions from the body when there is one and then
            # ignores the query string: dryRun must travel in the body or it deletes for real.
            body["dryRun"] = ["All"]
        out = await self.request(
            "DELETE",
            res.path(namespace if res.namespaced else "", name),
            body=body,
            ok_missing=True,
        )
        return out is not None

    async def watch(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str = "",
        label_selector: str = "",
        resource_version: str = "",
        timeout_seconds: int = 300,
    ) -> AsyncIterator[WatchEvent]:
        """Yields events until the server ends the watch; raises Gone on 410."""
        import aiohttp  # a watch streams through aiohttp, whichever client sends requests

        res = await self.resource_for(api_version, kind)
        query = {
            "watch": "1",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        if resource_version:
            query["resourceVersion"] = resource_version
        if label_selector:
            query["labelSelector"] = label_selector
        url = self._host + res.path(namespace) + "?" + urllib.parse.urlencode(query)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=timeout_seconds + 30)
        try:
            async with await self.stream(url, timeout) as resp:
                self.requests[("WATCH", resp.status)] += 1
                if resp.status == 410:
                    raise Gone("watch expired", status=410)
                if resp.status >= 300:
                    raise api_error("WATCH", res.path(namespace), resp.status, await resp.read())
                async for line in resp.content:
                    if not line.strip():
                        continue
                    ev = orjson.loads(line)
                    if ev.get("type") == "ERROR":
                        code = int((ev.get("object") or {}).get("code", 0))
                        if code == 410:
                            raise Gone("watch expired", status=410)
                        raise KubeError(f"watch of {kind} failed: {ev.get('object')}", status=code)
                    obj = ev["object"]
                    obj.setdefault("apiVersion", res.api_version)
                    obj.setdefault("kind", res.kind)
                    yield WatchEvent(ev["type"], obj)
        except (aiohttp.ClientError, OSError) as e:
            raise KubeError(f"watch of {kind} interrupted: {e}") from e
