"""A list+watch cache of live objects, one informer per resource type.

Each informer lists once, then watches from the list's resourceVersion with bookmarks so
a reconnect resumes where it left off; a 410 Gone (history compacted) means list again.
Listeners are called for every change, which is how drift is seen as it happens.

Beside them, key informers (``existing``) know which objects *outside* the label selector
exist, by key only (a metadata-only list, then a watch): how an object not yet labelled is
told apart from one not yet created without one request per object.

Objects are kept encoded (``tether.compact``) and decoded when read: every read gets a fresh
copy, which its caller may change without touching the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from tether.backoff import Backoff
from tether.compact import decode, encode
from tether.errors import KubeError
from tether.kube.client import Gone, KubeClient, split_api_version
from tether.model import Obj, ResourceKey, resource_version

log = logging.getLogger(__name__)

# Watches of every type drop together when the API server restarts: jitter spreads the relists.
_WATCH_BACKOFF = Backoff(base=0.5, cap=10.0, jitter=0.5)

Listener = Callable[[str, Obj], None]
"""Called with (event type, object) for ADDED, MODIFIED and DELETED."""

METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
"""``Accept`` of a list that needs only the objects' metadata (the server may answer the full
list instead, which is read the same way)."""
_KEY_ONLY = b""
"""The value a key informer keeps per object: nothing but the key."""
_LABEL_KEY = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_./]*")


async def list_keys(
    client: KubeClient, api_version: str, kind: str, namespace: str = "", label_selector: str = ""
) -> tuple[set[ResourceKey], str]:
    """The keys of the objects of one type (in ``namespace``, or all; cluster-scoped types
    ignore it), from one metadata-only list, and the list's resourceVersion."""
    res = await client.resource_for(api_version, kind)
    query = {"labelSelector": label_selector} if label_selector else None
    path = res.path(namespace if res.namespaced else "")
    body = await client.request(
        "GET", path, query=query, headers={"Accept": METADATA_LIST}, timeout=120
    )
    group = split_api_version(api_version)[0]
    keys = {_key(group, kind, it) for it in body.get("items") or []}
    return keys, str((body.get("metadata") or {}).get("resourceVersion", ""))


def _key(group: str, kind: str, obj: Obj) -> ResourceKey:
    meta = obj.get("metadata") or {}
    return ResourceKey(group, kind, str(meta.get("namespace") or ""), str(meta.get("name", "")))


def complement(label_selector: str) -> str | None:
    """The selector of the objects a cache with ``label_selector`` does not hold: ``!key``
    for an existence selector, every object ("") for any other, None when it holds all."""
    if not label_selector:
        return None
    if _LABEL_KEY.fullmatch(label_selector):
        return f"!{label_selector}"
    return ""


@dataclass
class Informer:
    api_version: str
    kind: str
    label_selector: str = ""
    namespace: str = ""
    objects: dict[ResourceKey, bytes] = field(default_factory=dict)
    """Each object, encoded (``tether.compact``; read it with ``LiveCache.get``)."""
    resource_version: str = ""
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    relists: int = 0
    error: KubeError | None = None
    """Set when the first list was refused (403): this type cannot be cached."""
    keys_only: bool = False
    """A key informer: ``objects`` maps each key to empty bytes, and no listener hears of
    its changes."""


class LiveCache:
    def __init__(self, client: KubeClient, *, label_selector: str = "") -> None:
        self.client = client
        self.label_selector = label_selector
        self._informers: dict[tuple[str, str, str], Informer] = {}
        self._tasks: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._listeners: list[Listener] = []
        self._keys: dict[tuple[str, str], Informer] = {}
        self._key_tasks: dict[tuple[str, str], asyncio.Task[None]] = {}

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def ensure(
        self, api_version: str, kind: str, *, namespace: str = "", wait: bool = True
    ) -> Informer:
        """Starts watching a type (in one namespace, or all) if not yet watched; waits for
        its first list."""
        key = (api_version, kind, namespace)
        inf = self._informers.get(key)
        if inf is None:
            await self.client.resource_for(api_version, kind)  # fail fast on unknown kinds
            inf = Informer(api_version, kind, self.label_selector, namespace)
            self._informers[key] = inf
            self._tasks[key] = asyncio.create_task(self._run(inf), name=f"informer {kind}")
        if wait:
            await inf.synced.wait()
        if inf.error is not None:
            raise inf.error
        return inf

    async def existing(self, api_version: str, kind: str) -> Collection[ResourceKey] | None:
        """The keys of the objects of this type the cache does not hold (outside its label
        selector), cluster-wide: one key informer per type, started on the first call and
        shared by every caller after it. None when the cache holds every object of the type.
        Raises KubeError (403) when the type may not be listed cluster-wide."""
        selector = complement(self.label_selector)
        if selector is None:
            return None
        key = (api_version, kind)
        inf = self._keys.get(key)
        if inf is None:
            await self.client.resource_for(api_version, kind)
            inf = Informer(api_version, kind, selector, keys_only=True)
            self._keys[key] = inf
            self._key_tasks[key] = asyncio.create_task(self._run(inf), name=f"keys {kind}")
        await inf.synced.wait()
        if inf.error is not None:
            raise inf.error
        return inf.objects.keys()

    def get(self, key: ResourceKey) -> Obj | None:
        """The cached object (a copy of its own), or None."""
        for (api_version, kind, _), inf in self._informers.items():
            if kind == key.kind and split_api_version(api_version)[0] == key.group:
                raw = inf.objects.get(key)
                if raw is not None:
                    return decode(raw)
        return None

    def all_objects(self) -> list[Obj]:
        """Every cached object (copies)."""
        return [decode(o) for inf in self._informers.values() for o in inf.objects.values()]

    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    async def close(self) -> None:
        tasks = [*self._tasks.values(), *self._key_tasks.values()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        self._key_tasks.clear()

    def _notify(self, event: str, obj: Obj) -> None:
        for fn in self._listeners:
            try:
                fn(event, obj)
            except Exception:
                log.exception("cache listener failed")

    async def _list(self, inf: Informer) -> None:
        if inf.keys_only:
            keys, rv = await list_keys(
                self.client, inf.api_version, inf.kind, inf.namespace, inf.label_selector
            )
            inf.objects = dict.fromkeys(keys, _KEY_ONLY)
            inf.resource_version = rv
            inf.relists += 1
            inf.synced.set()
            return
        items, rv = await self.client.list(
            inf.api_version, inf.kind, inf.namespace, inf.label_selector
        )
        fresh = {ResourceKey.of(o): o for o in items}
        old = inf.objects
        inf.objects = {k: encode(o) for k, o in fresh.items()}
        inf.resource_version = rv
        inf.relists += 1
        if inf.synced.is_set():
            for k, raw in old.items():
                if k not in fresh:
                    self._notify("DELETED", decode(raw))
            for k, o in fresh.items():
                prev = old.get(k)
                if prev is None:
                    self._notify("ADDED", o)
                elif resource_version(decode(prev)) != resource_version(o):
                    self._notify("MODIFIED", o)
        inf.synced.set()

    async def _run(self, inf: Informer) -> None:
        failures = 0
        while True:
            try:
                if not inf.resource_version:
                    await self._list(inf)
                async for ev in self.client.watch(
                    inf.api_version,
                    inf.kind,
                    namespace=inf.namespace,
                    label_selector=inf.label_selector,
                    resource_version=inf.resource_version,
                ):
                    failures = 0
                    meta = ev.object.get("metadata") or {}
                    if meta.get("resourceVersion"):
                        inf.resource_version = str(meta["resourceVersion"])
                    if ev.type == "BOOKMARK":
                        continue
                    if inf.keys_only:
                        key = _key(split_api_version(inf.api_version)[0], inf.kind, ev.object)
                        if ev.type == "DELETED":
                            inf.objects.pop(key, None)
                        else:
                            inf.objects[key] = _KEY_ONLY
                        continue
                    key = ResourceKey.of(ev.object)
                    if ev.type == "DELETED":
                        inf.objects.pop(key, None)
                    else:
                        inf.objects[key] = encode(ev.object)
                    self._notify(ev.type, ev.object)
            except asyncio.CancelledError:
                raise
            except Gone:
                inf.resource_version = ""  # history compacted: list again
            except KubeError as e:
                if e.status in (401, 403) and not inf.synced.is_set():
                    # No permission to list this type: callers read objects one by one.
                    inf.error = e
                    inf.synced.set()
                    return
                failures += 1
                delay = _WATCH_BACKOFF.delay(failures)
                log.warning("watch of %s interrupted: %s; retrying in %.1fs", inf.kind, e, delay)
                await asyncio.sleep(delay)
            except Exception:
                log.exception("informer for %s failed; relisting", inf.kind)
                inf.resource_version = ""
                failures += 1
                await asyncio.sleep(_WATCH_BACKOFF.delay(failures))
