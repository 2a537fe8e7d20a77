"""``tether app delete``: through a running controller when there is one, else here.

Both paths end in the same cascade (``tether.deletion.cascade``). A cascade first marks the
Application (annotation ``tether.dev/deleting``) and puts tether's finalizer on it; the
controller never starts a sync or a self-heal of an Application so marked, or of one whose
``deletionTimestamp`` is set. A sync the controller started before the mark is made visible
by the Application itself: before it applies anything the controller writes
``status.operationState.phase: Running`` at the resourceVersion it read, so the API server
orders that write and the mark. Either the controller wrote first (the mark's answer then
shows ``Running`` and the delete waits for that sync to end), or the mark did (the
controller's write is refused with a conflict; it reads the mark and applies nothing).

The Application is then deleted. A controller answers by writing the ``Deleting`` condition
and deletes the objects itself; the command waits for the Application to be gone. When no
controller answers (or the Application never carried the finalizer, so no controller has
managed it), the command runs the cascade and removes the finalizer itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tether.api.application import API_VERSION, KIND
from tether.deletion.cascade import (
    DELETING_CONDITION,
    ERROR_CONDITION,
    DeletionHooks,
    Progress,
    advance,
    deletion_conditions,
    read_inventory,
    read_live,
    release,
    set_finalizers,
    write_conditions,
)
from tether.deletion.hooks import RenderedHooks
from tether.deletion.plan import plan_cascade
from tether.deletion.policy import (
    DELETING_ANNOTATION,
    FINALIZER,
    POLICY_ANNOTATION,
    REQUESTED_BY_ANNOTATION,
    deletion_policy,
    finalizers,
    holds_ours,
    propagation,
    sync_running,
    without_ours,
)
from tether.engine import Engine
from tether.errors import TetherError
from tether.kube import KubeClient
from tether.model import Obj, ResourceKey

POLL = 0.5
"""Seconds between reads while the command waits (for a sync, a step, the controller)."""


@dataclass
class DeleteOutcome:
    by: str
    """"controller", "this command", or "" for an orphan delete."""
    deleted: list[ResourceKey] = field(default_factory=list)
    kept: list[tuple[ResourceKey, str]] = field(default_factory=list)


async def delete_application(
    engine: Engine,
    name: str,
    namespace: str,
    *,
    cascade: bool | None,
    timeout: float,
    controller_wait: float = 15.0,
    say: Callable[[str], None] = lambda _: None,
    requested_by: str | None = None,
) -> DeleteOutcome:
    """Deletes the Application and, with ``cascade`` (None: as its deletion policy says),
    the objects of its inventory that are still its own. ``requested_by`` (default: this
    process's ``user@host``) is stamped on the Application for the audit trail."""
    from tether.service.applications import who_asks  # the service imports the engine's side

    user = requested_by if requested_by is not None else who_asks()
    kube = engine.kube
    app = (await engine.get_app(name, namespace)).obj
    policy = deletion_policy(app)
    if cascade is None:
        if policy.error:
            raise TetherError(
                f"Application {namespace}/{name}: {policy.error}",
                hint="fix the annotation, or say --cascade or --orphan",
            )
        cascade = policy.cascade
    if not cascade:
        await _orphan(kube, app, user)
        return DeleteOutcome(by="")
    managed = FINALIZER in finalizers(app)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    marked = await set_finalizers(
        kube,
        app,
        lambda now: [*finalizers(now), FINALIZER],
        annotations={
            DELETING_ANNOTATION: stamp,
            POLICY_ANNOTATION: None,
            REQUESTED_BY_ANNOTATION: user,
        },
    )
    if marked is None:
        raise TetherError(f"Application {namespace}/{name} was deleted meanwhile")
    settled = await _wait_for_running_sync(kube, marked, timeout)
    # What this app may delete, as its last sync left the inventory.
    expected = await _expected(kube, settled)
    before = _deletion_conditions(settled)
    await kube.delete(API_VERSION, KIND, name, namespace, propagation="Background")
    deadline = time.monotonic() + timeout
    if managed:
        say(f"waiting up to {controller_wait:g}s for the controller to delete the objects")
        if await _controller_answers(kube, name, namespace, controller_wait, before):
            await _wait_gone(kube, name, namespace, deadline, timeout)
            expected.by = "the controller"
            return expected
        say(f"no controller answered within {controller_wait:g}s: deleting the objects here")
    else:
        say("no controller manages this Application: deleting the objects here")
    await _cascade_here(kube, name, namespace, deadline, timeout, RenderedHooks(engine))
    expected.by = "this command"
    return expected


async def _orphan(kube: KubeClient, app: Obj, user: str) -> None:
    """The objects stay: the policy annotation and the finalizers go in one write, so a
    controller cannot put its finalizer back before the delete."""
    meta = app.get("metadata") or {}
    await set_finalizers(
        kube,
        app,
        without_ours,
        annotations={POLICY_ANNOTATION: "orphan", REQUESTED_BY_ANNOTATION: user},
    )
    await kube.delete(
        API_VERSION, KIND, str(meta["name"]), str(meta["namespace"]), propagation="Background"
    )


async def _expected(kube: KubeClient, app: Obj) -> DeleteOutcome:
    """What the cascade is to delete and what it keeps, as the inventory stands now."""
    meta = app.get("metadata") or {}
    inventory = read_inventory(app)
    live, _ = await read_live(kube, inventory)
    plan = plan_cascade(str(meta["namespace"]), str(meta["name"]), inventory, live)
    return DeleteOutcome(by="", deleted=[t.key for t in plan.targets], kept=plan.kept)


def _deletion_conditions(obj: Obj) -> list[tuple[str, str]]:
    conds = (obj.get("status") or {}).get("conditions") or []
    return [
        (str(c.get("type")), str(c.get("message")))
        for c in conds
        if c.get("type") in (DELETING_CONDITION, ERROR_CONDITION)
    ]


async def _controller_answers(
    kube: KubeClient, name: str, namespace: str, wait: float, before: list[tuple[str, str]]
) -> bool:
    """True once a controller has written a deletion condition other than ``before`` (what
    an earlier, stopped deletion left), or already finished."""
    deadline = time.monotonic() + wait
    while True:
        obj = await kube.get(API_VERSION, KIND, name, namespace)
        if obj is None or not holds_ours(obj):
            return True
        now = _deletion_conditions(obj)
        if now and now != before:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL)


async def _wait_gone(
    kube: KubeClient, name: str, namespace: str, deadline: float, timeout: float
) -> None:
    while True:
        obj = await kube.get(API_VERSION, KIND, name, namespace)
        if obj is None or not holds_ours(obj):
            return  # gone, or held only by someone else's finalizer now
        if time.monotonic() >= deadline:
            conds = (obj.get("status") or {}).get("conditions") or []
            why = "; ".join(str(c.get("message")) for c in conds) or "no condition"
            raise _unfinished(namespace, name, timeout, why)
        await asyncio.sleep(POLL)


async def _cascade_here(
    kube: KubeClient,
    name: str,
    namespace: str,
    deadline: float,
    timeout: float,
    hooks: DeletionHooks,
) -> None:
    while True:
        obj = await kube.get(API_VERSION, KIND, name, namespace)
        if obj is None:
            return
        if not holds_ours(obj):
            return  # someone else finished it (a controller that came up)
        progress: Progress = await advance(
            kube, obj, propagation=propagation(obj, deletion_policy(obj)), hooks=hooks
        )
        if progress.done:
            await release(kube, obj)
            continue
        await write_conditions(kube, obj, deletion_conditions(progress))
        if progress.hook_failed:
            raise TetherError(
                f"Application {namespace}/{name}: deletion stopped: {progress.hook_failed}",
                hint=f"the Application stays, held by its finalizer {FINALIZER}; run "
                "'tether app delete' again once the hook is fixed",
            )
        if time.monotonic() >= deadline:
            raise _unfinished(namespace, name, timeout, progress.message())
        await asyncio.sleep(POLL)


def _unfinished(namespace: str, name: str, timeout: float, why: str) -> TetherError:
    return TetherError(
        f"Application {namespace}/{name}: deletion not finished after {timeout:g}s: {why}",
        hint=(
            f"the Application stays, held by its finalizer {FINALIZER}, until its objects are "
            "gone; a running controller finishes it, or run 'tether app delete' again"
        ),
    )


async def _wait_for_running_sync(kube: KubeClient, obj: Obj, timeout: float) -> Obj:
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
        fresh = await kube.get(API_VERSION, KIND, name, namespace)
        if fresh is None:
            raise TetherError(f"Application {namespace}/{name} was deleted meanwhile")
        obj = fresh
    return obj
