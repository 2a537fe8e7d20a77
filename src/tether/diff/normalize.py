"""Which parts of an object count when it is compared with Git, and how a field is named.

``normalize`` drops what the server keeps for its own bookkeeping. ``restrict_to`` keeps only the
fields the manifest in Git sets, so server defaults, fields other controllers own and list items
others add are not drift. Field paths read like ``spec.template.spec.containers[name=web].image``.

Lists are matched the way server-side apply merges them. A list of maps whose items all carry a
``name`` is keyed by it; failing that, by ``containerPort`` or ``port`` plus ``protocol`` (TCP when
unset, as the server defaults it); failing that, by index. Keyed lists keep foreign items out of
the comparison. A list matched by index, or a list of scalars, is atomic for the server: a sync
replaces it whole, so items beyond what Git lists still count.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Final

from tether.diff.redact import LAST_APPLIED, is_secret
from tether.model import Obj


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()
"""Stands for a field or list item one side does not have (``None`` is a real value)."""

_DROPPED_METADATA = frozenset(
    {
        "managedFields",
        "resourceVersion",
        "uid",
        "generation",
        "creationTimestamp",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)
_DROPPED_ANNOTATIONS = (LAST_APPLIED, "deployment.kubernetes.io/revision")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_SCALARS = (str, int, float, bool, type(None))


def copy_json(value: Any) -> Any:
    """A copy of JSON-shaped data; several times faster than ``copy.deepcopy`` on it."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def normalize(obj: Obj) -> Obj:
    """A copy of ``obj`` without status, server bookkeeping in metadata, or empty label maps.

    A Secret's ``stringData`` is folded into ``data`` base64-encoded, as the server does on
    write, so a manifest that uses ``stringData`` lines up with the stored object.
    """
    out: Obj = {}
    for key, value in obj.items():
        if key == "status":
            continue
        if key == "metadata" and isinstance(value, dict):
            out[key] = _normalize_metadata(value)
        else:
            out[key] = copy_json(value)
    if is_secret(out) and isinstance(out.get("stringData"), dict):
        _fold_string_data(out)
    return out


def _normalize_metadata(meta: Obj) -> Obj:
    out = {k: copy_json(v) for k, v in meta.items() if k not in _DROPPED_METADATA}
    annotations = out.get("annotations")
    if isinstance(annotations, dict):
        for name in _DROPPED_ANNOTATIONS:
            annotations.pop(name, None)
    for key in ("annotations", "labels"):
        if key in out and not out[key]:
            del out[key]
    return out


def _fold_string_data(secret: Obj) -> None:
    data = secret.get("data")
    merged = dict(data) if isinstance(data, dict) else {}
    for key, value in secret.pop("stringData").items():
        # stringData wins over data for the same key, as it does on the server.
        merged[key] = base64.b64encode(str(value).encode()).decode()
    secret["data"] = merged


def join_path(path: str, key: object) -> str:
    """``path`` extended by a map key.

    Plain keys join with a dot (``spec.replicas``); others are quoted
    (``metadata.labels["app.kubernetes.io/name"]``).
    """
    name = str(key)
    if _PLAIN_KEY.match(name):
        return f"{path}.{name}" if path else name
    return f"{path}[{json.dumps(name)}]"


def is_atomic_list(template: list[Any]) -> bool:
    """True when the list is compared whole rather than item by item (not a list of maps)."""
    return not template or not all(isinstance(item, dict) for item in template)


def _identity_fields(template: list[Any]) -> str | None:
    """The field that identifies an item of this list of maps, or None to match by index."""
    for field in ("name", "containerPort", "port"):
        if all(field in item and isinstance(item[field], _SCALARS) for item in template):
            return field
    return None


def _identity(item: Any, field: str) -> tuple[Any, ...] | None:
    if not isinstance(item, dict) or field not in item:
        return None
    value = item[field]
    if not isinstance(value, _SCALARS):
        return None
    if field == "name":
        return (value,)
    return (value, item.get("protocol") or "TCP")


def _identities(items: list[Any], field: str) -> list[tuple[Any, ...] | None]:
    """Identity of each item; the n-th repeat of an identity is told apart by its count."""
    seen: dict[tuple[Any, ...], int] = {}
    out: list[tuple[Any, ...] | None] = []
    for item in items:
        ident = _identity(item, field)
        if ident is None:
            out.append(None)
            continue
        count = seen.get(ident, 0)
        seen[ident] = count + 1
        out.append((*ident, count))
    return out


def _segment(field: str, ident: tuple[Any, ...]) -> str:
    if field == "name":
        label = f"name={ident[0]}"
    else:
        label = f"{field}={ident[0]}" + ("" if ident[1] == "TCP" else f",protocol={ident[1]}")
    count = ident[-1]
    return f"[{label}#{count + 1}]" if count else f"[{label}]"


def align_items(template: list[Any], items: list[Any]) -> list[tuple[str, Any, Any]]:
    """Pairs each item of a list of maps from Git with its counterpart in ``items``.

    Returns ``(path segment, template item, item or ABSENT)`` in template order. When matched by
    index, items past the end of the template follow with ``None`` as their template item.
    """
    field = _identity_fields(template)
    if field is None:
        pairs = [
            (f"[{i}]", t, items[i] if i < len(items) else ABSENT) for i, t in enumerate(template)
        ]
        pairs.extend((f"[{i}]", None, items[i]) for i in range(len(template), len(items)))
        return pairs
    by_identity = {
        ident: item
        for ident, item in zip(_identities(items, field), items, strict=True)
        if ident is not None
    }
    pairs = []
    for ident, t in zip(_identities(template, field), template, strict=True):
        # _identity_fields only picks a field every template item has a scalar for.
        assert ident is not None
        pairs.append((_segment(field, ident), t, by_identity.get(ident, ABSENT)))
    return pairs


def fields_of(desired: Obj) -> set[str]:
    """Paths of every field the manifest sets, down to scalars, atomic lists and empty maps."""
    out: set[str] = set()
    _collect(desired, "", out)
    return out


def _collect(template: Any, path: str, out: set[str]) -> None:
    if isinstance(template, dict) and template:
        for key, value in template.items():
            if value is not None:
                _collect(value, join_path(path, key), out)
    elif isinstance(template, list) and not is_atomic_list(template):
        for segment, item, _ in align_items(template, template):
            _collect(item, path + segment, out)
    else:
        out.add(path)


def restrict_to(obj: Obj, template: Obj) -> Obj:
    """A copy of ``obj`` holding only the fields ``template`` sets.

    A field the template sets to null sets nothing. A map the template fills but ``obj`` holds
    none of is left out, so "no such map" and "a map of other keys" compare equal.
    """
    out = _restrict(obj, template)
    return out if isinstance(out, dict) else {}


def _restrict(value: Any, template: Any) -> Any:
    if isinstance(template, dict):
        if not isinstance(value, dict):
            return copy_json(value)
        out = {}
        for key, sub in template.items():
            if sub is not None and key in value:
                kept = _restrict(value[key], sub)
                if kept is not ABSENT:
                    out[key] = kept
        return ABSENT if template and not out else out
    if isinstance(template, list):
        if not isinstance(value, list) or is_atomic_list(template):
            return copy_json(value)
        items = []
        for _, sub, item in align_items(template, value):
            if item is ABSENT:
                continue
            if sub is None:
                items.append(copy_json(item))
            else:
                kept = _restrict(item, sub)
                # An item stays even when none of its fields match, or indexes would shift.
                items.append({} if kept is ABSENT else kept)
        return items or ABSENT
    return copy_json(value)
