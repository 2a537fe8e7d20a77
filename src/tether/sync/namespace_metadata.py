"""``spec.syncPolicy.managedNamespaceMetadata``: the labels and annotations tether keeps on the
namespace that ``CreateNamespace=true`` creates, parsed and checked, and the object applied.

They are applied with a field manager of their own (``tether-namespace``), so a Namespace
manifest in the app's render (applied as ``tether``) and this metadata never take each other's
fields away; where both set the same key, the manifest's value wins, as in Argo CD.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.errors import InvalidSpec
from tether.model import Obj

FIELD_MANAGER = "tether-namespace"
_KEYS = ("labels", "annotations")


@dataclass(frozen=True)
class NamespaceMetadata:
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def object(self, name: str) -> Obj:
        """The Namespace to apply: only these labels and annotations."""
        meta: dict[str, Any] = {"name": name}
        if self.labels:
            meta["labels"] = dict(self.labels)
        if self.annotations:
            meta["annotations"] = dict(self.annotations)
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}

    def held_by(self, live: Obj) -> bool:
        """True when ``live`` already carries every label and annotation with its value."""
        meta = live.get("metadata") or {}
        for key, want in (("labels", self.labels), ("annotations", self.annotations)):
            have = meta.get(key) or {}
            if any(have.get(k) != v for k, v in want.items()):
                return False
        return True


def parse_namespace_metadata(value: Any, where: str) -> NamespaceMetadata | None:
    """``{labels: {...}, annotations: {...}}`` (both optional), or None when absent."""
    if value is None:
        return None
    here = f"{where}: spec.syncPolicy.managedNamespaceMetadata"
    if not isinstance(value, Mapping):
        raise InvalidSpec(f"{here} must be a mapping", hint="give it labels and/or annotations")
    unknown = sorted(str(k) for k in value if k not in _KEYS)
    if unknown:
        raise InvalidSpec(
            f"{here}: unknown key(s) {', '.join(unknown)}", hint="known keys: labels, annotations"
        )
    parts: dict[str, dict[str, str]] = {}
    for key in _KEYS:
        raw = value.get(key) or {}
        if not isinstance(raw, Mapping):
            raise InvalidSpec(f"{here}.{key} must be a mapping of names to strings")
        for k, v in raw.items():
            if not isinstance(v, str):
                raise InvalidSpec(
                    f"{here}.{key}.{k} must be a string, not {type(v).__name__}",
                    hint='quote it in YAML, e.g. "true" or "1"',
                )
        parts[key] = {str(k): v for k, v in raw.items()}
    return NamespaceMetadata(labels=parts["labels"], annotations=parts["annotations"])
