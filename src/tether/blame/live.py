"""Who wrote each field of a live object, read from ``metadata.managedFields``: for every
field path (named as ``tether.blame.fields`` names them), the managers that own it with the
operation (``Apply`` or ``Update``) and time of their last write.

fieldsV1 elements map onto path segments: ``f:name`` is a map key, ``k:{"name":"web"}`` a
list item by its merge keys (``[name=web]``, read with ``tether.diff.merge_keys.item_keys``),
``i:3`` an item by index, ``v:"x"`` a member of a set of scalars (owned as part of the list's
path), ``.`` the field itself.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from tether.blame.fields import matches
from tether.diff.merge_keys import item_keys
from tether.diff.normalize import join_path
from tether.kube.client import FIELD_MANAGER
from tether.model import Obj


@dataclass(frozen=True)
class Write:
    """One managedFields entry: who, how, when."""

    manager: str
    operation: str
    time: str

    def to_dict(self) -> dict[str, str]:
        return {"manager": self.manager, "operation": self.operation, "time": self.time}


def field_owners(live: Obj) -> dict[str, list[Write]]:
    """``{path: [writes]}`` of every field some manager owns. Entries of the status
    subresource are left out (tether never sets status); those of others (``scale``: a
    ``kubectl scale``) count."""
    out: dict[str, list[Write]] = {}
    meta = live.get("metadata")
    entries = meta.get("managedFields") if isinstance(meta, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict) or entry.get("subresource") == "status":
            continue
        fields = entry.get("fieldsV1")
        if not isinstance(fields, dict):
            continue
        write = Write(
            str(entry.get("manager") or ""),
            str(entry.get("operation") or ""),
            str(entry.get("time") or ""),
        )
        for path in filter(None, _paths(fields, "")):
            owners = out.setdefault(path, [])
            if write not in owners:
                owners.append(write)
    return out


def _paths(fields: Any, path: str) -> list[str]:
    if not isinstance(fields, dict) or not fields:
        return [path]
    out: list[str] = []
    for element, sub in fields.items():
        if element == ".":
            continue  # only says the map or item exists; its fields say who set what
        if element.startswith("f:"):
            out += _paths(sub, join_path(path, element[2:]))
        elif element.startswith("k:"):
            keys = item_keys(element)
            for label in _labels(keys or ()):
                out += _paths(sub, f"{path}[{label}]")
        elif element.startswith("i:"):
            out += _paths(sub, f"{path}[{element[2:]}]")
        elif element.startswith("v:"):
            out.append(path)
    return out


def _labels(keys: tuple[tuple[str, Any], ...]) -> list[str]:
    """``[k=v,...]`` labels for an item's merge keys: all of them, and each subset, since a
    manifest may leave one to its default (a port's ``protocol``) and is then named by the
    keys it sets (``ports[containerPort=80]``)."""
    out = []
    for n in range(len(keys), 0, -1):
        for subset in itertools.combinations(keys, n):
            out.append(",".join(f"{k}={v}" for k, v in subset))
    return out


def writers_of(owners: dict[str, list[Write]], path: str) -> list[Write]:
    """The writes that own ``path``: at the path itself, at a field above it that is owned
    whole (an atomic list or map), or at members below it (a set's items)."""
    found: list[Write] = []
    for owned, writes in owners.items():
        if matches(path, owned) or matches(owned, path):
            found += [w for w in writes if w not in found]
    return found


def live_writer(writes: list[Write]) -> Write | None:
    """Who a differing live value is due to: the latest write by a manager other than tether,
    else tether's own (a value the server stores in another form), else None."""
    foreign = [w for w in writes if w.manager != FIELD_MANAGER]
    pool = foreign or writes
    return max(pool, key=lambda w: w.time) if pool else None
