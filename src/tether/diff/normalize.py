"""Which parts of an object count when it is compared with Git, and how a field is named.

``normalize`` drops what the server keeps for its own bookkeeping. ``restrict_to`` keeps only the
fields the manifest in Git sets, so server defaults, fields other controllers own and list items
others add are not drift. Field paths read like ``spec.template.spec.containers[name=web].image``.

Lists are matched the way server-side apply merges them, with the merge keys the server itself
used, read from the field sets it records (see :mod:`tether.diff.merge_keys`): volumeMounts by
``mountPath``, container ports by ``containerPort`` and ``protocol``, a custom resource's lists by
whatever its schema declares. Keyed lists and sets keep foreign items out of the comparison. An
atomic list (or one nothing is known of) is matched by index: a sync replaces it whole, so items
beyond what Git lists still count.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Final

from tether.diff.merge_keys import Shape, shape_of
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


def _child(shape: Shape | None, key: object) -> Shape | None:
    return shape.field(str(key)) if shape is not None else None


def is_atomic_list(template: list[Any]) -> bool:
    """True when the list is compared whole rather than item by item (not a list of maps)."""
    return not template or not all(isinstance(item, dict) for item in template)


_MISSING: Final = _Absent()


def _identity(item: Any, keys: tuple[str, ...]) -> tuple[Any, ...] | None:
    """The item's values of ``keys`` (``_MISSING`` for one it leaves to a server default, as
    a port's protocol); None when it has none of them."""
    if not isinstance(item, dict):
        return None
    values = tuple(item.get(k, _MISSING) for k in keys)
    missing = 0
    for v in values:
        if v is _MISSING:
            missing += 1
        elif not isinstance(v, _SCALARS):
            return None
    return None if missing == len(values) else values


def _agrees(partial: tuple[Any, ...], full: tuple[Any, ...] | None) -> bool:
    return full is not None and all(
        p is _MISSING or p == f for p, f in zip(partial, full, strict=True)
    )


def _match(template: list[Any], items: list[Any], keys: tuple[str, ...]) -> list[int | None]:
    """For each template item, the index of its counterpart in ``items`` (or None).

    Items that set every key are matched first, so one that leaves a key to its default (a port
    without ``protocol``) cannot take their match; it then matches on the keys it sets.
    """
    found = [_identity(item, keys) for item in items]
    by_identity: dict[tuple[Any, ...], list[int]] = {}
    for j, ident in enumerate(found):
        if ident is not None:
            by_identity.setdefault(ident, []).append(j)
    out: list[int | None] = [None] * len(template)
    claimed: set[int] = set()
    partial: list[tuple[int, tuple[Any, ...]]] = []
    for i, t in enumerate(template):
        ident = _identity(t, keys)
        if ident is None:
            continue
        if _MISSING in ident:
            partial.append((i, ident))
            continue
        for j in by_identity.get(ident, ()):
            if j not in claimed:
                claimed.add(j)
                out[i] = j
                break
    for i, ident in partial:
        for j, full in enumerate(found):
            if j not in claimed and _agrees(ident, full):
                claimed.add(j)
                out[i] = j
                break
    return out


def _segments(template: list[Any], keys: tuple[str, ...]) -> list[str]:
    """``[mountPath=/data]`` for each item, from the keys it sets; ``#n`` tells repeats apart."""
    seen: dict[str, int] = {}
    out = []
    for index, item in enumerate(template):
        ident = _identity(item, keys)
        if ident is None:
            out.append(f"[{index}]")
            continue
        label = ",".join(f"{k}={v}" for k, v in zip(keys, ident, strict=True) if v is not _MISSING)
        count = seen[label] = seen.get(label, 0) + 1
        out.append(f"[{label}#{count}]" if count > 1 else f"[{label}]")
    return out


def align_items(
    template: list[Any], items: list[Any], shape: Shape | None = None
) -> list[tuple[str, Any, Any, Shape | None]]:
    """Pairs each item of a list of maps from Git with its counterpart in ``items``.

    Returns ``(path segment, template item, item or ABSENT, shape of the item)`` in template
    order. Items are matched by the server's merge keys when ``shape`` says the list has them
    (see :func:`_match`). Otherwise (an atomic list, or nothing known) they are matched by
    index, and items past the end of the template follow with ``None`` as their template item.
    """
    if shape is None or not shape.keys:
        pairs: list[tuple[str, Any, Any, Shape | None]] = [
            (f"[{i}]", t, items[i] if i < len(items) else ABSENT, None)
            for i, t in enumerate(template)
        ]
        pairs.extend((f"[{i}]", None, items[i], None) for i in range(len(template), len(items)))
        return pairs
    matched = [ABSENT if j is None else items[j] for j in _match(template, items, shape.keys)]
    segments = _segments(template, shape.keys)
    return [
        (segment, t, item, shape.item)
        for segment, t, item in zip(segments, template, matched, strict=True)
    ]


def fields_of(desired: Obj, shape: Shape | None = None) -> set[str]:
    """Paths of every field the manifest sets, down to scalars, atomic lists and empty maps.

    ``shape`` (from :func:`shape_of`) names list items by the server's merge keys; without it
    lists are named by index.
    """
    out: set[str] = set()
    _collect(desired, "", shape, out)
    return out


def _collect(template: Any, path: str, shape: Shape | None, out: set[str]) -> None:
    if isinstance(template, dict) and template:
        for key, value in template.items():
            if value is not None:
                _collect(value, join_path(path, key), _child(shape, key), out)
    elif isinstance(template, list) and not is_atomic_list(template):
        for segment, item, _, item_shape in align_items(template, template, shape):
            _collect(item, path + segment, item_shape, out)
    else:
        out.add(path)


def restrict_to(obj: Obj, template: Obj, shape: Shape | None = None) -> Obj:
    """A copy of ``obj`` holding only the fields ``template`` sets.

    A field the template sets to null sets nothing. A map the template fills but ``obj`` holds
    none of is left out, so "no such map" and "a map of other keys" compare equal. Lists are
    matched as ``shape`` says the server merges them (by default, as ``obj``'s own field sets
    say): items of a keyed list or a set that Git does not list are others' and left out;
    an atomic list is replaced whole by a sync, so every item counts.
    """
    out = _restrict(obj, template, shape_of(obj) if shape is None else shape)
    return out if isinstance(out, dict) else {}


def _restrict(value: Any, template: Any, shape: Shape | None) -> Any:
    if isinstance(template, dict):
        if not isinstance(value, dict):
            return copy_json(value)
        out = {}
        for key, sub in template.items():
            if sub is None or key not in value:
                continue
            if not isinstance(sub, (dict, list)):
                out[key] = copy_json(value[key])  # a scalar in Git: taken as it is
                continue
            kept = _restrict(value[key], sub, _child(shape, key))
            if kept is not ABSENT:
                out[key] = kept
        return ABSENT if template and not out else out
    if isinstance(template, list):
        if not isinstance(value, list):
            return copy_json(value)
        if shape is not None and shape.is_set and is_atomic_list(template):
            members = [v for v in template if v in value]
            return members or ABSENT
        if is_atomic_list(template):
            return copy_json(value)
        items = []
        if shape is not None and shape.keys:
            item_shape = shape.item
            for sub, j in zip(template, _match(template, value, shape.keys), strict=True):
                if j is not None:
                    kept = _restrict(value[j], sub, item_shape)
                    items.append({} if kept is ABSENT else kept)
            return items or ABSENT
        for i, item in enumerate(value):
            if i >= len(template):
                items.append(copy_json(item))
            else:
                kept = _restrict(item, template[i], None)
                # An item stays even when none of its fields match, or indexes would shift.
                items.append({} if kept is ABSENT else kept)
        return items or ABSENT
    return copy_json(value)
