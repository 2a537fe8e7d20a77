"""A list+watch cache of live objects, one informer per resource type.

Each informer lists once, then watches from the list's resourceVersion with bookmarks so
a reconnect resumes where it left off; a 410 Gone (history compacted) means list again.
Listeners are called for every change, which is how drift is seen as it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from tether.backoff import Backoff
from tether.errors import KubeError
from tether.kube.client import Gone, KubeClient, split_api_version
from tether.model import Obj, ResourceKey

log = logging.getLogger(__name__)

# Watches of every type drop together when the API server restarts: jitter spreads the relists.
_WATCH_BACKOFF = Backoff(base=0.5, cap=10.0, jitter=0.5)

Listener = Callable[[str, Obj], None]
"""Called with (event type, object) for ADDED, MODIFIED and DELETED."""


@dataclass
class Informer:
    api_version: str
    kind: str
    label_selector: str = ""
    namespace: str = ""
    objects: dict[ResourceKey, Obj] = field(default_factory=dict)
    resource_version: str = ""
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    relists: int = 0
    error: KubeError | None = None
    """Set when the first list was refused (403): this type cannot be cached."""


class LiveCache:
    def __init__(self, client: KubeClient, *, label_selector: str = "") -> None:
        self.client = client
        self.label_selector = label_selector
        self._informers: dict[tuple[str, str, str], Informer] = {}
        self._tasks: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._listeners: list[Listener] = []

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

    def get(self, key: ResourceKey) -> Obj | None:
        for (api_version, kind, _), inf in self._informers.items():
            if kind == key.kind and split_api_version(api_version)[0] == key.group:
                obj = inf.objects.get(key)
                if obj is not None:
                    return obj
        return None

    def all_objects(self) -> list[Obj]:
        return [o for inf in self._informers.values() for o in inf.objects.values()]

    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    async def close(self) -> None:
        for t in self._tasks.values():
            t.cancel()
        for t in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()

    def _notify(self, event: str, obj: Obj) -> None:
        for fn in self._listeners:
            try:
                fn(event, obj)
            except Exception:
                log.exception("cache listener failed")

    async def _list(self, inf: Informer) -> None:
        items, rv = await self.client.list(
            inf.api_version, inf.kind, inf.namespace, inf.label_selector
        )
        fresh = {ResourceKey.of(o): o for o in items}
        old = inf.objects
        inf.objects = fresh
        inf.resource_version = rv
        inf.relists += 1
        if inf.synced.is_set():
            for k, o in old.items():
                if k not in fresh:
                    self._notify("DELETED", o)
            for k, o in fresh.items():
                prev = old.get(k)
                if prev is None:
                    self._notify("ADDED", o)
                elif prev.get("metadata", {}).get("resourceVersion") != o.get("metadata", {}).get(
                    "resourceVersion"
                ):
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
                    key = ResourceKey.of(ev.object)
                    if ev.type == "DELETED":
                        inf.objects.pop(key, None)
                    else:
                        inf.objects[key] = ev.object
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
