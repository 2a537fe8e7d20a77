"""What happened to the objects of one namespace during a sync, in order, from its watch.

A ``Timeline`` watches a few kinds in one namespace from the moment it starts, and keeps every
change: the object as stored, its ``resourceVersion`` and when the event arrived. The order of
changes comes from the resourceVersions (on one API server they are etcd's revision, one
sequence for every kind), so "created after the Deployment became available" is a comparison
of two numbers, not of clocks. The arrival times give the seconds each step took. Used by
the tests of the example repositories and by ``bench/sync.py --timeline``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tether.errors import KubeError
from tether.kube import KubeClient

Obj = dict[str, Any]
Match = Callable[[Obj], bool]


@dataclass(frozen=True)
class Change:
    type: str
    """ADDED, MODIFIED or DELETED."""
    kind: str
    name: str
    rv: int
    at: float
    """Seconds since the timeline started, when the event arrived."""
    obj: Obj = field(repr=False)


def job_complete(obj: Obj) -> bool:
    return _condition(obj, "Complete")


def job_failed(obj: Obj) -> bool:
    return _condition(obj, "Failed")


def deployment_available(obj: Obj) -> bool:
    """Every wanted replica updated and available, for the current generation."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = int(spec.get("replicas", 1))
    return (
        int(status.get("observedGeneration", 0)) >= int(obj["metadata"].get("generation", 0))
        and int(status.get("updatedReplicas", 0)) == want
        and int(status.get("availableReplicas", 0)) == want
        and int(status.get("replicas", 0)) == want
    )


def _condition(obj: Obj, ctype: str) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == ctype and c.get("status") == "True" for c in conditions)


class Timeline:
    def __init__(self, kube: KubeClient, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.changes: list[Change] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._t0 = time.perf_counter()

    async def start(self, *kinds: tuple[str, str]) -> Timeline:
        """Watches each (apiVersion, kind) of the namespace from now on; returns once every
        watch is anchored (a change made after this returns is seen)."""
        self._t0 = time.perf_counter()
        for api_version, kind in kinds:
            await self.add(api_version, kind, self.namespace)
        return self

    async def add(self, api_version: str, kind: str, namespace: str) -> None:
        """Watches ``kind`` in another namespace too, on the same clock."""
        _, rv = await self.kube.list(api_version, kind, namespace)
        self._tasks.append(asyncio.create_task(self._watch(api_version, kind, namespace, rv)))

    def now(self) -> float:
        """Seconds since the timeline started, on the clock of ``Change.at``."""
        return time.perf_counter() - self._t0

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self, api_version: str, kind: str, namespace: str, rv: str) -> None:
        """Keeps watching from the last resourceVersion seen when the watch is interrupted
        (the API server restarting, the server ending the watch)."""
        while True:
            try:
                async for ev in self.kube.watch(
                    api_version, kind, namespace=namespace, resource_version=rv
                ):
                    if ev.type not in ("ADDED", "MODIFIED", "DELETED"):
                        continue
                    meta = ev.object["metadata"]
                    rv = str(meta["resourceVersion"])
                    self.changes.append(
                        Change(ev.type, kind, str(meta["name"]), int(rv), self.now(), ev.object)
                    )
            except KubeError:
                await asyncio.sleep(0.5)

    # ---- questions --------------------------------------------------------------------

    def find(
        self,
        kind: str,
        name: str,
        match: Match | None = None,
        *,
        types: tuple[str, ...] = ("ADDED", "MODIFIED", "DELETED"),
        after: int = 0,
        prefix: bool = False,
    ) -> Change | None:
        """The first change (by resourceVersion) of ``kind``/``name`` (a name prefix with
        ``prefix``, for generated names) after resourceVersion ``after``, of one of
        ``types``, whose object satisfies ``match`` if given."""
        found = [
            c
            for c in self.changes
            if c.kind == kind
            and (c.name.startswith(name) if prefix else c.name == name)
            and c.rv > after
            and c.type in types
            and (match is None or match(c.obj))
        ]
        return min(found, key=lambda c: c.rv) if found else None

    async def first(
        self,
        kind: str,
        name: str,
        match: Match | None = None,
        *,
        types: tuple[str, ...] = ("ADDED", "MODIFIED"),
        after: int = 0,
        prefix: bool = False,
        timeout: float = 90.0,
    ) -> Change:
        """As ``find``, waiting up to ``timeout`` seconds for the watch to report it."""
        deadline = time.perf_counter() + timeout
        while True:
            change = self.find(kind, name, match, types=types, after=after, prefix=prefix)
            if change is not None:
                return change
            if time.perf_counter() > deadline:
                what = getattr(match, "__name__", "") if match is not None else "/".join(types)
                raise AssertionError(
                    f"{kind} {name}: no {what} change within {timeout}s; seen: {self.summary()}"
                )
            await asyncio.sleep(0.05)

    async def created(
        self, kind: str, name: str, *, after: int = 0, prefix: bool = False
    ) -> Change:
        return await self.first(kind, name, types=("ADDED",), after=after, prefix=prefix)

    async def deleted(
        self, kind: str, name: str, *, after: int = 0, prefix: bool = False
    ) -> Change:
        return await self.first(kind, name, types=("DELETED",), after=after, prefix=prefix)

    async def reached(
        self, kind: str, name: str, match: Match, *, after: int = 0, prefix: bool = False
    ) -> Change:
        """The first change after which ``match`` holds for the object."""
        return await self.first(kind, name, match, after=after, prefix=prefix)

    def added(self, kind: str) -> list[str]:
        """The names of ``kind`` created, in the order they were."""
        return [c.name for c in self.ordered() if c.kind == kind and c.type == "ADDED"]

    def ordered(self) -> list[Change]:
        return sorted(self.changes, key=lambda c: c.rv)

    def summary(self) -> list[str]:
        return [f"{c.type} {c.kind}/{c.name}@{c.rv}" for c in self.ordered()]
