"""Deleting an Application without racing the controller.

A cascade delete first marks the Application (annotation ``tether.dev/deleting``); the
controller never starts a sync or a self-heal of an Application so marked, or of one
whose ``deletionTimestamp`` is set. A sync the controller started before the mark is made
visible by the Application itself: before it applies anything the controller writes
``status.operationState.phase: Running`` at the resourceVersion it read, so the API server
orders that write and the mark. Either the controller wrote first (the mark's answer then
shows ``Running`` and the delete waits for that sync to end), or the mark did (the
controller's write is refused with a conflict; it reads the mark and applies nothing).
Only then are the objects deleted, and the Application last.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from tether.api.application import API_VERSION, KIND, Application
from tether.engine import Engine
from tether.errors import TetherError
from tether.model import Obj, ResourceKey

DELETING_ANNOTATION = "tether.dev/deleting"
POLL = 0.5
"""Seconds between reads of a running sync's state while a delete waits for it."""


def being_deleted(obj: Obj) -> str:
    """Why the Application ``obj`` is going away, or "" when it is not."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return "its deletionTimestamp is set"
    if (meta.get("annotations") or {}).get(DELETING_ANNOTATION):
        return f"it is annotated {DELETING_ANNOTATION} (tether app delete)"
    return ""


def sync_running(obj: Obj) -> bool:
    op = (obj.get("status") or {}).get("operationState") or {}
    return op.get("phase") == "Running"


async def delete_application(
    engine: Engine, name: str, namespace: str, *, cascade: bool, timeout: float
) -> list[ResourceKey]:
    """Deletes the Application and, with ``cascade``, the objects of its inventory that
    are still its own. Returns the objects deleted."""
    app = await engine.get_app(name, namespace)
    deleted: list[ResourceKey] = []
    if cascade:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        marked = await engine.kube.merge_patch(
            app.obj, {"metadata": {"annotations": {DELETING_ANNOTATION: stamp}}}
        )
        settled = await _wait_for_running_sync(engine, marked, timeout)
        # The inventory as the last sync left it: a sync that just ended may have added to it.
        deleted = await engine.delete_owned(Application.from_obj(settled))
    await engine.kube.delete(API_VERSION, KIND, name, namespace, propagation="Background")
    return deleted


async def _wait_for_running_sync(engine: Engine, obj: Obj, timeout: float) -> Obj:
    meta = obj.get("metadata") or {}
    name, namespace = str(meta.get("name")), str(meta.get("namespace"))
    deadline = time.monotonic() + timeout
    while sync_running(obj):
        if time.monotonic() >= deadline:
            op = (obj.get("status") or {}).get("operationState") or {}
            raise TetherError(
                f"Application {namespace}/{name}: a sync started at {op.get('startedAt', '?')} "
                f"is still running after {timeout:g}s; nothing was deleted. The Application is "
                f"marked {DELETING_ANNOTATION}, so no new sync starts",
                hint="run the delete again once the sync ends (a running controller ends or "
                "abandons it); raise --timeout for long syncs",
            )
        await asyncio.sleep(POLL)
        fresh = await engine.kube.get(API_VERSION, KIND, name, namespace)
        if fresh is None:
            raise TetherError(f"Application {namespace}/{name} was deleted meanwhile")
        obj = fresh
    return obj
