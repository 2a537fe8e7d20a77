"""``spec.dependsOn`` of an Application: the typed list of Applications it waits for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.errors import InvalidSpec


@dataclass(frozen=True, order=True)
class DependencyRef:
    """One Application another one waits for, by namespace and name."""

    namespace: str
    name: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def shown_from(self, namespace: str) -> str:
        """The name alone seen from an app in the same namespace, else ``namespace/name``."""
        return self.name if self.namespace == namespace else f"{self.namespace}/{self.name}"


def parse_depends_on(raw: Any, namespace: str, where: str) -> list[DependencyRef]:
    """``spec.dependsOn`` as written (absent, or a list of ``{name, namespace?}``); the
    namespace defaults to the app's own. A dependency listed twice counts once."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidSpec(
            f"{where}: spec.dependsOn must be a list",
            hint="write dependsOn: [{name: other-app}] (namespace is optional)",
        )
    out: list[DependencyRef] = []
    for i, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        ns = item.get("namespace") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name or not isinstance(ns, str | None):
            raise InvalidSpec(
                f"{where}: spec.dependsOn[{i}] must be a mapping with a name",
                hint="write dependsOn: [{name: other-app, namespace: its-namespace}]",
            )
        ref = DependencyRef(namespace=ns or namespace, name=name)
        if ref not in out:
            out.append(ref)
    return out


def depends_on_of(obj: dict[str, Any]) -> list[DependencyRef]:
    """The dependencies of an Application object as the watch delivers it (perhaps
    invalid: then none, its own reconcile reports the error)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []
    try:
        return parse_depends_on(spec.get("dependsOn"), str(meta.get("namespace") or ""), "")
    except InvalidSpec:
        return []
