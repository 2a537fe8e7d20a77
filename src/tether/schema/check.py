"""Walks one object against a compiled schema: the problems the server would refuse it for,
and the places where the schema cannot say (so the server must judge).

A problem is reported only where the API server refuses the value for certain (a wrong type,
an unknown field under strict validation, a missing required field, a value outside an enum or
limit); where a server's answer depends on its version or on rules outside the schema, the
walk *defers* instead, which costs a dry-run, never a wrong verdict.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from dataclasses import dataclass, field
from typing import Any

from tether.schema.nodes import Node

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.ASCII)
_CHECKED_STRING_FORMATS = frozenset({"", "byte", "date-time", "int-or-string"})
"""String formats the walk checks itself; a value under any other format (``uri``, ``email``,
``uuid``...) of a custom resource is left to the server."""


@dataclass
class Walk:
    """What one walk found. ``custom``: the object is a custom resource, whose schema *is* its
    validation; otherwise a built-in kind, whose Go types and code judge beyond the schema."""

    strict: bool
    custom: bool
    prunes: bool = False
    """The server prunes a custom resource's unknown fields instead of refusing them."""
    key_defaults: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)
    """Key fields of list-maps (by their keys) that the server defaults when left out."""
    problems: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)

    def problem(self, path: str, what: str) -> None:
        self.problems.append(f"{path or '<object>'}: {what}")

    def defer(self, path: str, why: str) -> None:
        if len(self.deferred) < 5:
            self.deferred.append(f"{path or '<object>'}: {why}")


def walk(value: Any, node: Node, path: str, w: Walk) -> None:
    """Checks ``value`` against ``node``, adding to ``w``."""
    if node.opaque:
        w.defer(path, node.opaque)
        return
    if value is None:
        _null(node, path, w)
        return
    if node.int_or_string:
        _int_or_string(value, path, w)
        return
    if node.quantity:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            w.problem(path, f"expected a quantity (string or number), got {show(value)}")
        return
    if not _typed(value, node, path, w):
        return
    if node.enum is not None:
        _enum(value, node.enum, path, w)
    if w.custom:
        _limits(value, node, path, w)
    if isinstance(value, dict):
        _object(value, node, path, w)
    elif isinstance(value, list):
        _array(value, node, path, w)


def _enum(value: Any, enum: tuple[Any, ...], path: str, w: Walk) -> None:
    if value not in enum:
        w.problem(path, f"{show(value)} is not one of {', '.join(show(v) for v in enum)}")
    elif not any(type(v) is type(value) and v == value for v in enum):
        # 1.0 == 1 == True in Python, not to the server's decoder: its own call.
        w.defer(path, f"{show(value)} equals an allowed value of another JSON type")


def _null(node: Node, path: str, w: Walk) -> None:
    # A built-in kind's apply treats null as "unset" (measured: the server accepts it);
    # a custom resource's null is accepted only where the schema is nullable, and what the
    # server does with it elsewhere depends on its version: leave it to the server.
    if node.nullable or not w.custom:
        return
    w.defer(path, "null where the schema is not nullable")


def _int_or_string(value: Any, path: str, w: Walk) -> None:
    if isinstance(value, str):
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        w.problem(path, f"expected integer or string, got {show(value)}")
    elif isinstance(value, float) and not value.is_integer():
        w.problem(path, f"expected integer or string, got number {value!r}")


def _typed(value: Any, node: Node, path: str, w: Walk) -> bool:
    """Whether ``value`` has the node's type (a problem added when not)."""
    if not node.types:
        return True
    (kind,) = node.types
    if kind == "object":
        ok = isinstance(value, dict)
    elif kind == "string":
        ok = isinstance(value, str)
    elif kind == "array":
        ok = isinstance(value, list)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind in ("integer", "number"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        w.defer(path, f"type {kind!r} is not one this check knows")
        return False
    if not ok:
        w.problem(path, f"expected {kind}, got {show(value)}")
        return False
    if kind == "integer":
        return _integer(value, node, path, w)
    if kind == "string":
        _string_format(value, node, path, w)
    return True


def _integer(value: int | float, node: Node, path: str, w: Walk) -> bool:
    if isinstance(value, float) and not value.is_integer():
        w.problem(path, f"expected integer, got number {value!r}")
        return False
    low, high = INT32 if node.format == "int32" else INT64
    if not low <= int(value) <= high:
        # The server may wrap such a number instead of refusing it: its own call.
        w.defer(path, f"{int(value)} is outside the {node.format or 'int64'} range")
        return False
    return True


def _string_format(value: str, node: Node, path: str, w: Walk) -> None:
    fmt = node.format
    if fmt == "byte":
        try:  # the server's decoder skips line breaks, as base64 in YAML often has them
            base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
        except (binascii.Error, ValueError):
            w.problem(path, "expected base64-encoded data (format byte)")
    elif fmt == "date-time" and not _rfc3339(value):
        w.defer(path, "a date-time this check does not read as RFC 3339")
    elif fmt not in _CHECKED_STRING_FORMATS and w.custom:
        w.defer(path, f"format {fmt!r} is checked by the server")


def _rfc3339(value: str) -> bool:
    if not _RFC3339.fullmatch(value):
        return False
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _limits(value: Any, node: Node, path: str, w: Walk) -> None:
    if node.pattern is not None and isinstance(value, str):
        if not node.pattern.search(value):
            w.problem(path, f"{show(value)} does not match {node.pattern.pattern!r}")
        elif "\n" in value:
            # Python's $ also matches before a final line break, the server's (RE2) does not.
            w.defer(path, "a multi-line value against a pattern")
    for name, limit in node.limits:
        broken = _broken_limit(name, limit, value, node)
        if broken:
            w.problem(path, broken)


def _broken_limit(name: str, limit: Any, value: Any, node: Node) -> str:
    size = len(value) if isinstance(value, str | list | dict) else None
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    exclusive = dict(node.limits)
    if name == "maxLength" and isinstance(value, str) and size is not None and size > limit:
        return f"may be at most {limit} characters long, is {size}"
    if name == "minLength" and isinstance(value, str) and size is not None and size < limit:
        return f"must be at least {limit} characters long, is {size}"
    if name == "maxItems" and isinstance(value, list) and len(value) > limit:
        return f"may have at most {limit} items, has {len(value)}"
    if name == "minItems" and isinstance(value, list) and len(value) < limit:
        return f"must have at least {limit} items, has {len(value)}"
    if name == "maxProperties" and isinstance(value, dict) and len(value) > limit:
        return f"may have at most {limit} properties, has {len(value)}"
    if name == "minProperties" and isinstance(value, dict) and len(value) < limit:
        return f"must have at least {limit} properties, has {len(value)}"
    if name == "uniqueItems" and limit and isinstance(value, list) and _has_duplicates(value):
        return "items must be unique"
    if name == "maximum" and number is not None:
        over = exclusive.get("exclusiveMaximum")
        if number > limit or (over and number == limit):
            return f"must be {'less than' if over else 'at most'} {limit}"
    if name == "minimum" and number is not None:
        under = exclusive.get("exclusiveMinimum")
        if number < limit or (under and number == limit):
            return f"must be {'greater than' if under else 'at least'} {limit}"
    return ""


def _has_duplicates(items: list[Any]) -> bool:
    seen: list[Any] = []
    for item in items:
        if item in seen:
            return True
        seen.append(item)
    return False


def _object(value: dict[str, Any], node: Node, path: str, w: Walk) -> None:
    for name in node.required:
        if name not in value:
            w.problem(_join(path, name), "required field is missing")
        elif value[name] is None and not w.custom:
            w.defer(_join(path, name), "a required field set to null")
    if node.embedded:
        _embedded(value, path, w)
    props = node.properties or {}
    for key, item in value.items():
        sub = props.get(key)
        if sub is not None:
            walk(item, sub, _join(path, key), w)
        elif isinstance(node.additional, Node):
            walk(item, node.additional, f"{path}[{key}]", w)
        elif node.additional is True or node.preserve_unknown or _embedded_field(node, key):
            continue
        elif node.properties is None and not w.custom:
            continue  # a built-in object without a published shape: anything goes
        else:
            _unknown(_join(path, key), w)


def _embedded_field(node: Node, key: str) -> bool:
    return node.embedded and key in ("apiVersion", "kind", "metadata")


def _embedded(value: dict[str, Any], path: str, w: Walk) -> None:
    for name in ("apiVersion", "kind"):
        if not isinstance(value.get(name), str) or not value.get(name):
            w.problem(_join(path, name), "required field is missing")
    if value.get("metadata") is not None:
        w.defer(_join(path, "metadata"), "an embedded object's metadata is judged by the server")


def _unknown(path: str, w: Walk) -> None:
    if w.strict and not (w.custom and w.prunes):
        w.problem(path, "unknown field")
    else:
        w.defer(path, "unknown field: the server drops or refuses it, depending on its version")


def _array(value: list[Any], node: Node, path: str, w: Walk) -> None:
    if node.items is not None:
        for i, item in enumerate(value):
            walk(item, node.items, f"{path}[{i}]", w)
    if node.map_keys:
        _list_map(value, node.map_keys, path, w)


def _list_map(value: list[Any], keys: tuple[str, ...], path: str, w: Walk) -> None:
    seen: set[tuple[str, ...]] = set()
    defaults = w.key_defaults.get(keys, {})
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            continue
        if any(item.get(k) is None and k not in defaults for k in keys):
            # Servers differ on a missing key field: some default it, others refuse.
            w.defer(f"{path}[{i}]", f"leaves out a key field ({', '.join(keys)})")
            continue
        key = tuple(repr(defaults[k] if item.get(k) is None else item[k]) for k in keys)
        if key in seen:
            w.problem(f"{path}[{i}]", f"duplicate entry for {', '.join(keys)}")
        seen.add(key)


def _join(path: str, name: str) -> str:
    """``spec.replicas``: a field's path (map entries are written ``data[key]``)."""
    return f"{path}.{name}" if path else name


def show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f'string "{text}"'
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, list):
        return "array"
    return "object"
