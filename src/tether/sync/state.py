"""A sync operation as recorded on the Application: what was asked, and how far it got.

``Application.operation`` holds a request (``OperationRequest``) until an engine takes it;
``status.operationState`` holds the operation's progress (``OperationState``): its phase
(Running, Terminating, Succeeded, Failed, Error), the sync phase and wave it stands at, the
hook instances it created and one record per resource it acted on. Because everything an
operation needs to go on is in this record, any engine (the controller after a restart, or
the CLI when no controller runs) can take a Running operation up where it stands.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tether.model import ResourceKey

# Operation phases (status.operationState.phase), as Argo CD names them.
RUNNING = "Running"
TERMINATING = "Terminating"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
ERROR = "Error"
ENDED = (SUCCEEDED, FAILED, ERROR)

RUN_BY_CLI = "cli"
"""``OperationState.run_by`` of an operation run by ``tether app sync`` itself (no
controller was running)."""
DEFAULT_TIMEOUT = 600.0
"""Seconds an operation may wait for its waves and hooks before it fails (as
``--timeout``/``syncPolicy`` operation timeout)."""
CLI_GRACE = 30.0
"""Seconds after its last heartbeat that an operation a CLI runs is taken to be abandoned
(the command was killed): a controller then takes it up."""

# Sync phases, in the order an operation runs them. SyncFail runs only when one fails.
PRE_SYNC = "PreSync"
SYNC = "Sync"
POST_SYNC = "PostSync"
SYNC_FAIL = "SyncFail"
PHASE_ORDER = (PRE_SYNC, SYNC, POST_SYNC, SYNC_FAIL)

# Per-resource status (syncResult.resources[].status).
RES_SYNCED = "Synced"
RES_SYNC_FAILED = "SyncFailed"
RES_PRUNED = "Pruned"
RES_PRUNE_SKIPPED = "PruneSkipped"

# Hook instance phases (syncResult.resources[].hookPhase).
HOOK_RUNNING = "Running"
HOOK_SUCCEEDED = "Succeeded"
HOOK_FAILED = "Failed"


@dataclass(frozen=True)
class ResourceSelector:
    """``--resource GROUP:KIND:NAME`` (``NAMESPACE/NAME`` allowed): a sync of part of an app.
    An empty group is the core group. Namespace empty: any namespace."""

    group: str
    kind: str
    name: str
    namespace: str = ""

    @classmethod
    def parse(cls, text: str) -> ResourceSelector:
        parts = text.split(":")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise ValueError(
                f"--resource {text!r}: expected GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME "
                "(an empty GROUP is the core group, e.g. ':ConfigMap:web-config')"
            )
        group, kind, name = parts
        namespace = ""
        if "/" in name:
            namespace, name = name.split("/", 1)
        return cls(group, kind, name, namespace)

    def matches(self, key: ResourceKey) -> bool:
        return (
            key.group == self.group
            and key.kind == self.kind
            and key.name == self.name
            and (not self.namespace or key.namespace == self.namespace)
        )

    def to_dict(self) -> dict[str, str]:
        out = {"group": self.group, "kind": self.kind, "name": self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResourceSelector:
        return cls(
            str(d.get("group") or ""),
            str(d.get("kind") or ""),
            str(d.get("name") or ""),
            str(d.get("namespace") or ""),
        )


@dataclass
class OperationRequest:
    """What a sync was asked to do. Stored in ``Application.operation`` by ``tether app
    sync`` (Argo CD's ``operation.sync``), and in ``status.operationState.operation`` once
    an engine runs it."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    trigger: str = "manual"
    """manual, auto, webhook, poll, refresh, self-heal, retry."""
    initiated_by: str = ""
    """Who asked: ``controller`` for automated syncs, else the CLI user (``user@host``)."""
    revision: str = ""
    """A branch, tag or commit for this sync only; "" means the app's targetRevision. An
    engine that takes the request pins the commit in ``OperationState.revision``."""
    prune: bool | None = None
    """None: as ``syncPolicy.automated.prune`` says (manual syncs pass False or True)."""
    resources: list[ResourceSelector] = field(default_factory=list)
    """Empty: the whole app. Otherwise only these objects are applied; hooks do not run
    and nothing is pruned that is not selected (as in Argo CD)."""
    allow_mass_prune: bool = False
    skip: list[ResourceKey] = field(default_factory=list)
    """Objects not to touch (self-heal stopped fighting over them)."""

    def to_dict(self) -> dict[str, Any]:
        sync: dict[str, Any] = {"revision": self.revision, "allowMassPrune": self.allow_mass_prune}
        if self.prune is not None:
            sync["prune"] = self.prune
        if self.resources:
            sync["resources"] = [r.to_dict() for r in self.resources]
        if self.skip:
            sync["skip"] = [k.to_dict() for k in self.skip]
        return {
            "id": self.id,
            "trigger": self.trigger,
            "initiatedBy": self.initiated_by,
            "sync": sync,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OperationRequest:
        sync = d.get("sync") or {}
        prune = sync.get("prune")
        return cls(
            id=str(d.get("id") or uuid.uuid4().hex[:12]),
            trigger=str(d.get("trigger") or "manual"),
            initiated_by=str(d.get("initiatedBy") or ""),
            revision=str(sync.get("revision") or ""),
            prune=None if prune is None else bool(prune),
            resources=[ResourceSelector.from_dict(r) for r in sync.get("resources") or []],
            allow_mass_prune=bool(sync.get("allowMassPrune")),
            skip=[_key(k) for k in sync.get("skip") or []],
        )


@dataclass
class TaskRecord:
    """One resource, hook instance or prune the operation acted on, as recorded in
    ``syncResult.resources``."""

    key: ResourceKey
    """For a hook made from ``generateName``: the name the server gave it."""
    sync_phase: str
    wave: int
    action: str
    """created, configured, pruned, unchanged, skipped, failed, kept, deleted (a hook removed
    by its delete policy)."""
    status: str = ""
    """Synced, SyncFailed, Pruned, PruneSkipped ("" while not acted on yet)."""
    message: str = ""
    hook_type: str = ""
    """The hook's phase name (PreSync, ..., or the Helm hook, e.g. pre-install); "" for a
    plain resource."""
    hook_phase: str = ""
    """Running, Succeeded, Failed: a hook instance's progress."""
    version: str = ""
    """The apiVersion's version part, so the object can be read again."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.key.to_dict(),
            "syncPhase": self.sync_phase,
            "wave": self.wave,
            "action": self.action,
            "message": self.message,
        }
        if self.status:
            out["status"] = self.status
        if self.hook_type:
            out["hookType"] = self.hook_type
            out["hookPhase"] = self.hook_phase
        if self.version:
            out["version"] = self.version
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskRecord:
        return cls(
            key=_key(d),
            sync_phase=str(d.get("syncPhase") or SYNC),
            wave=int(d.get("wave") or 0),
            action=str(d.get("action") or ""),
            status=str(d.get("status") or ""),
            message=str(d.get("message") or ""),
            hook_type=str(d.get("hookType") or ""),
            hook_phase=str(d.get("hookPhase") or ""),
            version=str(d.get("version") or ""),
        )


@dataclass
class OperationState:
    """``status.operationState``: an operation's progress, enough to resume it."""

    operation: OperationRequest
    phase: str = RUNNING
    message: str = ""
    revision: str = ""
    """The commit (or chart version) the operation deploys, fixed when it starts."""
    revisions: list[str] = field(default_factory=list)
    """With several sources: each one's revision, in spec order."""
    started_at: str = ""
    finished_at: str = ""
    generation: int = 0
    """The Application's generation when the operation started."""
    sync_phase: str = PRE_SYNC
    """The sync phase the operation stands at (PreSync, Sync, PostSync, SyncFail)."""
    wave: int = 0
    """The wave it stands at within that phase."""
    pruning: bool = False
    """True once every Sync wave is done and the prune step (after the last wave) began."""
    run_by: str = ""
    """The engine running it: a controller's identity, or ``cli`` for ``tether app sync``
    with no controller running."""
    first_install: bool = False
    """The app had never been deployed when this operation started (Helm's pre-install vs
    pre-upgrade hooks); fixed at the start so a resumed operation decides the same way."""
    failed_phase: str = ""
    """When SyncFail hooks run: the phase that failed (for the message)."""
    checked: bool = False
    """The checks made once before anything is applied (refusals, namespaces) passed; an
    operation resumed before that runs them again."""
    heartbeat_at: str = ""
    """When the engine running it last wrote its progress. A controller takes up an
    operation a CLI runs (``run_by: cli``) only once this is old: that CLI is gone."""
    resources: list[TaskRecord] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return self.phase in ENDED

    def held_by_live_cli(self, at: datetime) -> bool:
        """A CLI runs it and wrote its heartbeat less than ``CLI_GRACE`` seconds before
        ``at``: another engine must leave it alone."""
        if self.run_by != RUN_BY_CLI or not self.heartbeat_at:
            return False
        try:
            beat = datetime.strptime(self.heartbeat_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return False
        return (at - beat).total_seconds() < CLI_GRACE

    def record(self, rec: TaskRecord) -> None:
        """Adds a record, or replaces the one for the same object and phase."""
        for i, old in enumerate(self.resources):
            if old.key == rec.key and old.sync_phase == rec.sync_phase:
                self.resources[i] = rec
                return
        self.resources.append(rec)

    def records(self, sync_phase: str, wave: int | None = None) -> list[TaskRecord]:
        return [
            r
            for r in self.resources
            if r.sync_phase == sync_phase and (wave is None or r.wave == wave)
        ]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "operation": self.operation.to_dict(),
            "phase": self.phase,
            "message": self.message,
            "revision": self.revision,
            "trigger": self.operation.trigger,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "generation": self.generation,
            "syncPhase": self.sync_phase,
            "wave": self.wave,
            "pruning": self.pruning,
            "runBy": self.run_by,
            "firstInstall": self.first_install,
            "checked": self.checked,
            "heartbeatAt": self.heartbeat_at,
            "syncResult": {
                "resources": [r.to_dict() for r in self.resources if r.action != "unchanged"]
            },
        }
        if self.revisions:
            out["revisions"] = list(self.revisions)
        if self.failed_phase:
            out["failedPhase"] = self.failed_phase
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OperationState:
        result = d.get("syncResult") or {}
        return cls(
            operation=OperationRequest.from_dict(d.get("operation") or {}),
            phase=str(d.get("phase") or RUNNING),
            message=str(d.get("message") or ""),
            revision=str(d.get("revision") or ""),
            revisions=[str(r) for r in d.get("revisions") or []],
            started_at=str(d.get("startedAt") or ""),
            finished_at=str(d.get("finishedAt") or ""),
            generation=int(d.get("generation") or 0),
            sync_phase=str(d.get("syncPhase") or PRE_SYNC),
            wave=int(d.get("wave") or 0),
            pruning=bool(d.get("pruning")),
            run_by=str(d.get("runBy") or ""),
            first_install=bool(d.get("firstInstall")),
            failed_phase=str(d.get("failedPhase") or ""),
            checked=bool(d.get("checked")),
            heartbeat_at=str(d.get("heartbeatAt") or ""),
            resources=[TaskRecord.from_dict(r) for r in result.get("resources") or []],
        )


def _key(d: dict[str, Any]) -> ResourceKey:
    return ResourceKey(
        str(d.get("group") or ""),
        str(d.get("kind") or ""),
        str(d.get("namespace") or ""),
        str(d.get("name") or ""),
    )
