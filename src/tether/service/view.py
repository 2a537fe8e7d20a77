"""An Application's state as ``wait`` judges it: sync, health, the objects holding either back,
and whether an operation runs; read from the status a controller keeps, or from a comparison
made here when no controller runs. ``missing`` says, in words, what is still not so."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tether.model import Obj, ResourceDiffStatus, ResourceKey
from tether.service.results import WaitResult
from tether.sync.state import RUNNING, TERMINATING

if TYPE_CHECKING:
    from tether.compare import Comparison

HEALTHY = ("Healthy", "Suspended")
SHOWN = 5
"""Objects named in a message at most; the rest are counted."""


@dataclass
class AppView:
    sync_status: str
    health_status: str
    health_message: str = ""
    out_of_sync: list[str] = field(default_factory=list)
    """``Kind ns/name (OutOfSync)`` for each object that differs from Git."""
    unhealthy: list[str] = field(default_factory=list)
    """``Kind ns/name (Progressing: message)`` for each object not Healthy."""
    operation_phase: str = ""
    operation_message: str = ""
    operation_pending: bool = False
    """A request is recorded (``operation``) that no engine has taken up yet."""
    source: str = "status"

    @property
    def operation_running(self) -> bool:
        return self.operation_pending or self.operation_phase in (RUNNING, TERMINATING)

    def result(self) -> WaitResult:
        return WaitResult(
            self.sync_status,
            self.health_status,
            self.health_message,
            self.operation_phase,
            self.operation_message,
            self.source,
        )


def missing(view: AppView, *, health: bool, sync: bool) -> list[str]:
    """What keeps the wait going, one phrase each; empty when reached."""
    left: list[str] = []
    if view.operation_pending:
        left.append("a requested sync has not started yet")
    elif view.operation_running:
        left.append(
            f"an operation is {view.operation_phase}"
            + (f" ({view.operation_message})" if view.operation_message else "")
        )
    if sync and view.sync_status != "Synced":
        left.append(f"sync is {view.sync_status}" + _named(view.out_of_sync))
    if health and view.health_status not in HEALTHY:
        why = f" ({view.health_message})" if view.health_message else ""
        left.append(f"health is {view.health_status}{why}" + _named(view.unhealthy))
    return left


def _named(items: list[str]) -> str:
    if not items:
        return ""
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ": " + ", ".join(items[:SHOWN]) + more


def view_of_status(obj: Obj) -> AppView:
    st = obj.get("status") or {}
    health = st.get("health") or {}
    view = AppView(
        str((st.get("sync") or {}).get("status") or "Unknown"),
        str(health.get("status") or "Unknown"),
        str(health.get("message") or ""),
    )
    for row in st.get("resources") or []:
        key = ResourceKey(
            str(row.get("group") or ""),
            str(row.get("kind") or ""),
            str(row.get("namespace") or ""),
            str(row.get("name") or ""),
        )
        if row.get("status") and row["status"] != ResourceDiffStatus.SYNCED.value:
            view.out_of_sync.append(f"{key} ({row['status']})")
        h = row.get("health") or {}
        if h.get("status") and h["status"] not in HEALTHY:
            view.unhealthy.append(_unhealthy(key, str(h["status"]), str(h.get("message") or "")))
    _add_operation(view, obj)
    return view


def view_of_comparison(obj: Obj, cmp: Comparison) -> AppView:
    health = cmp.health
    view = AppView(
        cmp.sync_status.value, health.status.value, health.message, source="compared here"
    )
    if cmp.error is not None:
        view.health_message = view.health_message or str(cmp.error)
    for key in sorted(cmp.resources):
        rs = cmp.resources[key]
        if rs.diff.status != ResourceDiffStatus.SYNCED and key not in cmp.ignored_extraneous:
            view.out_of_sync.append(f"{key} ({rs.diff.status.value})")
        if rs.health is not None and rs.health.status.value not in HEALTHY:
            view.unhealthy.append(_unhealthy(key, rs.health.status.value, rs.health.message))
    _add_operation(view, obj)
    return view


def _unhealthy(key: ResourceKey, status: str, message: str) -> str:
    return f"{key} ({status}" + (f": {message})" if message else ")")


def _add_operation(view: AppView, obj: Obj) -> None:
    op = (obj.get("status") or {}).get("operationState") or {}
    view.operation_phase = str(op.get("phase") or "")
    view.operation_message = str(op.get("message") or "")
    view.operation_pending = bool(obj.get("operation"))
