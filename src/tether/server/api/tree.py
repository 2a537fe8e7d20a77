"""An Application's resource tree, pure: its managed objects, hooks and pruned objects as
roots, and the objects they own (ReplicaSet, Pod, Job, ControllerRevision...) below them,
found through ``ownerReferences``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tether import health
from tether.model import Obj, ResourceKey

OWNED_KINDS = (
    ("apps/v1", "ReplicaSet"),
    ("v1", "Pod"),
    ("batch/v1", "Job"),
    ("apps/v1", "ControllerRevision"),
)
"""The kinds looked up as children of what an app manages."""
OWNERS = frozenset(
    {
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("batch", "Job"),
        ("batch", "CronJob"),
    }
)
"""Kinds whose objects own others that the tree shows."""


@dataclass(frozen=True)
class Root:
    """An object the app itself knows of: from ``status.resources``, a hook, or pruned."""

    key: ResourceKey
    version: str
    status: str = ""
    health: dict[str, str] | None = None
    hook: bool = False
    pruned: bool = False


def roots(app: Obj) -> list[Root]:
    """The managed objects, the hooks of the last operation and what it pruned."""
    status = app.get("status") or {}
    out: dict[ResourceKey, Root] = {}
    for row in status.get("resources") or []:
        key = _key(row)
        health_row = row.get("health")
        out[key] = Root(
            key,
            str(row.get("version") or ""),
            status=str(row.get("status") or ""),
            health=dict(health_row) if isinstance(health_row, dict) else None,
        )
    results = ((status.get("operationState") or {}).get("syncResult") or {}).get("resources")
    for rec in results or []:
        key = _key(rec)
        if key in out:
            continue
        if rec.get("hookType"):
            out[key] = Root(key, str(rec.get("version") or ""), hook=True)
        elif rec.get("action") == "pruned":
            out[key] = Root(key, str(rec.get("version") or ""), pruned=True)
    return list(out.values())


def may_own(roots_: Iterable[Root]) -> bool:
    """Whether any root is of a kind that owns objects the tree shows."""
    return any((r.key.group, r.key.kind) in OWNERS for r in roots_)


def build(
    app: Obj, live: dict[ResourceKey, Obj], candidates: Iterable[Obj]
) -> list[dict[str, Any]]:
    """The nodes: every root (with its live object from ``live`` when it exists), then each
    of ``candidates`` owned, directly or not, by a node already in the tree."""
    nodes: list[dict[str, Any]] = []
    uids: set[str] = set()
    for r in roots(app):
        obj = None if r.pruned else live.get(r.key)
        node = _node(r.key, r.version, obj, managed=not (r.hook or r.pruned))
        node.update(hook=r.hook, pruned=r.pruned, status=r.status)
        if r.health is not None:
            node["health"] = {
                "status": r.health.get("status", ""),
                "message": r.health.get("message", ""),
            }
        nodes.append(node)
        if node["uid"]:
            uids.add(node["uid"])
    pending = [c for c in candidates if _uid(c) and _uid(c) not in uids]
    # Owners before the owned, whatever order the lists came in: repeat until none is added.
    added = True
    while added and pending:
        added = False
        rest: list[Obj] = []
        for obj in pending:
            parents = [ref for ref in _owner_uids(obj) if ref in uids]
            if not parents:
                rest.append(obj)
                continue
            key = ResourceKey.of(obj)
            node = _node(key, _version(obj), obj, managed=False)
            node["parents"] = parents
            nodes.append(node)
            uids.add(node["uid"])
            added = True
        pending = rest
    return nodes


def _node(key: ResourceKey, version: str, obj: Obj | None, *, managed: bool) -> dict[str, Any]:
    meta = (obj or {}).get("metadata") or {}
    assessed = health.assess(obj) if obj is not None else None
    return {
        "uid": str(meta.get("uid") or ""),
        "group": key.group,
        "version": _version(obj) if obj is not None else version,
        "kind": key.kind,
        "namespace": key.namespace,
        "name": key.name,
        "parents": [],
        "managed": managed,
        "hook": False,
        "pruned": False,
        "status": "",
        "health": (
            {"status": assessed.status.value, "message": assessed.message}
            if assessed is not None
            else None
        ),
        "createdAt": str(meta.get("creationTimestamp") or ""),
    }


def _key(d: dict[str, Any]) -> ResourceKey:
    return ResourceKey(
        str(d.get("group") or ""),
        str(d.get("kind") or ""),
        str(d.get("namespace") or ""),
        str(d.get("name") or ""),
    )


def _uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _owner_uids(obj: Obj) -> list[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [str(r.get("uid")) for r in refs if isinstance(r, dict) and r.get("uid")]


def _version(obj: Obj) -> str:
    return str(obj.get("apiVersion") or "").rsplit("/", 1)[-1]


def contains(nodes: Iterable[dict[str, Any]], key: ResourceKey) -> bool:
    """Whether ``key`` names a node of the tree (the resource route serves nothing else)."""
    return any(
        (n["group"], n["kind"], n["namespace"], n["name"])
        == (key.group, key.kind, key.namespace, key.name)
        for n in nodes
    )
