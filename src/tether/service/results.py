"""What the application service is asked and what it answers: a sync request, a sync's
outcome (and who ran it), the state a wait reached, and the errors a caller turns into exit
codes (``OperationInProgress``, ``WaitTimedOut``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tether.errors import TetherError
from tether.sync.state import (
    RUN_BY_CLI,
    SUCCEEDED,
    OperationRequest,
    OperationState,
    ResourceSelector,
    TaskRecord,
)


class OperationInProgress(TetherError):
    """A sync (or a request for one) is already under way on the Application."""

    reason = "OperationInProgress"


class WaitTimedOut(TetherError):
    """What was waited for was not reached in time; the message says what is still not so."""

    reason = "WaitTimedOut"


@dataclass
class SyncRequest:
    """``tether app sync NAME`` and its flags."""

    name: str
    namespace: str
    revision: str = ""
    """"" means the app's targetRevision."""
    prune: bool = False
    allow_mass_prune: bool = False
    resources: list[ResourceSelector] = field(default_factory=list)
    ignore_dependencies: bool = False
    force_window: bool = False


@dataclass
class SyncRequested:
    """A sync request recorded on the Application for ``controller`` to run (the HTTP API
    answers with it at once; ``request.id`` finds the operation in ``status.operationState``)."""

    request: OperationRequest
    controller: str
    notices: list[str] = field(default_factory=list)


@dataclass
class SyncOutcome:
    """How a sync ended, whoever ran it."""

    phase: str
    """Succeeded, Failed, Error (or Running: a dry run never is)."""
    message: str
    revision: str
    run_by: str = RUN_BY_CLI
    """A controller's identity, or ``cli`` when this process ran the operation."""
    by_controller: bool = False
    runner: str = ""
    """One line saying who ran it, for people."""
    records: list[TaskRecord] = field(default_factory=list)
    """Per resource and hook instance: sync phase, wave, action, hook phase (``unchanged``
    ones too when this process ran the sync; a controller records only what it changed)."""
    dry_run: bool = False
    operation_id: str = ""
    sync_status: str = "Unknown"
    health_status: str = "Unknown"
    health_message: str = ""
    waited_for_health: bool = False
    notices: list[str] = field(default_factory=list)
    """What the caller should know although it did not stop the sync (``--force-window``)."""

    @property
    def ok(self) -> bool:
        return self.phase == SUCCEEDED

    @property
    def healthy(self) -> bool:
        return self.health_status in ("Healthy", "Suspended")

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "message": self.message,
            "revision": self.revision,
            "dryRun": self.dry_run,
            "runBy": self.run_by,
            "byController": self.by_controller,
            "operationId": self.operation_id,
            "resources": [_record_dict(r) for r in self.records],
            "sync": self.sync_status,
            "health": self.health_status,
        }


def _record_dict(r: TaskRecord) -> dict[str, Any]:
    """A record as ``-o json`` prints it: the key, action and message as before, and the
    sync phase, wave and hook phase."""
    out = r.to_dict()
    out.setdefault("status", r.status)
    return out


@dataclass
class WaitResult:
    """What ``wait`` reached: the app's sync and health, and its last operation."""

    sync_status: str
    health_status: str
    health_message: str = ""
    operation_phase: str = ""
    """The last operation's phase ("" when it never had one)."""
    operation_message: str = ""
    source: str = ""
    """Where sync and health were read: ``status`` (a controller keeps it current) or
    ``compared here`` (no controller running)."""


def controller_line(identity: str) -> str:
    return f"run by controller {identity}"


def outcome_of_state(state: OperationState, *, by_controller: bool) -> SyncOutcome:
    """The outcome an operation state records (a controller's, or this process's)."""
    run_by = state.run_by or ("controller" if by_controller else RUN_BY_CLI)
    return SyncOutcome(
        state.phase,
        state.message,
        state.revision,
        run_by=run_by,
        by_controller=by_controller,
        runner=controller_line(run_by) if by_controller else "",
        records=list(state.resources),
        operation_id=state.operation.id,
    )
