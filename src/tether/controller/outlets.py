"""Where the controller's outcomes go: Events on the Application, the audit trail,
notifications, and log lines that name the app."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from tether.api.application import Application
from tether.controller.events import emit_event
from tether.kube import KubeClient

log = logging.getLogger("tether.controller")


class AuditSink(Protocol):
    async def record(self, kind: str, app: Application, **fields: Any) -> None: ...


class NotifySink(Protocol):
    def send(self, event: str, app: Application, message: str, **fields: Any) -> None: ...


@dataclass
class Outlets:
    kube: KubeClient
    identity: str
    audit: AuditSink | None = None
    notify: NotifySink | None = None

    async def event(self, app: Application, reason: str, message: str, *, warning: bool) -> None:
        await emit_event(
            self.kube, app.obj, reason, message, warning=warning, instance=self.identity
        )


class AppLog:
    """Logs with the app and revision on every line."""

    def __init__(self, app: Application) -> None:
        self.extra = {
            "app": f"{app.namespace}/{app.name}",
            "revision": str((app.status.get("sync") or {}).get("revision", ""))[:10],
        }

    def info(self, msg: str, *args: object) -> None:
        log.info(msg, *args, extra=self.extra)

    def warning(self, msg: str, *args: object) -> None:
        log.warning(msg, *args, extra=self.extra)
