"""An object as field paths and their values: ``spec.replicas``,
``spec.template.spec.containers[name=web].image``, ``metadata.labels["app.kubernetes.io/name"]``.

Paths are named the way the diff names them (``tether.diff.normalize``): map keys joined by
dots (quoted when not plain), list items by the merge keys the server records for the object
(``tether.diff.merge_keys``), by index where nothing is known. A leaf is a scalar, an atomic
list (a list of scalars, replaced whole by a sync) or an empty map. Secret values are read
here (to tell whether they changed) but shown only through ``shown_value``.
"""

from __future__ import annotations

from typing import Any

from tether.diff.merge_keys import Shape
from tether.diff.normalize import align_items, is_atomic_list, join_path, normalize, restrict_to
from tether.diff.redact import is_secret
from tether.model import Obj

REDACTED = "(redacted)"
_SERVER_METADATA = ("namespace",)
"""Filled in by tether from the destination, not by the render."""


def flatten(obj: Obj, shape: Shape | None = None) -> dict[str, Any]:
    """``{path: value}`` of every leaf the object sets, in document order (``None`` values,
    which set nothing, and ``status`` are left out)."""
    out: dict[str, Any] = {}
    body = normalize(obj)
    meta = body.get("metadata")
    if isinstance(meta, dict):
        body["metadata"] = {k: v for k, v in meta.items() if k not in _SERVER_METADATA}
    _collect(body, "", shape, out)
    return out


def live_fields(live: Obj, template: Obj, shape: Shape | None) -> dict[str, Any]:
    """The live object's values of the fields ``template`` (a render) sets, by path; a field
    the live object lacks is absent."""
    return flatten(restrict_to(normalize(live), normalize(template), shape), shape)


def _collect(value: Any, path: str, shape: Shape | None, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            if sub is not None:
                child = shape.field(str(key)) if shape is not None else None
                _collect(sub, join_path(path, key), child, out)
    elif isinstance(value, list) and not is_atomic_list(value):
        for segment, item, _, item_shape in align_items(value, value, shape):
            _collect(item, path + segment, item_shape, out)
    else:
        out[path] = value


def matches(path: str, prefix: str) -> bool:
    """``path`` is ``prefix`` or lies under it (``spec.template`` covers
    ``spec.template.spec.containers[name=web].image``, not ``spec.templates``)."""
    if not prefix or path == prefix:
        return True
    return path.startswith(prefix) and path[len(prefix)] in ".["


def is_secret_value(obj: Obj, path: str) -> bool:
    """A Secret's ``data`` or ``stringData`` entry: never printed."""
    return is_secret(obj) and (matches(path, "data") or matches(path, "stringData"))


def shown_value(obj: Obj, path: str, value: Any) -> Any:
    """``value`` as it may be printed: Secret values become ``(redacted)``."""
    return REDACTED if is_secret_value(obj, path) else value
