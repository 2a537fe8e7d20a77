"""Ignore rules: fields a user declares are not drift, in Argo CD's ``ignoreDifferences`` shape.

A rule selects objects by group, kind (``*`` for any), and optionally name and namespace, then
names fields by RFC 6901 JSON pointers, by jq path expressions, or by the field managers whose
fields should not count.

For managers the rule follows Argo CD: a field owned by one of them in the live object's
``metadata.managedFields`` is removed from both sides when both have it and the values differ.
Equal owned fields stay, since they cannot cause drift and they keep the diff's context.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from tether.diff import jq_paths
from tether.diff.merge_keys import item_keys
from tether.diff.normalize import ABSENT
from tether.errors import InvalidSpec
from tether.model import Obj, ResourceKey

_SPEC_KEYS = {
    "group",
    "kind",
    "name",
    "namespace",
    "jsonPointers",
    "jqPathExpressions",
    "managedFieldsManagers",
}


@dataclass
class IgnoreRule:
    group: str
    """API group; ``""`` and ``"core"`` both mean the core group, ``"*"`` any group."""
    kind: str
    """Kind, or ``"*"`` for every kind."""
    name: str = ""
    """Only the object of this name; empty for any."""
    namespace: str = ""
    """Only objects in this namespace; empty for any."""
    json_pointers: list[str] = field(default_factory=list)
    jq_path_expressions: list[str] = field(default_factory=list)
    """jq expressions naming fields to ignore, applied as ``del(EXPRESSION)``, bounded in time
    and memory (see :mod:`tether.diff.jq_paths`)."""
    managed_fields_managers: list[str] = field(default_factory=list)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> IgnoreRule:
        """Builds a rule from ``{group, kind, name, namespace, jsonPointers, ...}``.

        Raises ``InvalidSpec`` naming the offending key, so a typo cannot silently disable a rule.
        """
        if not isinstance(spec, Mapping):
            raise InvalidSpec(
                f"ignoreDifferences: expected a mapping, got {type(spec).__name__}",
                hint="write each rule as {group: apps, kind: Deployment, jsonPointers: [...]}",
            )
        unknown = sorted(str(k) for k in set(spec) - _SPEC_KEYS)
        if unknown:
            raise InvalidSpec(
                f"ignoreDifferences: unknown key(s) {', '.join(unknown)}",
                hint=f"known keys are {', '.join(sorted(_SPEC_KEYS))}",
            )
        kind = _string(spec, "kind")
        if not kind:
            raise InvalidSpec(
                "ignoreDifferences: kind is required",
                hint='name a kind such as Deployment, or "*" for every kind',
            )
        pointers = _strings(spec, "jsonPointers")
        for index, pointer in enumerate(pointers):
            try:
                parse_pointer(pointer)
            except InvalidSpec as exc:
                raise InvalidSpec(
                    f"ignoreDifferences: jsonPointers[{index}]: {exc.message}", hint=exc.hint
                ) from None
        return cls(
            group=_string(spec, "group"),
            kind=kind,
            name=_string(spec, "name"),
            namespace=_string(spec, "namespace"),
            json_pointers=pointers,
            jq_path_expressions=_strings(spec, "jqPathExpressions"),
            managed_fields_managers=_strings(spec, "managedFieldsManagers"),
        )

    def matches(self, key: ResourceKey) -> bool:
        group = "" if self.group == "core" else self.group
        return (
            (group == "*" or group == key.group)
            and (self.kind == "*" or self.kind == key.kind)
            and (not self.name or self.name == key.name)
            and (not self.namespace or self.namespace == key.namespace)
        )


def _string(spec: Mapping[str, Any], key: str) -> str:
    value = spec.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidSpec(
            f"ignoreDifferences: {key} must be a string, got {type(value).__name__}",
            hint=f"quote the value of {key}",
        )
    return value


def _strings(spec: Mapping[str, Any], key: str) -> list[str]:
    value = spec.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidSpec(
            f"ignoreDifferences: {key} must be a list of strings",
            hint=f"write {key} as a YAML list, one string per item",
        )
    return list(value)


@lru_cache(maxsize=1024)
def parse_pointer(pointer: str) -> tuple[str, ...]:
    """The reference tokens of an RFC 6901 pointer, ``~1`` and ``~0`` unescaped."""
    if not pointer.startswith("/"):
        raise InvalidSpec(
            f"{pointer!r} is not a JSON pointer",
            hint="a pointer starts with '/', e.g. /spec/replicas",
        )
    tokens = pointer[1:].split("/")
    for token in tokens:
        if "~" in token.replace("~0", "").replace("~1", ""):
            raise InvalidSpec(
                f"{pointer!r} has a '~' that is not ~0 or ~1",
                hint="inside a key write ~1 for '/' and ~0 for '~'",
            )
    # ~1 first: "~01" must become "~1", not "/".
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in tokens)


def apply_ignores(
    key: ResourceKey, predicted: Obj, live: Obj, rules: Iterable[IgnoreRule]
) -> tuple[Obj, Obj]:
    """``predicted`` and ``live`` without the fields the rules matching ``key`` ignore.

    The inputs are never modified; only the maps and lists on the way to a removed field are
    copied, and when nothing is removed the inputs themselves are returned.
    """
    matching = [rule for rule in rules if rule.matches(key)]
    if not matching:
        return predicted, live
    p: Any = predicted
    lv: Any = live
    managers = {m for rule in matching for m in rule.managed_fields_managers}
    if managers:
        for owned in _owned_field_sets(live, managers):
            p, lv = _drop_owned(owned, p, lv)
    for rule in matching:
        for pointer in rule.json_pointers:
            tokens = parse_pointer(pointer)
            p = _without(p, tokens, 0)
            lv = _without(lv, tokens, 0)
        for expression in rule.jq_path_expressions:
            try:
                p, lv = jq_paths.runner().delete(expression, [p, lv])
            except InvalidSpec as e:
                raise InvalidSpec(f"{key}: {e.message}", hint=e.hint) from None
    return p, lv


def _list_index(token: str, size: int) -> int | None:
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        return None
    index = int(token)
    return index if index < size else None


def _without(node: Any, tokens: tuple[str, ...], i: int) -> Any:
    """``node`` without the value at ``tokens[i:]``; ``node`` itself when there is none."""
    token = tokens[i]
    last = i == len(tokens) - 1
    if isinstance(node, dict):
        if token not in node:
            return node
        if last:
            return {k: v for k, v in node.items() if k != token}
        child = _without(node[token], tokens, i + 1)
        if child is node[token]:
            return node
        out = dict(node)
        out[token] = child
        return out
    if isinstance(node, list):
        index = _list_index(token, len(node))
        if index is None:
            return node
        if last:
            return node[:index] + node[index + 1 :]
        child = _without(node[index], tokens, i + 1)
        if child is node[index]:
            return node
        out_list = list(node)
        out_list[index] = child
        return out_list
    return node


def _owned_field_sets(live: Obj, managers: set[str]) -> list[dict[str, Any]]:
    meta = live.get("metadata")
    entries = meta.get("managedFields") if isinstance(meta, dict) else None
    if not isinstance(entries, list):
        return []
    return [
        entry["fieldsV1"]
        for entry in entries
        if isinstance(entry, dict)
        and entry.get("manager") in managers
        and isinstance(entry.get("fieldsV1"), dict)
    ]


def _is_leaf(fields: Any) -> bool:
    # In fieldsV1 an empty set marks a field owned whole; "." alone marks only that a map or
    # list item exists, which a value comparison never reports as changed.
    return not isinstance(fields, dict) or not fields


def _drop_owned(fields: dict[str, Any], a: Any, b: Any) -> tuple[Any, Any]:
    """``a`` and ``b`` without the owned fields (a fieldsV1 set) whose values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return _drop_owned_map(fields, a, b)
    if isinstance(a, list) and isinstance(b, list):
        return _drop_owned_list(fields, a, b)
    return a, b


def _drop_owned_map(fields: dict[str, Any], a: Obj, b: Obj) -> tuple[Obj, Obj]:
    out_a, out_b = a, b
    for element, sub in fields.items():
        if not element.startswith("f:"):
            continue
        name = element[2:]
        if name not in a or name not in b or a[name] == b[name]:
            continue
        if _is_leaf(sub):
            new_a, new_b = ABSENT, ABSENT
        else:
            new_a, new_b = _drop_owned(sub, a[name], b[name])
            if new_a is a[name] and new_b is b[name]:
                continue
        if out_a is a:
            out_a, out_b = dict(a), dict(b)
        for out, new in ((out_a, new_a), (out_b, new_b)):
            if new is ABSENT:
                del out[name]
            else:
                out[name] = new
    return out_a, out_b


def _drop_owned_list(fields: dict[str, Any], a: list[Any], b: list[Any]) -> tuple[Any, Any]:
    changes_a: dict[int, Any] = {}
    changes_b: dict[int, Any] = {}
    for element, sub in fields.items():
        index_a, index_b = _locate(element, a), _locate(element, b)
        if index_a is None or index_b is None or a[index_a] == b[index_b]:
            continue
        if _is_leaf(sub):
            changes_a[index_a] = changes_b[index_b] = ABSENT
        else:
            new_a, new_b = _drop_owned(sub, a[index_a], b[index_b])
            if new_a is not a[index_a]:
                changes_a[index_a] = new_a
            if new_b is not b[index_b]:
                changes_b[index_b] = new_b
    return _rebuilt(a, changes_a), _rebuilt(b, changes_b)


def _rebuilt(items: list[Any], changes: dict[int, Any]) -> list[Any]:
    if not changes:
        return items
    out = []
    for index, item in enumerate(items):
        new = changes.get(index, item)
        if new is not ABSENT:
            out.append(new)
    return out


def _locate(element: str, items: list[Any]) -> int | None:
    """Index of the list item a fieldsV1 element (``k:{...}`` or ``i:N``) names."""
    if element.startswith("k:"):
        keys = item_keys(element)
        if keys is None:
            return None
        for index, item in enumerate(items):
            if isinstance(item, dict) and all(k in item and item[k] == v for k, v in keys):
                return index
        return None
    if element.startswith("i:"):
        return _list_index(element[2:], len(items))
    # "v:" names an item of a set by its value; the same value is on both sides, so it never
    # differs and there is nothing to drop.
    return None
