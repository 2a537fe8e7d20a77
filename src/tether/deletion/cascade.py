"""Deleting an Application's objects one step per call, and the Application's finalizers.

``advance`` is called again and again (by the controller on each reconcile of an Application
being deleted, or in a loop by ``tether app delete`` when no controller runs) and keeps no
state of its own: each call reads the inventory's live objects, finds the first step of the
plan (``tether.deletion.plan``) that still has objects, deletes those not yet being deleted
and reports what it waits for. When no step has anything left the cascade is done and the
finalizers can go. A controller restarted in the middle resumes where the cluster stands.

PreDelete hooks run before the first step and PostDelete hooks after the last
(``DeletionHooks``; ``tether.deletion.hooks.RenderedHooks`` runs the app's own, ``NoHooks``
none). A hook that fails stops the deletion (``Progress.hook_failed``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from tether.api.application import API_VERSION, KIND
from tether.deletion.hooks import HookFailed
from tether.deletion.plan import CascadePlan, Target, plan_cascade
from tether.deletion.policy import finalizers, without_ours
from tether.errors import KubeError, TetherError
from tether.kube import KubeClient
from tether.live import bounded
from tether.model import Obj, ResourceKey
from tether.source import redact
from tether.status import Condition, now

DELETING_CONDITION = "Deleting"
ERROR_CONDITION = "DeletionError"
CONCURRENCY = 32
FINALIZER_ATTEMPTS = 5


class DeletionHooks(Protocol):
    """PreDelete runs before any object is deleted, PostDelete once all are gone. Each
    returns "" when done, or what it still waits for (the cascade is then called again)."""

    async def pre_delete(self, app: Obj) -> str: ...

    async def post_delete(self, app: Obj) -> str: ...


class NoHooks:
    """Nothing to run before or after."""

    async def pre_delete(self, app: Obj) -> str:
        return ""

    async def post_delete(self, app: Obj) -> str:
        return ""


@dataclass
class Progress:
    done: bool = False
    step: str = ""
    deleted: list[ResourceKey] = field(default_factory=list)
    """Delete requests this call sent."""
    waiting: list[Target] = field(default_factory=list)
    """Objects of the current step being deleted that are still there."""
    errors: list[tuple[ResourceKey, str]] = field(default_factory=list)
    kept: list[tuple[ResourceKey, str]] = field(default_factory=list)
    gone: list[ResourceKey] = field(default_factory=list)
    hook: str = ""
    """What a PreDelete or PostDelete hook waits for."""
    hook_failed: str = ""
    """Why a PreDelete or PostDelete hook stops the deletion (and what to do); also in
    ``errors``, so the deletion is retried with backoff."""

    def message(self) -> str:
        """One line on what the deletion waits for (for conditions, logs and the CLI)."""
        if self.hook_failed:
            return self.hook_failed
        if self.errors:
            first = "; ".join(f"{k}: {e}" for k, e in self.errors[:3])
            more = f" (and {len(self.errors) - 3} more)" if len(self.errors) > 3 else ""
            return f"could not delete {len(self.errors)} object(s): {first}{more}"
        if self.hook:
            return self.hook
        if self.waiting:
            names = "; ".join(_waiting_on(t) for t in self.waiting[:3])
            more = f" (and {len(self.waiting) - 3} more)" if len(self.waiting) > 3 else ""
            return f"deleting {self.step}: waiting for {names}{more}"
        if self.deleted:
            return f"deleting {self.step}: deleted {len(self.deleted)} object(s)"
        return "done" if self.done else "deleting"


def _waiting_on(t: Target) -> str:
    held = [f for f in t.blockers() if f != "foregroundDeletion"]
    if held:
        return f"{t.key} to go (it has finalizer(s) {', '.join(held)})"
    if "foregroundDeletion" in t.blockers():
        return f"{t.key} to go (its dependents are being deleted first)"
    return f"{t.key} to go"


def read_inventory(app: Obj) -> dict[ResourceKey, str]:
    """``status.inventory`` as key → apiVersion, read from the raw object (a spec that no
    longer parses must not stop a deletion)."""
    out: dict[ResourceKey, str] = {}
    for row in (app.get("status") or {}).get("inventory") or []:
        key = ResourceKey(
            str(row.get("group", "")),
            str(row.get("kind", "")),
            str(row.get("namespace", "")),
            str(row.get("name", "")),
        )
        version = str(row.get("version") or "v1")
        out[key] = f"{key.group}/{version}" if key.group else version
    return out


async def read_live(
    kube: KubeClient, inventory: dict[ResourceKey, str]
) -> tuple[dict[ResourceKey, Obj], list[tuple[ResourceKey, str]]]:
    """Each inventory object as the API server has it now (absent when gone), and the
    objects that could not be read."""
    live: dict[ResourceKey, Obj] = {}
    errors: list[tuple[ResourceKey, str]] = []

    async def get(key: ResourceKey, api_version: str) -> None:
        try:
            obj = await kube.get(api_version, key.kind, key.name, key.namespace)
        except KubeError as e:
            if e.status == 404:
                return  # the kind is no longer served (its CRD went): the object went too
            errors.append((key, f"cannot read it: {e}"))
            return
        if obj is not None:
            live[key] = obj

    await bounded(CONCURRENCY, (get(k, v) for k, v in inventory.items()))
    return live, errors


async def advance(
    kube: KubeClient, app: Obj, *, propagation: str, hooks: DeletionHooks | None = None
) -> Progress:
    """One step of the cascade of the Application ``app`` (as just read)."""
    hooks = hooks or NoHooks()
    meta = app.get("metadata") or {}
    ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    inventory = read_inventory(app)
    live, unreadable = await read_live(kube, inventory)
    if unreadable:
        return Progress(errors=unreadable)
    plan: CascadePlan = plan_cascade(ns, name, inventory, live)
    progress = Progress(kept=plan.kept, gone=plan.gone)
    step = next((s for s in plan.steps if s.targets), None)
    try:
        progress.hook = await hooks.pre_delete(app)
        if progress.hook:
            return progress
        if step is None:
            progress.hook = await hooks.post_delete(app)
            progress.done = not progress.hook
            return progress
    except HookFailed as e:
        progress.hook_failed = str(e)
        progress.errors = [(e.key, progress.hook_failed)]
        return progress
    progress.step = step.label

    async def delete(t: Target) -> None:
        try:
            await kube.delete(
                t.api_version,
                t.key.kind,
                t.key.name,
                t.key.namespace,
                propagation=propagation,
                preconditions_uid=t.uid,
            )
        except KubeError as e:
            if e.status == 409:
                return  # deleted and re-created meanwhile: the next call reads it anew
            progress.errors.append((t.key, _short(e)))
            return
        progress.deleted.append(t.key)

    await bounded(CONCURRENCY, (delete(t) for t in step.targets if not t.deleting))
    progress.waiting = list(step.targets)
    return progress


def _short(e: KubeError) -> str:
    text = redact(str(e))
    if e.status == 403:
        return (
            f"forbidden (403): {text}. Grant the controller 'delete' on this kind, or annotate "
            "the object tether.dev/sync-options: Delete=false to keep it"
        )
    return text


# ---- the Application's own finalizers and status ------------------------------------------


async def set_finalizers(
    kube: KubeClient,
    app: Obj,
    want: Callable[[Obj], list[str]],
    *,
    annotations: dict[str, str | None] | None = None,
) -> Obj | None:
    """Writes ``metadata.finalizers`` as ``want`` computes them from the Application (and
    ``annotations``, None removing one) at the resourceVersion read, so nothing written
    meanwhile is lost: on a conflict it reads again and computes again. Returns the
    Application as written (None once it is gone)."""
    current: Obj | None = app
    for _ in range(FINALIZER_ATTEMPTS):
        if current is None:
            return None
        meta = current.get("metadata") or {}
        have = finalizers(current)
        new = list(dict.fromkeys(want(current)))
        present = meta.get("annotations") or {}
        pending = {k: v for k, v in (annotations or {}).items() if present.get(k) != v}
        if new == have and not pending:
            return current
        patch: dict[str, object] = {
            "resourceVersion": str(meta.get("resourceVersion") or ""),
            "finalizers": new or None,
        }
        if pending:
            patch["annotations"] = pending
        try:
            out: Obj = await kube.merge_patch(current, {"metadata": patch})
            return out
        except KubeError as e:
            if e.status == 404:
                return None
            if e.status != 409:
                raise
        current = await kube.get(
            API_VERSION, KIND, str(meta.get("name")), str(meta.get("namespace"))
        )
    meta = app.get("metadata") or {}
    raise TetherError(
        f"Application {meta.get('namespace')}/{meta.get('name')} kept changing while its "
        "finalizers were written",
        hint="it is tried again",
    )


async def release(kube: KubeClient, app: Obj) -> Obj | None:
    """Removes tether's (and Argo CD's) finalizers: the API server then deletes the
    Application unless someone else's finalizer still holds it."""
    return await set_finalizers(kube, app, without_ours)


def deletion_conditions(progress: Progress) -> list[Condition]:
    if progress.hook_failed:
        return [Condition(ERROR_CONDITION, progress.message(), reason="HookFailed")]
    if progress.errors:
        return [Condition(ERROR_CONDITION, progress.message(), reason="DeleteFailed")]
    return [Condition(DELETING_CONDITION, progress.message(), reason="CascadeDelete")]


async def write_conditions(kube: KubeClient, app: Obj, conditions: list[Condition]) -> Obj | None:
    """Replaces the Application's conditions with the deletion's (what the last comparison
    said no longer matters); writes nothing when they are already there."""
    old = (app.get("status") or {}).get("conditions") or []
    previous = {(c.get("type"), c.get("message")): c.get("lastTransitionTime") for c in old}
    at = now()
    rows = [c.to_dict(str(previous.get((c.type, redact(c.message))) or at)) for c in conditions]
    if [(c.get("type"), c.get("message")) for c in old] == [
        (r["type"], r["message"]) for r in rows
    ]:
        return None
    try:
        out: Obj = await kube.patch_status(app, {"conditions": rows})
    except KubeError as e:
        if e.status == 404:
            return None
        raise
    return out
