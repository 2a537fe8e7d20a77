"""The desired objects each app was last given, and what they were worked out from, so that
an app whose inputs did not change is not marked, namespaced and checked again.

An entry holds, for one app: the basis (the Application's identity, metadata and spec, the
revision asked for, each source's resolved commit, the cluster facts), the Project it was
checked against, each source's render cache key, the rendered manifests (as the render cache
gave them) and what was made of them. It is used only when the basis and the Project are equal
and the render cache still gives back *the very same* rendered objects for the same keys: any
change in Git (a new commit), in the Project, in the Application or a new render misses, and
the next sync works everything out again. Apps with a chart from a Helm repository are not
kept (their render key also holds the chart's digest, which a resolve does not give).

What it hands out is a copy: nothing a sync does to its desired objects reaches the entry.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from tether.api.application import Application
from tether.api.project import Project
from tether.diff.normalize import copy_json
from tether.errors import InvalidSpec
from tether.model import Manifest
from tether.render.cache import RenderCache
from tether.sync.options import check_object_options

if TYPE_CHECKING:
    from tether.desired import Desired

Basis = tuple[bytes, str, tuple[str, ...], tuple[str, tuple[str, ...]]]
"""(the app's identity, metadata and spec; the revision asked for; each source's resolved
revision; the cluster facts)."""


@dataclass
class Entry:
    basis: Basis
    project: Project
    keys: list[tuple[str, str]]
    """(render type, render cache key) of each source that renders, in spec order."""
    rendered: list[Manifest]
    """What the render cache gave, all sources in order (the objects themselves)."""
    desired: Desired
    """What was made from them (its lists and objects are copied on the way out)."""


def basis_of(
    app: Application,
    revision: str | None,
    revisions: list[str],
    facts: tuple[str, tuple[str, ...]],
) -> Basis:
    meta = app.obj.get("metadata") or {}
    ident = orjson.dumps(
        [
            app.namespace,
            app.name,
            meta.get("uid"),
            meta.get("labels"),
            meta.get("annotations"),
            app.obj.get("spec"),
        ],
        option=orjson.OPT_SORT_KEYS,
    )
    return ident, revision or "", tuple(revisions), facts


class DesiredMemo:
    """One entry per app (``namespace/name``), the least recently used dropped past ``size``
    (0: nothing kept)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        """Desired objects handed out from an entry: tests and benchmarks read it."""
        self._entries: OrderedDict[tuple[str, str], Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, app: Application, entry: Entry) -> Desired:
        """Keeps ``entry`` for ``app`` and returns a copy of its ``Desired`` to use; a render
        whose object options the comparison refuses is not kept (it says so each time)."""
        if self.size <= 0:
            return entry.desired
        try:
            check_object_options(entry.desired.manifests, entry.desired.sources)
        except InvalidSpec:
            return entry.desired
        entry.desired.options_checked = True
        self.put(app, entry)
        return copy_desired(entry.desired)

    def put(self, app: Application, entry: Entry) -> None:
        if self.size <= 0:
            return
        key = (app.namespace, app.name)
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def get(
        self, app: Application, basis: Basis, project: Project, cache: RenderCache
    ) -> Desired | None:
        """A copy of the remembered ``Desired`` when nothing it came from changed; else None."""
        entry = self._entries.get((app.namespace, app.name))
        if entry is None or entry.basis != basis or entry.project != project:
            return None
        if not all(cache.holds(key) for _, key in entry.keys):
            return None
        rendered: list[Manifest] = []
        for _, key in entry.keys:
            rendered += cache.get(key) or []
        if len(rendered) != len(entry.rendered) or any(
            a is not b for a, b in zip(rendered, entry.rendered, strict=True)
        ):
            return None  # rendered again since (evicted, then the same key): work it out anew
        self._entries.move_to_end((app.namespace, app.name))
        self.hits += 1
        return copy_desired(entry.desired)


def copy_desired(desired: Desired) -> Desired:
    """``desired`` with its own lists and objects (the rendered forms in ``sources`` are the
    render cache's, shared as they always are)."""
    return dataclasses.replace(
        desired,
        manifests=[_copy(m) for m in desired.manifests],
        sources=dict(desired.sources),
        source_revisions=list(desired.source_revisions),
        hooks=[_copy(m) for m in desired.hooks],
    )


def _copy(m: Manifest) -> Manifest:
    return Manifest(copy_json(m.obj), m.source_file, m.line)


__all__ = ["Basis", "DesiredMemo", "Entry", "basis_of", "copy_desired"]
