"""Which other field managers a forced server-side apply took fields from, read from the
object's ``managedFields`` before and after, so a sync result can name them.

tether applies with ``force=true``, as Argo CD's ``ServerSideApply=true`` does
(``--force-conflicts``): where another manager owns a field Git sets, Git's value wins and
the field moves to ``tether``. That is never silent: the result names the managers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tether.kube.client import FIELD_MANAGER
from tether.model import Obj

_OWN = {FIELD_MANAGER, "tether-namespace"}


def fields_taken_from(before: Obj, after: Obj) -> list[str]:
    """Managers (not tether's) that owned fields in ``before`` and lost some of them, and
    nothing else, in ``after``: what a forced apply does to a conflicting manager."""
    old = _field_sets(before)
    new = _field_sets(after)
    out: list[str] = []
    for manager, paths in sorted(old.items()):
        if manager in _OWN:
            continue
        kept = new.get(manager, set())
        if kept < paths:
            out.append(manager)
    return out


def _field_sets(obj: Obj) -> dict[str, set[str]]:
    sets: dict[str, set[str]] = {}
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if not isinstance(entry, dict) or entry.get("subresource"):
            continue
        manager = str(entry.get("manager") or "")
        sets.setdefault(manager, set()).update(_leaves(entry.get("fieldsV1") or {}, ""))
    return sets


def _leaves(fields: Any, path: str) -> Iterator[str]:
    if not isinstance(fields, dict) or not fields:
        yield path
        return
    for key, sub in fields.items():
        if key == ".":
            yield path
            continue
        yield from _leaves(sub, f"{path}/{key}")
