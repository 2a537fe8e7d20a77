"""What the ``/api/v1`` routes need from the process serving them: the engine, the audit
trail, the namespaces watched and who this server is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from tether.audit import AuditStore
from tether.controller.audit_sink import StoreAudit
from tether.engine import Engine
from tether.kube import KubeClient
from tether.server.api.doccache import DocumentCache

KEEPALIVE = 15.0
"""Seconds between keepalive comments on an event stream."""


@dataclass
class ApiContext:
    """The engine and stores the routes read and act through.

    ``namespaces`` are the namespaces the controller watches (``[""]``: every one): the API
    serves the Applications there and nowhere else. ``audit`` writes the records of what a
    caller asked (refresh, terminate); ``store`` answers history and drift (None: no trail,
    history falls back to the status).
    """

    engine: Engine
    namespaces: Callable[[], list[str]]
    identity: str
    version: str
    audit: StoreAudit | None = None
    store: AuditStore | None = None
    keepalive: float = KEEPALIVE
    documents: DocumentCache = field(default_factory=DocumentCache)
    """The Applications' documents as served, made once per change."""

    @property
    def kube(self) -> KubeClient:
        return self.engine.kube

    def watched(self) -> list[str]:
        """The namespaces watched, ``[""]`` when all are."""
        names = self.namespaces()
        return [""] if not names or "" in names else sorted(set(names))

    def serves(self, namespace: str) -> bool:
        watched = self.watched()
        return watched == [""] or namespace in watched


CONTEXT: web.AppKey[ApiContext] = web.AppKey("tether.api", ApiContext)
"""Where the routes find their ``ApiContext``."""


def context_of(request: web.Request) -> ApiContext:
    return request.app[CONTEXT]
