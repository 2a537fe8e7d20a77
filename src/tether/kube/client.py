"""One adapter over the Kubernetes API: discovery, server-side apply, dry-run, delete, watch.

Configuration (kubeconfig, in-cluster service account, exec plugins, token refresh and TLS)
comes from ``kubernetes_asyncio``; requests go out as raw JSON over its aiohttp session, so
objects stay plain dicts and no time is spent building model classes we would throw away.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import config as kconfig
from kubernetes_asyncio.client import ApiClient, Configuration

from tether.backoff import Backoff, retry_after
from tether.errors import KubeError
from tether.model import Obj

FIELD_MANAGER = "tether"
DEFAULT_TIMEOUT = 30.0
RETRY_ATTEMPTS = 5
"""Attempts per request, the first included, when the server answers 429 or 5xx."""
RETRY_BACKOFF = Backoff(base=0.2, cap=5.0, jitter=0.5)
"""Waits between attempts when the server does not say (no ``Retry-After``)."""
MAX_RETRY_AFTER = 60.0
"""A longer ``Retry-After`` fails the request at once: a caller's own retry serves it better
than a request held open for minutes."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiResource:
    """One served resource type, as discovery describes it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: frozenset[str]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "", subresource: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base


@dataclass
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: Obj


class Gone(KubeError):
    """The watch's resourceVersion is too old (410): list again."""


def split_api_version(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        g, v = api_version.split("/", 1)
        return g, v
    return "", api_version


class KubeClient:
    """An async client for one cluster. Use ``await KubeClient.connect(...)``."""

    def __init__(self, api: ApiClient, cfg: Configuration) -> None:
        self._api = api
        self._cfg = cfg
        self._host = str(cfg.host or "").rstrip("/")
        self._resources: dict[tuple[str, str], ApiResource] = {}
        self._by_gv: dict[str, list[ApiResource]] = {}
        self._discovered_groups = False
        self._discovery_lock = asyncio.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()
        """Requests made, by (verb, status code): what benchmarks and metrics read."""
        self.retries: Counter[tuple[str, int]] = Counter()
        """Requests repeated after an answer of 429 or 5xx, by (verb, status code)."""

    # ---- construction -------------------------------------------------------------------
    @classmethod
    async def connect(
        cls, kubeconfig: str | None = None, context: str | None = None, *, pool_size: int = 64
    ) -> KubeClient:
        cfg = Configuration()
        in_cluster = (
            kubeconfig is None
            and "KUBERNETES_SERVICE_HOST" in os.environ
            and not (os.environ.get("KUBECONFIG"))
        )
        try:
            if in_cluster:
                kconfig.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            else:
                path = (
                    kubeconfig
                    or os.environ.get("KUBECONFIG")
                    or str(Path.home() / ".kube" / "config")
                )
                path = path.split(os.pathsep)[0]
                if not Path(path).exists():
                    raise KubeError(
                        f"kubeconfig {path} does not exist",
                        hint="pass --kubeconfig or set KUBECONFIG",
                    )
                await kconfig.load_kube_config(
                    config_file=path, context=context, client_configuration=cfg
                )
        except KubeError:
            raise
        except Exception as e:
            raise KubeError(f"cannot load Kubernetes configuration: {e}") from e
        cfg.connection_pool_maxsize = pool_size
        return cls(ApiClient(cfg), cfg)

    async def close(self) -> None:
        await self._api.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def server(self) -> str:
        return self._host

    # ---- raw requests -------------------------------------------------------------------
    async def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        for auth in (await self._cfg.auth_settings()).values():
            headers[auth["key"]] = auth["value"]
        return headers

    async def bearer_token(self) -> str | None:
        """The bearer token this client sends (kubeconfig token, exec plugin, in-cluster
        account), or None when it authenticates otherwise (a client certificate): what a
        service that checks callers with a TokenReview, such as tether's audit API, needs."""
        for auth in (await self._cfg.auth_settings()).values():
            value = str(auth.get("value") or "")
            if str(auth.get("key")).lower() == "authorization" and value[:7].lower() == "bearer ":
                return value[7:].strip() or None
        return None

    def _session(self) -> aiohttp.ClientSession:
        session: aiohttp.ClientSession = self._api.rest_client.pool_manager
        return session

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = DEFAULT_TIMEOUT,
        ok_missing: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One API call; returns the decoded JSON body. Raises KubeError on failure.
        ``headers`` are sent as well (e.g. to a service behind the API server's proxy).

        An answer of 429 or 5xx is retried when repeating the request is safe (see
        :func:`_may_retry`), waiting as long as ``Retry-After`` asks or else by
        :data:`RETRY_BACKOFF`, at most :data:`RETRY_ATTEMPTS` attempts in all.
        """
        url = self._host + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body) if body is not None else None
        preconditions = isinstance(body, dict) and bool(body.get("preconditions"))
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            status, raw, asked = await self._send(
                method, url, path, data, content_type, timeout, headers
            )
            if status == 404 and ok_missing:
                return None
            if status < 300:
                return json.loads(raw) if raw else None
            if not _may_retry(method, status, preconditions):
                raise _api_error(method, path, status, raw)
            if attempt == RETRY_ATTEMPTS:
                raise _api_error(method, path, status, raw, f"gave up after {attempt} attempts")
            wait = asked if asked is not None else RETRY_BACKOFF.delay(attempt)
            if wait > MAX_RETRY_AFTER:
                raise _api_error(
                    method, path, status, raw, f"the server asked to retry after {wait:.0f}s"
                )
            self.retries[(method, status)] += 1
            log.info(
                "%s %s answered %d; retrying in %.1fs%s (attempt %d of %d)",
                method,
                path,
                status,
                wait,
                " as Retry-After asks" if asked is not None else "",
                attempt + 1,
                RETRY_ATTEMPTS,
            )
            await asyncio.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _send(
        self,
        method: str,
        url: str,
        path: str,
        data: str | None,
        content_type: str,
        timeout: float,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, float | None]:
        """One attempt: (status, body, seconds Retry-After asks for or None)."""
        headers = {
            **(extra_headers or {}),
            **await self._headers(content_type if data is not None else None),
        }
        try:
            async with self._session().request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                raw = await resp.read()
                status = resp.status
                asked = retry_after(resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, OSError) as e:
            self.requests[(method, 0)] += 1
            raise KubeError(
                f"cannot reach the Kubernetes API at {self._host}: {e}",
                hint="check that the cluster is running and the kubeconfig points at it",
            ) from e
        except TimeoutError as e:
            self.requests[(method, 0)] += 1
            raise KubeError(f"{method} {path} timed out after {timeout:.0f}s") from e
        self.requests[(method, status)] += 1
        return status, raw, asked

    @property
    def write_requests(self) -> int:
        return sum(n for (verb, _), n in self.requests.items() if verb != "GET")

    # ---- discovery ----------------------------------------------------------------------
    async def _discover_group_version(self, gv: str) -> list[ApiResource]:
        group, version = split_api_version(gv)
        path = f"/apis/{gv}" if group else f"/api/{version}"
        body = await self.request("GET", path, ok_missing=True)
        found: list[ApiResource] = []
        if body:
            for r in body.get("resources", []):
                if "/" in r["name"]:
                    continue  # subresources
                found.append(
                    ApiResource(
                        group,
                        version,
                        r["kind"],
                        r["name"],
                        bool(r["namespaced"]),
                        frozenset(r.get("verbs", [])),
                    )
                )
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
        headers = await self._headers(None)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=timeout_seconds + 30)
        try:
            async with self._session().get(url, headers=headers, timeout=timeout) as resp:
                self.requests[("WATCH", resp.status)] += 1
                if resp.status == 410:
                    raise Gone("watch expired", status=410)
                if resp.status >= 300:
                    raise _api_error("WATCH", res.path(namespace), resp.status, await resp.read())
                async for line in resp.content:
                    if not line.strip():
                        continue
                    ev = json.loads(line)
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


def _may_retry(method: str, status: int, preconditions: bool) -> bool:
    """Whether an answer of ``status`` to ``method`` may be retried without doing twice what
    was asked.

    429 (API Priority and Fairness, max-in-flight) and 503 are refusals before the request was
    acted on, so any request may be repeated. Another 5xx may come after the work was done:
    only requests whose repetition lands in the same state are repeated then: reads, PATCH
    (server-side apply and merge patches state the result, not a change), PUT (carries a
    resourceVersion: a repeat after success is a conflict, not a second write) and a DELETE
    bound to one object by preconditions. A create (POST) is never repeated after one.
    A PATCH answered 500 is not repeated either: kube-apiserver answers 500 for a
    server-side apply it cannot build ("failed to create typed patch object"), which no
    repeat changes; 502 and 504 (a proxy or a timeout in front of it) are repeated.
    """
    if status in (429, 503):
        return True
    if status < 500 or status == 501:
        return False
    if method == "PATCH" and status == 500:
        return False
    if method in ("GET", "HEAD", "PATCH", "PUT"):
        return True
    return method == "DELETE" and preconditions


def _api_error(method: str, path: str, status: int, raw: bytes, retried: str = "") -> KubeError:
    message = raw.decode(errors="replace")[:500]
    reason = ""
    try:
        body = json.loads(raw)
        message = str(body.get("message", message))
        reason = str(body.get("reason", ""))
    except (ValueError, AttributeError):
        pass
    hints = {
        401: "the credentials in the kubeconfig were rejected",
        403: "the identity lacks RBAC permission for this",
        409: "the object changed or another field manager owns the field",
        422: "the object is invalid: fix the manifest in Git",
    }
    if retried:
        message += f" ({retried})"
    err = KubeError(
        f"{method} {path}: {status} {reason}: {message}".replace(":  :", ":"),
        status=status,
        hint=hints.get(status, ""),
    )
    return err
