"""Writing one object as its sync options ask: server-side apply (``Validate=false`` sends
``fieldValidation=Ignore``), ``Replace=true`` (PUT, or create when missing), and
``Force=true`` (delete and re-create when the server refuses an update of an immutable
field). The server's own error is kept, with what to do about it.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass

from tether.errors import KubeError
from tether.kube import KubeClient
from tether.kube.client import FIELD_MANAGER
from tether.model import Obj

RECREATE_TIMEOUT = 120.0
"""How long ``Force=true`` waits for the old object to be gone before creating it again."""

FORCE_HINT = (
    "the server cannot change that field in place: change it back in Git, or add the sync "
    "option Force=true to the object to have tether delete and re-create it"
)
_IMMUTABLE_MARKS = ("immutable", "may not change", "forbidden: updates to")


@dataclass(frozen=True)
class WriteMode:
    """How to write one object (its effective sync options)."""

    replace: bool = False
    force: bool = False
    validate: bool = True


@dataclass
class Written:
    obj: Obj
    """What the server stored (or would store, on a dry run)."""
    recreated: str = ""
    """Why the object was deleted and created again (``Force=true``), else empty."""


def is_immutable_error(e: KubeError) -> bool:
    """The server refused an update because it changes a field that cannot change."""
    text = e.message.lower()
    return e.status == 422 and any(mark in text for mark in _IMMUTABLE_MARKS)


async def write(
    kube: KubeClient, obj: Obj, exists: bool, mode: WriteMode, *, dry_run: bool
) -> Written:
    """Applies (or replaces) ``obj``; with ``mode.force``, re-creates it when the server
    refuses the update for an immutable field. Raises KubeError otherwise."""
    try:
        if mode.replace:
            return Written(await replace(kube, obj, validate=mode.validate, dry_run=dry_run))
        return Written(await apply(kube, obj, validate=mode.validate, dry_run=dry_run))
    except KubeError as e:
        if not (exists and is_immutable_error(e)):
            raise
        if not mode.force:
            raise KubeError(e.message, status=e.status, hint=FORCE_HINT) from e
        why = f"deleted and re-created (Force=true): {_short(e.message)}"
        if dry_run:
            return Written(obj, recreated=why)
        await recreate(kube, obj)
        if mode.replace:
            created = await replace(kube, obj, validate=mode.validate, dry_run=False)
        else:
            created = await apply(kube, obj, validate=mode.validate, dry_run=False)
        return Written(created, recreated=why)


async def apply(kube: KubeClient, obj: Obj, *, validate: bool, dry_run: bool) -> Obj:
    """Server-side apply as field manager ``tether``, taking over conflicting fields."""
    # Strict: unknown fields are refused, as the schema check (tether.schema) assumes.
    return await kube.apply(
        obj, dry_run=dry_run, field_validation="Strict" if validate else "Ignore"
    )


async def replace(kube: KubeClient, obj: Obj, *, validate: bool, dry_run: bool) -> Obj:
    """``Replace=true``: PUT the whole object over the live one (fields Git does not set are
    dropped, whoever set them), or create it when it does not exist."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    res = await kube.resource_for(api_version, kind)
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    ns = str(meta.get("namespace") or "") if res.namespaced else ""
    query = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict" if validate else "Ignore"}
    if dry_run:
        query["dryRun"] = "All"
    current = await kube.get(api_version, kind, name, ns)
    if current is None:
        created: Obj = await kube.request("POST", res.path(ns), query=query, body=obj)
        return created
    body = copy.deepcopy(obj)
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    replaced: Obj = await kube.request("PUT", res.path(ns, name), query=query, body=body)
    return replaced


async def recreate(kube: KubeClient, obj: Obj) -> None:
    """Deletes the live object (foreground, so its dependents go first) and waits until it is
    gone, so the same name can be created again."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    meta = obj.get("metadata") or {}
    name, ns = str(meta.get("name", "")), str(meta.get("namespace") or "")
    current = await kube.get(api_version, kind, name, ns)
    if current is None:
        return
    uid = str(current["metadata"].get("uid", ""))
    await kube.delete(api_version, kind, name, ns, propagation="Foreground", preconditions_uid=uid)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECREATE_TIMEOUT
    while True:
        now = await kube.get(api_version, kind, name, ns)
        if now is None or str(now["metadata"].get("uid", "")) != uid:
            return
        if loop.time() > deadline:
            raise KubeError(
                f"{kind} {ns + '/' if ns else ''}{name}: Force=true deleted it to re-create it, "
                f"but it was still there after {RECREATE_TIMEOUT:.0f}s",
                hint="look for a finalizer on it or its dependents, then sync again",
            )
        await asyncio.sleep(0.2)


def _short(message: str) -> str:
    """The server's reason without the request line (``PATCH /api/...: 422 Invalid:``)."""
    _, sep, rest = message.partition(": 422 Invalid: ")
    return rest if sep else message
