"""Kubernetes Events on Applications, and who changed a live object (from managedFields)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from tether.api.application import API_VERSION
from tether.errors import KubeError
from tether.kube import FIELD_MANAGER, KubeClient
from tether.model import Obj
from tether.source import redact

log = logging.getLogger(__name__)
COMPONENT = "tether-controller"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def emit_event(
    kube: KubeClient,
    app: Obj,
    reason: str,
    message: str,
    *,
    warning: bool = False,
    instance: str = "",
) -> None:
    """Records an Event on the Application; failures are logged, never raised."""
    meta = app.get("metadata") or {}
    t = _now()
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{meta.get('name', 'app')}.",
            "namespace": meta.get("namespace", ""),
        },
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": "Application",
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "uid": meta.get("uid", ""),
        },
        "reason": reason,
        "message": redact(message)[:1024],
        "type": "Warning" if warning else "Normal",
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance or COMPONENT,
        "firstTimestamp": t,
        "lastTimestamp": t,
        "count": 1,
    }
    try:
        await kube.create(event)
    except KubeError as e:
        log.warning("could not record event %s on %s: %s", reason, meta.get("name"), e)


@dataclass(frozen=True)
class Change:
    """The last writer of a live object other than tether."""

    manager: str
    operation: str
    time: str

    def __str__(self) -> str:
        return f"{self.manager} ({self.operation} at {self.time})" if self.time else self.manager


def last_foreign_change(live: Obj) -> Change | None:
    """The most recent non-tether, non-status entry of ``metadata.managedFields``."""
    best: Change | None = None
    for mf in (live.get("metadata") or {}).get("managedFields") or []:
        manager = str(mf.get("manager", ""))
        if manager == FIELD_MANAGER or mf.get("subresource") == "status":
            continue
        if (mf.get("fieldsV1") or {}).keys() == {"f:status"}:
            continue
        change = Change(manager, str(mf.get("operation", "")), str(mf.get("time", "")))
        if best is None or change.time > best.time:
            best = change
    return best
