"""Running one hook: creating an instance of it, watching it to its end, and its delete policies.

``HookRunner.start`` creates one instance of a hook (a POST, so ``generateName`` works);
with ``BeforeHookCreation`` (the default) it first deletes the instance an earlier run left
behind (the object of the hook's name, or every instance found by the hook's
``instance_labels`` for a ``generateName`` hook) and waits until it is gone, its pods too.
``HookRunner.observe`` reads the instance again and says whether it Succeeded (a Job
Complete, a Pod Succeeded, any other kind Healthy or Suspended, or without a health of its
own: a ConfigMap hook succeeds at once) or Failed (a Job Failed, a Pod Failed, a Degraded
object, or the instance deleted while it ran), and applies ``HookSucceeded`` and
``HookFailed`` once it ended. Both return the ``TaskRecord`` the operation records, so the
runner keeps no state between calls.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Final

from tether.api.application import Application
from tether.errors import InvalidSpec, KubeError
from tether.health import assess
from tether.kube import KubeClient
from tether.model import HealthStatus, Manifest, Obj, ResourceKey
from tether.source import redact
from tether.sync.hooks import (
    DeletePolicy,
    Hook,
    hook_of,
    instance_labels,
    instance_selector,
)
from tether.sync.state import (
    HOOK_FAILED,
    HOOK_RUNNING,
    HOOK_SUCCEEDED,
    RES_SYNC_FAILED,
    RES_SYNCED,
    TaskRecord,
)

GONE_TIMEOUT: Final = 60.0
"""Seconds ``start`` waits for an earlier instance to be deleted (BeforeHookCreation)."""
GONE_POLL: Final = 0.25


class HookRunner:
    """Creates and observes the instances of ``app``'s hooks."""

    def __init__(self, kube: KubeClient, app: Application) -> None:
        self.kube = kube
        self.app = app

    async def start(
        self, hook: Hook, sync_phase: str, wave: int, *, dry_run: bool = False
    ) -> TaskRecord:
        """Creates one instance of ``hook`` (``Running``), or says why it could not
        (``Failed``). ``dry_run`` writes nothing (action ``would run``)."""
        m = hook.manifest
        obj = self._instance(hook)
        api_version = str(obj.get("apiVersion") or "")
        key = _planned_key(obj)
        rec = TaskRecord(
            key=key,
            sync_phase=sync_phase,
            wave=wave,
            action="would run",
            hook_type=hook.hook_type,
            version=api_version.rsplit("/", 1)[-1],
        )
        if dry_run:
            return rec
        try:
            blocked = await self._remove_previous(hook, obj)
            if blocked:
                return _failed(rec, blocked, m)
            created = await self.kube.create(obj)
        except KubeError as e:
            return _failed(rec, f"cannot create it: {redact(str(e))}", m)
        rec.key = ResourceKey.of(created)
        rec.action = "created"
        rec.status = RES_SYNCED
        rec.hook_phase = HOOK_RUNNING
        rec.message = f"{hook.hook_type} hook created"
        return rec

    async def observe(self, rec: TaskRecord) -> TaskRecord:
        """``rec`` as its instance stands now; a finished hook is deleted when its delete
        policy says so. A record already Succeeded or Failed is returned as it is."""
        if rec.hook_phase != HOOK_RUNNING:
            return rec
        api_version = f"{rec.key.group}/{rec.version}" if rec.key.group else rec.version
        try:
            live = await self.kube.get(api_version, rec.key.kind, rec.key.name, rec.key.namespace)
        except KubeError as e:
            rec.message = f"cannot read it: {redact(str(e))}"
            return rec  # still Running: read again next time
        if live is None or (live.get("metadata") or {}).get("deletionTimestamp"):
            return _ended(rec, HOOK_FAILED, "deleted while running")
        phase, message = outcome(live)
        if phase == HOOK_RUNNING:
            rec.message = message
            return rec
        rec = _ended(rec, phase, message)
        policy = (
            DeletePolicy.HOOK_SUCCEEDED if phase == HOOK_SUCCEEDED else DeletePolicy.HOOK_FAILED
        )
        if policy in _policies(live):
            try:
                await self.kube.delete(api_version, rec.key.kind, rec.key.name, rec.key.namespace)
            except KubeError as e:
                rec.message = f"{rec.message}; not deleted ({policy.value}): {redact(str(e))}"
                return rec
            rec.action = "deleted"
            rec.message = f"{rec.message}; deleted ({policy.value})"
        return rec

    # ---- helpers -------------------------------------------------------------------------

    def _instance(self, hook: Hook) -> Obj:
        """The object to create: the hook's manifest with its instance labels."""
        obj = copy.deepcopy(hook.manifest.obj)
        meta = obj.setdefault("metadata", {})
        meta["labels"] = {**(meta.get("labels") or {}), **instance_labels(self.app, hook)}
        for server_field in ("resourceVersion", "uid", "creationTimestamp"):
            meta.pop(server_field, None)
        return obj

    async def _remove_previous(self, hook: Hook, obj: Obj) -> str:
        """Deletes the instances an earlier run left (BeforeHookCreation) and waits until
        they are gone. Returns why the hook cannot be created ("" when it can)."""
        meta = obj.get("metadata") or {}
        api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        before = DeletePolicy.BEFORE_HOOK_CREATION in hook.delete_policies
        if not name:  # generateName: every new instance has a name of its own
            if not before:
                return ""
            items, _ = await self.kube.list(
                api_version, kind, namespace, label_selector=instance_selector(self.app, hook)
            )
            previous = [str(o["metadata"]["name"]) for o in items]
        else:
            live = await self.kube.get(api_version, kind, name, namespace)
            if live is None:
                return ""
            labels = (live.get("metadata") or {}).get("labels") or {}
            ours = all(labels.get(k) == v for k, v in instance_labels(self.app, hook).items())
            where = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
            if not ours:
                return (
                    f"{where} already exists and is not an instance of this hook of "
                    f"Application {self.app.namespace}/{self.app.name}; rename the hook or "
                    "delete that object"
                )
            going = bool((live.get("metadata") or {}).get("deletionTimestamp"))
            if not before and not going:
                return (
                    f"{where} from an earlier run is still there (its delete policy has no "
                    "BeforeHookCreation); delete it, or add BeforeHookCreation to "
                    "tether.dev/hook-delete-policy"
                )
            previous = [name]
        for n in previous:
            await self.kube.delete(api_version, kind, n, namespace, propagation="Foreground")
        deadline = time.monotonic() + GONE_TIMEOUT
        for n in previous:
            while await self.kube.get(api_version, kind, n, namespace) is not None:
                if time.monotonic() >= deadline:
                    return (
                        f"the earlier instance {kind} {namespace}/{n} is still being deleted "
                        f"after {GONE_TIMEOUT:g}s (a finalizer holds it?); the hook runs once "
                        "it is gone"
                    )
                await asyncio.sleep(GONE_POLL)
        return ""


def outcome(live: Obj) -> tuple[str, str]:
    """(Running, Succeeded or Failed; a message) for a hook instance as read."""
    kind = str(live.get("kind") or "")
    group = str(live.get("apiVersion") or "").rsplit("/", 1)[0]
    status = live.get("status") or {}
    if kind == "Pod" and "/" not in str(live.get("apiVersion") or ""):
        phase = str(status.get("phase") or "")
        if phase == "Succeeded":
            return HOOK_SUCCEEDED, "pod succeeded"
        if phase == "Failed":
            return HOOK_FAILED, _pod_failure(live)
        return HOOK_RUNNING, f"pod {phase or 'Pending'}"
    health = assess(live)
    if kind == "Job" and group == "batch":
        if health is not None and health.status is HealthStatus.HEALTHY:
            return HOOK_SUCCEEDED, health.message or "job completed"
        if health is not None and health.status is HealthStatus.DEGRADED:
            return HOOK_FAILED, health.message or "job failed"
        return HOOK_RUNNING, health.message if health is not None else "job running"
    if health is None or health.status in (HealthStatus.HEALTHY, HealthStatus.SUSPENDED):
        return HOOK_SUCCEEDED, (health.message if health is not None else "") or "created"
    if health.status is HealthStatus.DEGRADED:
        return HOOK_FAILED, health.message or "degraded"
    return HOOK_RUNNING, health.message


def _pod_failure(pod: Obj) -> str:
    status = pod.get("status") or {}
    for c in status.get("containerStatuses") or []:
        term = (c.get("state") or {}).get("terminated") or {}
        if term and term.get("exitCode"):
            why = term.get("message") or term.get("reason") or "error"
            return f"container {c.get('name')} exited with code {term['exitCode']}: {why}"
    return str(status.get("message") or status.get("reason") or "pod failed")


def _policies(live: Obj) -> frozenset[DeletePolicy]:
    """The delete policies the instance carries (its annotations are the hook's)."""
    try:
        hook = hook_of(Manifest(live), first_install=False)
    except InvalidSpec:  # an instance whose annotations no longer parse: delete nothing
        return frozenset()
    return hook.delete_policies if hook is not None else frozenset()


def _planned_key(obj: Obj) -> ResourceKey:
    """The instance's key before creation: a ``generateName`` hook's prefix as its name."""
    key = ResourceKey.of(obj)
    if key.name:
        return key
    meta = obj.get("metadata") or {}
    return ResourceKey(key.group, key.kind, key.namespace, str(meta.get("generateName") or ""))


def _failed(rec: TaskRecord, why: str, m: Manifest) -> TaskRecord:
    where = f"{m.source_file}:{m.line}: " if m.source_file and m.line else ""
    if m.source_file and not m.line:
        where = f"{m.source_file}: "
    rec.action = "failed"
    rec.status = RES_SYNC_FAILED
    rec.hook_phase = HOOK_FAILED
    rec.message = f"{where}{why}"
    return rec


def _ended(rec: TaskRecord, phase: str, message: str) -> TaskRecord:
    rec.hook_phase = phase
    rec.message = message
    return rec
