"""The server's own merge keys for lists, read from the field sets it records on every object.

Server-side apply records in ``metadata.managedFields`` which fields each manager owns, and names
an item of a list it merges by key with those keys: ``k:{"mountPath":"/data"}`` for volumeMounts,
``k:{"containerPort":80,"protocol":"TCP"}`` for container ports. A list owned whole (atomic)
shows no items, and a set of scalars shows them by value (``v:"x"``). So the keys come from the
objects the server returned (the dry-run result and the live object), for built-in kinds and
custom resources alike, with no table and no extra request.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from tether.model import Obj


class Shape:
    """How the server merges the lists at and under one field, as its field sets show it.

    Read lazily: only the fields a comparison walks into are looked at.
    """

    __slots__ = ("_children", "_items", "_sets")

    def __init__(self, sets: list[dict[str, Any]]) -> None:
        self._sets = sets
        """The field sets (fieldsV1 subtrees) of every manager at this field."""
        self._children: dict[str, Shape | None] = {}
        self._items: tuple[tuple[str, ...], Shape | None, bool] | None = None

    def field(self, name: str) -> Shape | None:
        """The shape of the map key ``name`` under this field; None when no set names it."""
        try:
            return self._children[name]
        except KeyError:
            pass
        element = "f:" + name
        subs = [sub for s in self._sets if (sub := s.get(element))]
        child = self._children[name] = Shape(subs) if subs else None
        return child

    @property
    def keys(self) -> tuple[str, ...]:
        """The merge keys, when this field is a list of maps merged by key; else ()."""
        return self._list()[0]

    @property
    def item(self) -> Shape | None:
        """The shape of each item of that list."""
        return self._list()[1]

    @property
    def is_set(self) -> bool:
        """This field is a list of scalars merged as a set."""
        return self._list()[2]

    def _list(self) -> tuple[tuple[str, ...], Shape | None, bool]:
        if self._items is None:
            keys: tuple[str, ...] = ()
            items: list[dict[str, Any]] = []
            is_set = False
            for s in self._sets:
                for element, sub in s.items():
                    if element.startswith("k:"):
                        found = item_keys(element)
                        if found is not None:
                            keys = tuple(name for name, _ in found)
                            if isinstance(sub, dict):
                                items.append(sub)
                    elif element.startswith("v:"):
                        is_set = True
            self._items = (keys, Shape(items) if keys else None, is_set)
        return self._items


def shape_of(*objects: Obj | None) -> Shape | None:
    """What the field sets of ``objects`` (every manager's) say; None when none has any."""
    sets: list[dict[str, Any]] = []
    for obj in objects:
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        entries = meta.get("managedFields") if isinstance(meta, dict) else None
        for entry in entries if isinstance(entries, list) else ():
            fields = entry.get("fieldsV1") if isinstance(entry, dict) else None
            if isinstance(fields, dict):
                sets.append(fields)
    return Shape(sets) if sets else None


@lru_cache(maxsize=4096)
def item_keys(element: str) -> tuple[tuple[str, Any], ...] | None:
    """The (key, value) pairs of a field set's ``k:{...}`` element; None if malformed."""
    try:
        keys = json.loads(element[2:])
    except ValueError:
        # A malformed entry from some other manager must not stop the diff.
        return None
    if not isinstance(keys, dict) or not keys:
        return None
    return tuple(keys.items())
