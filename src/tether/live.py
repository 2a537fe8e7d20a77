"""The live objects of an app: read through the watch cache (or the API), with our own applies.

The watch cache may lag behind a write of ours; the newest object each apply returned is kept
until the cache has seen it, so a compare right after a sync sees what the sync wrote.

An object not among the app's labelled ones is looked for by type, not one by one: which
objects of that type exist is one metadata-only list per (type, namespace) (or, with a cache,
its key informer), and only those that exist (unlabelled objects to adopt: rare) are read in
full. A new object therefore costs no read at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from tether.api.application import Application
from tether.errors import KubeError
from tether.kube import KubeClient, LiveCache
from tether.kube.cache import list_keys
from tether.model import Obj, ResourceKey, resource_version
from tether.sync.tracking import label_selector

APPLY_CONCURRENCY = 32

Listed = dict[tuple[str, str, str], list[Obj]]
"""An app's labelled objects by (apiVersion, kind, namespace listed or ``""`` for all)."""


class LiveObjects:
    def __init__(self, kube: KubeClient, cache: LiveCache | None = None) -> None:
        self.kube = kube
        self.cache = cache
        self._applied: dict[ResourceKey, Obj] = {}
        """The newest object each of our applies returned: a watch cache may lag behind it."""
        if cache is not None:
            cache.add_listener(self._on_live_event)

    def _on_live_event(self, event: str, obj: Obj) -> None:
        # Once the cache has seen our write (or a deletion), it is the truth again.
        key = ResourceKey.of(obj)
        mine = self._applied.get(key)
        if mine is not None and (
            event == "DELETED" or resource_version(obj) >= resource_version(mine)
        ):
            del self._applied[key]

    def remember(self, key: ResourceKey, applied: Obj) -> None:
        """Keeps what an apply returned while the watch cache has not delivered it yet."""
        if self.cache is not None:
            cached = self.cache.get(key)
            # Remember it only while the cache lags behind; if the watch already delivered
            # this write, the cache is the truth and nothing needs keeping.
            if cached is None or resource_version(cached) < resource_version(applied):
                self._applied[key] = applied

    async def read(
        self,
        app: Application,
        wanted: Iterable[tuple[ResourceKey, str]],
        listed: Listed | None = None,
        *,
        unowned: frozenset[tuple[str, str]] = frozenset(),
    ) -> dict[ResourceKey, Obj]:
        """Live objects for these (key, apiVersion) pairs: one list per type, then GETs for
        objects not (yet) labelled as this app's. ``listed``: lists already made of the
        app's labelled objects (``list_labelled``), used for the types and scopes they cover.
        ``unowned``: (apiVersion, kind) of which the app has deployed nothing (its inventory
        says): no labelled list is made of them, their objects are looked for as unlabelled
        ones (a first sync then lists each type once, not twice)."""
        wanted = list(wanted)
        live: dict[ResourceKey, Obj] = {}
        by_type: dict[tuple[str, str], list[ResourceKey]] = {}
        for key, api_version in wanted:
            by_type.setdefault((api_version, key.kind), []).append(key)
        if self.cache is not None:
            for (api_version, kind), keys in by_type.items():
                try:
                    await self.cache.ensure(api_version, kind)
                except KubeError as e:
                    if e.status in (401, 403):
                        continue  # not allowed to list this type: read each object below
                    if e.status == 404:
                        continue  # kind not served (yet): its objects are missing
                    raise
                for k in keys:
                    obj = _newer(self.cache.get(k), self._applied.get(k))
                    if obj is not None:
                        live[k] = obj
        else:
            scopes = _scopes(by_type)
            todo = {
                t: ns
                for t, ns in scopes.items()
                if (*t, ns) not in (listed or {}) and t not in unowned
            }
            for (api_version, kind), ns in scopes.items():
                for it in (listed or {}).get((api_version, kind, ns), ()):
                    live[ResourceKey.of(it)] = it
            found = await self._list_labelled(app, todo)
            for items in found.values():
                for it in items:
                    live[ResourceKey.of(it)] = it
        missing = [(k, av) for k, av in wanted if k not in live]
        if not missing:
            return live
        exist = await self._existing(missing)

        async def get_one(key: ResourceKey, api_version: str) -> None:
            try:
                obj = await self.kube.get(api_version, key.kind, key.name, key.namespace)
            except KubeError as e:
                if e.status == 404:
                    return
                raise
            if obj is not None:
                live[key] = obj

        await bounded(APPLY_CONCURRENCY, (get_one(k, av) for k, av in missing if exist(k)))
        return live

    async def namespaces_seen(self, names: Iterable[str]) -> set[str]:
        """Which of ``names`` the watch cache has seen as existing Namespaces (labelled ones,
        or its key informer of those it does not hold), with no request past the informer's
        first list. A name not seen may still exist (the cache lags): read it to be sure."""
        if self.cache is None:
            return set()
        try:
            outside = await self.cache.existing("v1", "Namespace")
        except KubeError as e:
            if e.status in (401, 403, 404):
                return set()  # may not list Namespaces: each is read on its own
            raise
        seen: set[str] = set()
        for name in names:
            key = ResourceKey("", "Namespace", "", name)
            if (outside is not None and key in outside) or self.cache.get(key) is not None:
                seen.add(name)
        return seen

    async def list_labelled(
        self, app: Application, wanted: Iterable[tuple[ResourceKey, str]]
    ) -> Listed:
        """The app's labelled objects of the types of ``wanted``, listed as ``read`` would list
        them (nothing with a watch cache: it is read there). A type whose list fails is left
        out: ``read`` lists it again and reports the failure."""
        if self.cache is not None:
            return {}
        by_type: dict[tuple[str, str], list[ResourceKey]] = {}
        for key, api_version in wanted:
            by_type.setdefault((api_version, key.kind), []).append(key)
        return await self._list_labelled(app, _scopes(by_type), keep_going=True)

    async def _list_labelled(
        self, app: Application, scopes: dict[tuple[str, str], str], *, keep_going: bool = False
    ) -> Listed:
        """One labelled list per (type, namespace or "" for all); a type not served lists
        as empty. ``keep_going``: a failed list is left out instead of raised."""
        out: Listed = {}

        async def list_type(api_version: str, kind: str, ns: str) -> None:
            try:
                items, _ = await self.kube.list(
                    api_version, kind, ns, label_selector=label_selector(app)
                )
            except KubeError as e:
                if e.status == 404:
                    out[(api_version, kind, ns)] = []
                    return
                if keep_going:
                    return
                raise
            out[(api_version, kind, ns)] = items

        await asyncio.gather(*(list_type(av, k, ns) for (av, k), ns in scopes.items()))
        return out

    async def _existing(
        self, missing: list[tuple[ResourceKey, str]]
    ) -> Callable[[ResourceKey], bool]:
        """Which of ``missing`` (not among the app's labelled objects) may exist: one metadata
        list per (type, namespace), or the cache's key informer of the type. A type that may not
        be listed leaves its objects to be read one by one; a type not served has none."""
        groups: dict[tuple[str, str, str], list[ResourceKey]] = {}
        for key, api_version in missing:
            groups.setdefault((api_version, key.kind, key.namespace), []).append(key)
        known: set[ResourceKey] = set()
        unknown: set[ResourceKey] = set()
        by_type: dict[tuple[str, str], list[str]] = {}
        for api_version, kind, ns in groups:
            by_type.setdefault((api_version, kind), []).append(ns)

        async def one_type(api_version: str, kind: str) -> None:
            namespaces = by_type[(api_version, kind)]
            if self.cache is not None:
                try:
                    keys = await self.cache.existing(api_version, kind)
                except KubeError as e:
                    if e.status == 404:
                        return  # kind not served (yet): none of its objects exist
                    if e.status not in (401, 403):
                        raise
                    keys = None  # not allowed cluster-wide: list each namespace below
                else:
                    if keys is None:
                        return  # the cache holds every object of this type
                    known.update(
                        k for ns in namespaces for k in groups[(api_version, kind, ns)] if k in keys
                    )
                    return
            await bounded(
                APPLY_CONCURRENCY, (one_namespace(api_version, kind, ns) for ns in namespaces)
            )

        async def one_namespace(api_version: str, kind: str, ns: str) -> None:
            keys = groups[(api_version, kind, ns)]
            try:
                listed, _ = await list_keys(self.kube, api_version, kind, ns)
            except KubeError as e:
                if e.status == 404:
                    return
                if e.status not in (401, 403):
                    raise
                unknown.update(keys)  # may not list them: read each one
                return
            known.update(k for k in keys if k in listed)

        await asyncio.gather(*(one_type(av, kind) for av, kind in by_type))
        return lambda k: k in known or k in unknown


def _scopes(by_type: dict[tuple[str, str], list[ResourceKey]]) -> dict[tuple[str, str], str]:
    """Where each type is listed: its objects' one namespace (the server then reads far
    fewer objects), else everywhere (``""``)."""
    out: dict[tuple[str, str], str] = {}
    for t, keys in by_type.items():
        namespaces = {k.namespace for k in keys}
        out[t] = namespaces.pop() if len(namespaces) == 1 else ""
    return out


def _newer(a: Obj | None, b: Obj | None) -> Obj | None:
    """The more recent of two versions of one object (etcd resource versions increase)."""
    if a is None or b is None:
        return a if b is None else (b if a is None else a)
    return b if resource_version(b) > resource_version(a) else a


async def bounded(limit: int, coros: Iterable[Any]) -> list[Any]:
    """Runs ``coros`` at most ``limit`` at a time (requests to the API server)."""
    sem = asyncio.Semaphore(limit)

    async def run(c: Any) -> Any:
        async with sem:
            return await c

    return list(await asyncio.gather(*(run(c) for c in coros)))
