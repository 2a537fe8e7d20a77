"""The controller's side of deleting Applications: the finalizer on every app it manages, and
the cascade run a step per reconcile once an app is deleted.

A step that waits (objects being deleted, a foreign finalizer) ends the reconcile; the
deletions of the app's objects queue it again through the live watch, and a re-queue after
``WAIT_RECHECK`` catches kinds the controller does not watch. A step that fails (403, the API
server down) says so in the ``DeletionError`` condition and is retried with backoff; the
finalizer stays until every object the app may delete is gone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tether.api.application import API_VERSION, KIND, Application
from tether.backoff import Backoff
from tether.controller.events import emit_event
from tether.controller.outlets import AuditSink
from tether.controller.queue import AppKey
from tether.deletion.cascade import (
    DELETING_CONDITION,
    ERROR_CONDITION,
    DeletionHooks,
    NoHooks,
    Progress,
    advance,
    release,
    set_finalizers,
    write_conditions,
)
from tether.deletion.policy import (
    FINALIZER,
    POLICY_ANNOTATION,
    REQUESTED_BY_ANNOTATION,
    deletion_policy,
    deletion_started,
    finalizers,
    holds_ours,
    propagation,
    without_ours,
)
from tether.errors import InvalidSpec, KubeError, TetherError
from tether.kube import KubeClient
from tether.model import Obj, ResourceKey
from tether.status import Condition

log = logging.getLogger("tether.controller")

DELETE_BACKOFF = Backoff(base=1.0, cap=60.0, jitter=0.2)
"""Between attempts of a step that failed (403, API server unreachable)."""
WAIT_RECHECK = 5.0
"""Seconds before looking again at a step that waits, if no watch event comes first."""


class AppFinalizer:
    def __init__(
        self,
        kube: KubeClient,
        identity: str,
        requeue: Callable[[AppKey, str, float], None],
        *,
        audit: AuditSink | None = None,
        hooks: DeletionHooks | None = None,
    ) -> None:
        self.kube = kube
        self.identity = identity
        self.requeue = requeue
        self.audit = audit
        self.hooks = hooks or NoHooks()
        self.failures: dict[AppKey, int] = {}
        self._said: dict[AppKey, str] = {}

    def forget(self, key: AppKey) -> None:
        self.failures.pop(key, None)
        self._said.pop(key, None)

    # ---- an app it manages ------------------------------------------------------------------
    async def ensure(self, obj: Obj) -> Obj:
        """Puts the finalizer on an app that cascades (the default), takes tether's and
        Argo CD's off one annotated ``orphan``; returns the Application as it is now."""
        if _wanted(obj) == finalizers(obj):
            return obj
        out = await set_finalizers(self.kube, obj, _wanted)
        return out if out is not None else obj

    @staticmethod
    def conditions(obj: Obj) -> list[Condition]:
        """An unreadable deletion policy, as a condition of the app."""
        err = deletion_policy(obj).error
        return [Condition("InvalidSpec", err, reason="DeletionPolicy")] if err else []

    # ---- an app being deleted ---------------------------------------------------------------
    async def finalize(self, key: AppKey, obj: Obj) -> Obj | None:
        """One step of the deletion of ``obj`` (deletionTimestamp set); returns the
        Application as it is now (None once it is gone)."""
        meta = obj.get("metadata") or {}
        # The watch's copy may lag behind a sync that just ended: its inventory counts.
        fresh = await self.kube.get(API_VERSION, KIND, str(meta["name"]), str(meta["namespace"]))
        if fresh is None:
            return None
        obj = fresh
        if not deletion_started(obj) or not holds_ours(obj):
            return obj  # not deleted, or not ours to finish (someone else's finalizers)
        policy = deletion_policy(obj)
        if policy.error:
            cond = Condition(ERROR_CONDITION, f"{policy.error}; nothing is deleted until then")
            return await write_conditions(self.kube, obj, [cond]) or obj
        if not policy.cascade:
            return await self._done(key, obj, None)
        try:
            progress = await advance(
                self.kube, obj, propagation=propagation(obj, policy), hooks=self.hooks
            )
        except KubeError as e:
            progress = Progress(errors=[(ResourceKey.of(obj), str(e))])
        if progress.done:
            return await self._done(key, obj, progress)
        message = progress.message()
        if progress.errors:
            n = self.failures[key] = self.failures.get(key, 0) + 1
            delay = DELETE_BACKOFF.delay(n)
            await self._say(key, obj, "DeletionFailed", message, warning=True)
            self.requeue(key, "deletion", delay)
            cond = Condition(
                ERROR_CONDITION, f"{message}; retrying in {delay:.0f}s", "DeleteFailed"
            )
        else:
            self.failures.pop(key, None)
            await self._say(key, obj, "Deleting", message, warning=False)
            self.requeue(key, "deletion", WAIT_RECHECK)
            cond = Condition(DELETING_CONDITION, message, "CascadeDelete")
        return await write_conditions(self.kube, obj, [cond]) or obj

    async def _say(
        self, key: AppKey, obj: Obj, reason: str, message: str, *, warning: bool
    ) -> None:
        """An Event and a log line each time what the deletion waits for changes."""
        if self._said.get(key) == message:
            return
        self._said[key] = message
        (log.warning if warning else log.info)(
            "deleting %s/%s: %s", key[0], key[1], message, extra={"app": f"{key[0]}/{key[1]}"}
        )
        await emit_event(self.kube, obj, reason, message, warning=warning, instance=self.identity)

    async def _done(self, key: AppKey, obj: Obj, progress: Progress | None) -> Obj | None:
        """Records the outcome, then removes the finalizers (the Application goes)."""
        if progress is None:
            message = f"deleted with {POLICY_ANNOTATION}: orphan; its objects were left in place"
        else:
            kept = "; ".join(f"{k} kept: {why}" for k, why in progress.kept)
            message = f"deleted with its objects ({len(progress.gone)} in its inventory gone)"
            message += f"; {kept}" if kept else ""
        try:
            await release(self.kube, obj)
        except TetherError as e:
            n = self.failures[key] = self.failures.get(key, 0) + 1
            log.warning("%s/%s: finalizer not removed: %s", key[0], key[1], e)
            self.requeue(key, "deletion", DELETE_BACKOFF.delay(n))
            return obj
        log.info("%s/%s %s", key[0], key[1], message, extra={"app": f"{key[0]}/{key[1]}"})
        await emit_event(self.kube, obj, "Deleted", message, instance=self.identity)
        await self._record(obj, progress, message)
        self.forget(key)
        # Gone, or held by someone else's finalizer: the watch says which. The Application
        # as the release left it is not kept, or it would outlive its DELETED event.
        return None

    async def _record(self, obj: Obj, progress: Progress | None, message: str) -> None:
        if self.audit is None:
            return
        try:
            app = Application.from_obj(obj)
        except InvalidSpec:
            log.warning("no audit record of this deletion: %s", message)
            return  # the record names an Application, and this one no longer parses
        user = str(app.annotations.get(REQUESTED_BY_ANNOTATION) or "")
        if not user:
            message = (
                "deleted outside tether (not by 'tether app delete': kubectl or another "
                f"client; the cluster's audit log names who): {message}"
            )
        await self.audit.record(
            "delete",
            app,
            result="Deleted" if progress is not None else "Orphaned",
            message=message,
            user=user,
            objects=[k.to_dict() for k in progress.gone] if progress else [],
            details={
                "kept": [
                    {**k.to_dict(), "reason": why} for k, why in (progress.kept if progress else [])
                ]
            },
        )


def _wanted(obj: Obj) -> list[str]:
    """The Application's finalizers as its deletion policy wants them (unchanged while the
    policy cannot be read: that is reported, and nothing is decided until it is fixed)."""
    policy = deletion_policy(obj)
    have = finalizers(obj)
    if policy.error:
        return have
    if policy.cascade:
        return have if FINALIZER in have else [*have, FINALIZER]
    return without_ours(obj)
