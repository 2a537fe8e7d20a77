"""Small value types shared along the path: object keys, manifests, health and sync states."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Obj = dict[str, Any]
"""A Kubernetes object as a plain dict, the way it crosses the I/O edge."""


def resource_version(obj: Obj | None) -> int:
    """An object's ``metadata.resourceVersion`` as a number, to tell an older copy of it from
    a newer one (etcd's revisions only increase); 0 when it has none."""
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


@dataclass(frozen=True, order=True)
class ResourceKey:
    """Identity of an object: group (``""`` for core), kind, namespace (``""`` if cluster-scoped),
    name."""

    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Obj) -> ResourceKey:
        api_version = str(obj.get("apiVersion", ""))
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        meta = obj.get("metadata") or {}
        return cls(
            group,
            str(obj.get("kind", "")),
            str(meta.get("namespace") or ""),
            str(meta.get("name", "")),
        )

    def __str__(self) -> str:
        gk = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{gk} {self.namespace}/{self.name}" if self.namespace else f"{gk} {self.name}"

    def tracking_id(self, app_namespace: str, app_name: str) -> str:
        """``<app-namespace>_<app>:<group>/<kind>:<namespace>/<name>``."""
        return f"{app_namespace}_{app_name}:{self.group}/{self.kind}:{self.namespace}/{self.name}"

    def to_dict(self) -> dict[str, str]:
        return {
            "group": self.group,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }


@dataclass
class Manifest:
    """One desired object and where it came from (file and 1-based line in the repo tree).

    ``obj`` is not changed in place once it is here (a changed object is a new Manifest, or
    a new ``obj``): its key is worked out once."""

    obj: Obj
    source_file: str = ""
    line: int = 0

    @property
    def key(self) -> ResourceKey:
        # Asked for many times per object along a sync; kept with the object it was made from,
        # so a new ``obj`` gets a new key.
        memo: tuple[Obj, ResourceKey] | None = self.__dict__.get("_key")
        if memo is not None and memo[0] is self.obj:
            return memo[1]
        key = ResourceKey.of(self.obj)
        self.__dict__["_key"] = (self.obj, key)
        return key


class HealthStatus(StrEnum):
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    SUSPENDED = "Suspended"
    MISSING = "Missing"
    UNKNOWN = "Unknown"

    @property
    def severity(self) -> int:
        """Higher is worse; an app's health is the worst of its objects."""
        return _SEVERITY[self]


_SEVERITY = {
    HealthStatus.HEALTHY: 0,
    HealthStatus.SUSPENDED: 1,
    HealthStatus.PROGRESSING: 2,
    HealthStatus.UNKNOWN: 3,
    HealthStatus.MISSING: 4,
    HealthStatus.DEGRADED: 5,
}


@dataclass(frozen=True)
class Health:
    status: HealthStatus
    message: str = ""


class SyncStatus(StrEnum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    UNKNOWN = "Unknown"


class ResourceDiffStatus(StrEnum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    MISSING = "Missing"
    EXTRANEOUS = "Extraneous"


@dataclass
class ResourceDiff:
    key: ResourceKey
    status: ResourceDiffStatus
    diff_text: str = ""
    """Unified YAML diff, Secret values masked."""
    changed_paths: list[str] = field(default_factory=list)
