"""A published OpenAPI schema compiled into small nodes: ``$ref`` and ``allOf`` resolved once,
descriptions dropped, recursive definitions shared, so a check walks plain attributes.

Both shapes the API server publishes compile here: OpenAPI v2 (``#/definitions/...``, one
document) and v3 (``#/components/schemas/...``, one document per group-version).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
ANYTHING = frozenset(
    {
        "io.k8s.apimachinery.pkg.runtime.RawExtension",
        "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1beta1.JSON",
    }
)
"""Definitions that hold any JSON value, whatever the document says of their type."""

_UNDERSTOOD = frozenset(
    {
        "type",
        "format",
        "properties",
        "additionalProperties",
        "items",
        "required",
        "enum",
        "nullable",
        "maxLength",
        "minLength",
        "maximum",
        "minimum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "maxItems",
        "minItems",
        "maxProperties",
        "minProperties",
        "uniqueItems",
        "pattern",
        "default",
        "description",
        "title",
        "example",
        "externalDocs",
        "$ref",
        "allOf",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-group-version-kind",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
        "x-kubernetes-patch-strategy",
        "x-kubernetes-patch-merge-key",
        "x-kubernetes-unions",
    }
)
"""Schema keywords the check either enforces or knows to be no constraint on a value.
A node with any other keyword (``oneOf``, ``anyOf``, ``not``, ``x-kubernetes-validations``...)
is *opaque*: the check cannot vouch for a value there."""


class Node:
    """One compiled schema node. ``types`` empty means any type."""

    __slots__ = (
        "additional",
        "embedded",
        "enum",
        "format",
        "int_or_string",
        "items",
        "limits",
        "map_keys",
        "nullable",
        "opaque",
        "pattern",
        "preserve_unknown",
        "properties",
        "quantity",
        "required",
        "types",
    )

    def __init__(self) -> None:
        self.types: frozenset[str] = frozenset()
        self.format = ""
        self.properties: dict[str, Node] | None = None
        self.additional: Node | bool | None = None
        """A map's value schema; True: any value; None: not said (unknown keys are unknown
        fields when ``properties`` is set)."""
        self.items: Node | None = None
        self.required: tuple[str, ...] = ()
        self.enum: tuple[Any, ...] | None = None
        self.nullable = False
        self.limits: tuple[tuple[str, Any], ...] = ()
        self.pattern: re.Pattern[str] | None = None
        self.int_or_string = False
        self.quantity = False
        self.preserve_unknown = False
        self.embedded = False
        self.map_keys: tuple[str, ...] = ()
        self.opaque = ""
        """Why the check cannot judge a value here (a keyword it does not evaluate)."""


_LIMITS = (
    "maxLength",
    "minLength",
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
    "uniqueItems",
)


class Compiler:
    """Compiles schemas of one document; definitions compile once and are shared."""

    def __init__(self, definitions: Mapping[str, Any], ref_prefix: str) -> None:
        self._defs = definitions
        self._prefix = ref_prefix
        self._done: dict[str, Node] = {}

    def definition(self, name: str) -> Node:
        node = self._done.get(name)
        if node is not None:
            return node
        node = self._done[name] = Node()  # before filling it: definitions may recurse
        if name == INT_OR_STRING:
            node.int_or_string = True
        elif name == QUANTITY:
            node.quantity = True
        elif name not in ANYTHING:
            self._fill(node, self._defs.get(name) or {})
        return node

    def schema(self, raw: Mapping[str, Any]) -> Node:
        ref = _only_ref(raw)
        if ref is not None:
            return self._ref(ref)
        node = Node()
        self._fill(node, raw)
        return node

    def _ref(self, ref: str) -> Node:
        if not ref.startswith(self._prefix):
            node = Node()
            node.opaque = f"a reference outside the document ({ref})"
            return node
        return self.definition(ref[len(self._prefix) :])

    def _fill(self, node: Node, raw: Mapping[str, Any]) -> None:
        for part in raw.get("allOf") or ():
            # The API server wraps a $ref in allOf to set a default beside it (v3).
            ref = _only_ref(part)
            if ref is None:
                node.opaque = node.opaque or "allOf with an inline schema"
                continue
            _merge(node, self._ref(ref))
        if "$ref" in raw:
            _merge(node, self._ref(str(raw["$ref"])))
        unknown = sorted(
            k
            for k in raw
            if k not in _UNDERSTOOD and not k.startswith("x-") and not _int_or_string_any_of(raw, k)
        )
        unknown += sorted(
            k for k in raw if k.startswith("x-") and k not in _UNDERSTOOD and k != "x-nullable"
        )
        if unknown:
            node.opaque = f"the schema uses {', '.join(unknown)}"
        kind = raw.get("type")
        if isinstance(kind, str) and kind:
            node.types = frozenset({kind})
        node.format = str(raw.get("format") or node.format)
        if node.format == "int-or-string" or raw.get("x-kubernetes-int-or-string"):
            node.int_or_string = True
            node.types = frozenset()
        if "properties" in raw:
            props = raw["properties"] or {}
            node.properties = {str(k): self.schema(v) for k, v in props.items()}
        extra = raw.get("additionalProperties")
        if isinstance(extra, Mapping):
            node.additional = self.schema(extra)
        elif extra is True:
            node.additional = True
        if isinstance(raw.get("items"), Mapping):
            node.items = self.schema(raw["items"])
        node.required = tuple(str(r) for r in raw.get("required") or ()) or node.required
        if "enum" in raw:
            node.enum = tuple(raw["enum"] or ())
        node.nullable = bool(raw.get("nullable") or raw.get("x-nullable") or node.nullable)
        node.limits = tuple((k, raw[k]) for k in _LIMITS if k in raw) or node.limits
        if "pattern" in raw:
            try:
                node.pattern = re.compile(str(raw["pattern"]), re.ASCII)  # as RE2: \d is 0-9
            except re.error:
                node.opaque = f"a pattern this check cannot read ({raw['pattern']})"
        node.preserve_unknown = bool(raw.get("x-kubernetes-preserve-unknown-fields"))
        node.embedded = bool(raw.get("x-kubernetes-embedded-resource"))
        node.map_keys = tuple(str(k) for k in raw.get("x-kubernetes-list-map-keys") or ())


def _int_or_string_any_of(raw: Mapping[str, Any], key: str) -> bool:
    """The ``anyOf: [{type: integer}, {type: string}]`` that v3 adds beside
    ``x-kubernetes-int-or-string``: it says nothing more."""
    if key != "anyOf" or not raw.get("x-kubernetes-int-or-string"):
        return False
    return sorted(str(p.get("type")) for p in raw.get("anyOf") or () if isinstance(p, Mapping)) == [
        "integer",
        "string",
    ] and all(set(p) == {"type"} for p in raw["anyOf"])


def _only_ref(raw: Mapping[str, Any]) -> str | None:
    """The target of a schema that is only a reference (a description or default beside it)."""
    if "$ref" in raw and not (set(raw) - {"$ref", "description", "default"}):
        return str(raw["$ref"])
    parts = raw.get("allOf")
    if (
        isinstance(parts, list)
        and len(parts) == 1
        and isinstance(parts[0], Mapping)
        and set(parts[0]) == {"$ref"}
        and not (set(raw) - {"allOf", "description", "default"})
    ):
        return str(parts[0]["$ref"])
    return None


def _merge(node: Node, other: Node) -> None:
    """Folds a referenced schema into one that names it beside other keywords."""
    for slot in Node.__slots__:
        value = getattr(other, slot)
        if value and not getattr(node, slot):
            setattr(node, slot, value)


def strip_descriptions(schema: Any) -> Any:
    """A schema without its ``description`` texts: most of a document's bytes, none of its
    rules. Property names are kept whatever they are (a field may be called ``description``)."""
    if isinstance(schema, list):
        return [strip_descriptions(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("description", "example", "externalDocs"):
            continue
        if key in ("properties", "definitions", "schemas") and isinstance(value, dict):
            out[key] = {name: strip_descriptions(v) for name, v in value.items()}
        elif key in ("enum", "default"):
            out[key] = value
        else:
            out[key] = strip_descriptions(value)
    return out
