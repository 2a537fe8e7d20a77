"""Everything `tether controller` runs, wired together: engine, controller, HTTP server,
audit store, notifications, leader election and logging."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from tether import __version__ as tether_version
from tether import metrics
from tether.audit import AuditStore, open_store
from tether.audit.api import StoreReader
from tether.controller.audit_sink import StoreAudit, run_retention
from tether.controller.controller import Controller, ControllerOptions
from tether.controller.leader import LeaderElector
from tether.controller.presence import Presence
from tether.controller.render_metrics import MeteredRenderCache
from tether.controller.render_settings import RenderSettings
from tether.engine import Engine
from tether.errors import KubeError, TetherError
from tether.kube import KubeClient, LiveCache
from tether.kube.secrets import decode_secret_data
from tether.notify import Notifier, load_sinks
from tether.project.watch import watch_projects
from tether.server import (
    KubeAccessReview,
    PushEvent,
    WebhookSecrets,
    bound_port,
    create_app,
    create_metrics_app,
    serve,
)
from tether.server.api import ApiContext, api_routes
from tether.server.auth.settings import AuthSettings
from tether.server.http import tls_context
from tether.server.ui import add_ui_routes
from tether.source import GitCache

log = logging.getLogger("tether.controller")
WEBHOOK_SECRET = "tether-webhook"


@dataclass
class RuntimeOptions:
    kubeconfig: str | None = None
    context: str | None = None
    namespaces: list[str] = field(default_factory=lambda: ["tether-system"])
    http_host: str = "0.0.0.0"
    http_port: int = 8080
    metrics_host: str = "0.0.0.0"
    metrics_port: int | None = None
    """When set, /metrics is served on metrics_host:metrics_port only (not on http_port)."""
    workers: int = 32
    audit_db: Path = Path.home() / ".local" / "share" / "tether" / "audit.db"
    audit_url: str = ""
    """A ``postgresql://`` URL: the shared audit store (then ``audit_db`` is not used)."""
    audit_retention: timedelta | None = None
    """Records older than this are removed by the leader (None: kept for ever)."""
    retention_interval: float = 3600.0
    cache_dir: Path = Path.home() / ".cache" / "tether" / "git"
    leader_elect: bool = False
    identity: str = ""
    default_refresh_interval: float = 180.0
    fight_limit: int = 5
    fight_window: float = 600.0
    lease_duration: float = 15.0
    retry_period: float = 2.0
    git_timeout: float = 60.0
    """Seconds one git command (ls-remote, fetch) may take before it is killed."""
    stuck_after: float = 600.0
    """/healthz fails when work waits this long with no worker progress (see Controller)."""
    pod_namespace: str = ""
    """$POD_NAMESPACE: the home namespace when all namespaces are watched."""
    render: RenderSettings = field(default_factory=RenderSettings)
    """Render tool limits, renders at once, remote sources, render cache size."""
    auth: AuthSettings = field(default_factory=AuthSettings)
    """Sessions, failed-login limits, cookies, whether /metrics on http_port is open."""
    tls_cert_file: str = ""
    """With ``tls_key_file``: serve HTTPS on http_port (session cookies are then Secure)."""
    tls_key_file: str = ""


class Runtime:
    """One controller process. ``async with Runtime(opts) as rt`` starts it."""

    def __init__(self, opts: RuntimeOptions) -> None:
        self.opts = opts
        self.identity = opts.identity or f"{socket.gethostname()}-{os.getpid()}"
        self.kube: KubeClient | None = None
        self.controller: Controller | None = None
        self.store: AuditStore | None = None
        self._retention: asyncio.Task[None] | None = None
        self.notifier: Notifier | None = None
        self.runner: web.AppRunner | None = None
        self.metrics_runner: web.AppRunner | None = None
        self.audit: StoreAudit | None = None
        self.elector: LeaderElector | None = None
        self.presence: Presence | None = None
        self._presence_task: asyncio.Task[None] | None = None
        self._secrets: tuple[float, WebhookSecrets] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.started = asyncio.Event()
        self._stopping = False

    @property
    def home_namespace(self) -> str:
        """Where the controller's own Secrets, ConfigMap and Lease live: the first watched
        namespace; when it watches all, its Pod's namespace, else tether-system."""
        o = self.opts
        if o.namespaces and o.namespaces[0]:
            return o.namespaces[0]
        return o.pod_namespace or "tether-system"

    @property
    def port(self) -> int:
        assert self.runner is not None
        return bound_port(self.runner)

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        o = self.opts
        self.kube = kube = await KubeClient.connect(o.kubeconfig, o.context)
        metrics.KUBE_REQUESTS.source = lambda: list(kube.requests.items())
        # Every replica opens the store: all serve reads; only the leader writes and expires.
        self.store = await open_store(o.audit_url or o.audit_db)
        log.info("audit store: %s", self.store.location)
        self.audit = StoreAudit(self.store)
        home_ns = self.home_namespace
        try:
            sinks = await load_sinks(kube, home_ns)
        except TetherError as e:
            log.error("notifications disabled: %s", e)
            sinks = []
        self.notifier = Notifier(sinks)
        await self.notifier.start()
        # The poller refreshes refs (and a failure, cached as long, is reported once).
        git = GitCache(o.cache_dir, o.git_timeout, refs_ttl=10 * 365 * 86400.0)
        engine = Engine(
            kube,
            git,
            cache=LiveCache(kube, label_selector="tether.dev/app"),
            credentials_ttl=5.0,
            render_cache_size=o.render.cache_size,
            runner=o.render.runner(),
            render_cache=MeteredRenderCache(o.render.cache_size),
            allow_remote=o.render.allow_remote,
        )
        self.controller = Controller(
            kube,
            engine,
            ControllerOptions(
                namespaces=o.namespaces,
                workers=o.workers,
                default_refresh_interval=o.default_refresh_interval,
                fight_limit=o.fight_limit,
                fight_window=o.fight_window,
                identity=self.identity,
                stuck_after=o.stuck_after,
            ),
            audit=self.audit,
            notify=self.notifier,
        )
        separate_metrics = o.metrics_port is not None
        app = create_app(
            on_push=self._on_push,
            get_secrets=self._webhook_secrets,
            is_ready=self._ready,
            audit=StoreReader(self.store),
            access=KubeAccessReview(kube),
            serve_metrics=not separate_metrics,
            liveness=self._liveness,
            extensions=[api_routes(self._api_context(engine)), add_ui_routes],
            auth=o.auth,
        )
        tls = tls_context(o.tls_cert_file, o.tls_key_file) if o.tls_cert_file else None
        self.runner = await serve(app, o.http_host, o.http_port, ssl_context=tls)
        if o.metrics_port is not None:
            self.metrics_runner = await serve(create_metrics_app(), o.metrics_host, o.metrics_port)
            log.info(
                "serving HTTP on %s:%d (webhooks, health, audit), metrics on %s:%d",
                o.http_host,
                self.port,
                o.metrics_host,
                bound_port(self.metrics_runner),
            )
        else:
            log.info(
                "serving HTTP on %s:%d (webhooks, metrics, health, audit)", o.http_host, self.port
            )
        if o.leader_elect:
            self.elector = LeaderElector(
                kube,
                namespace=home_ns,
                identity=self.identity,
                lease_duration=o.lease_duration,
                retry_period=o.retry_period,
            )
            self._tasks.append(
                asyncio.create_task(
                    self.elector.run(self._lead, self._unlead), name="leader election"
                )
            )
        else:
            await self._lead()
        self.started.set()

    async def _lead(self) -> None:
        assert self.controller is not None
        log.info("%s is now the active controller", self.identity)
        metrics.LEADER.set(1)
        await self.controller.start()
        # A Project's change reconciles the apps naming it at once (tether.project.watch).
        self._tasks.append(asyncio.create_task(watch_projects(self.controller), name="projects"))
        if self.opts.audit_retention is not None and self.store is not None:
            self._retention = asyncio.create_task(
                run_retention(self.store, self.opts.audit_retention, self.opts.retention_interval),
                name="audit retention",
            )
        # Announced once it works: ``tether app sync`` then hands its requests over.
        self.presence = Presence(self.kube_client, self.identity, self._presence_namespaces)
        self._presence_task = asyncio.create_task(self.presence.run(), name="presence")

    def _api_context(self, engine: Engine) -> ApiContext:
        """What the HTTP API serves from: this process's engine and audit trail."""
        return ApiContext(
            engine=engine,
            namespaces=lambda: list(self.opts.namespaces),
            identity=self.identity,
            version=tether_version,
            audit=self.audit,
            store=self.store,
        )

    @property
    def kube_client(self) -> KubeClient:
        assert self.kube is not None
        return self.kube

    def _presence_namespaces(self) -> list[str]:
        """The namespaces watched; when all are, the home one and those holding apps."""
        watched = [ns for ns in self.opts.namespaces if ns]
        if watched and len(watched) == len(self.opts.namespaces):
            return watched
        apps = self.controller.apps if self.controller is not None else {}
        return sorted({self.home_namespace, *(ns for ns, _ in apps)})

    async def _unlead(self) -> None:
        if self._stopping:
            return  # a graceful stop releases the lease; nothing else to do
        # Lost the lease: stop working at once, and exit so the Pod restarts cleanly
        # rather than carry on next to the new leader.
        log.error("%s lost leadership; stopping", self.identity)
        if self.controller is not None:
            await self.controller.stop()
        os._exit(1)

    def _ready(self) -> bool:
        # Only the active controller is ready: the Service then sends webhooks to it, never
        # to a standby that would drop them. /healthz keeps standbys alive.
        if self.elector is not None and not self.elector.is_leader:
            return False
        # Syncing without a trail would leave changes nobody can account for later.
        if self.audit is not None and not self.audit.writable():
            return False
        return self.controller is not None and self.controller.ready.is_set()

    def _liveness(self) -> str:
        return self.controller.liveness_problem() if self.controller is not None else ""

    async def _on_push(self, event: PushEvent) -> int:
        if self.controller is None or not self.controller.ready.is_set():
            return 0  # a standby: the leader gets the same delivery through the Service
        n = self.controller.refresh_matching(event)
        log.info(
            "webhook from %s: push to %s (%s) refreshes %d app(s)",
            event.provider,
            event.ref,
            event.after[:10],
            n,
        )
        return n

    async def _webhook_secrets(self) -> WebhookSecrets:
        if self._secrets is not None and time.monotonic() - self._secrets[0] < 5:
            return self._secrets[1]
        assert self.kube is not None
        ns = self.home_namespace
        data: dict[str, str] = {}
        try:
            secret = await self.kube.get("v1", "Secret", WEBHOOK_SECRET, ns)
        except KubeError as e:
            log.warning("cannot read webhook secret %s/%s: %s", ns, WEBHOOK_SECRET, e)
            secret = None
        if secret is not None:
            data = decode_secret_data(secret)
        secrets = WebhookSecrets.from_secret_data(data)
        self._secrets = (time.monotonic(), secrets)
        return secrets

    async def stop(self) -> None:
        self._stopping = True
        if self._presence_task is not None:
            # First: from now on the CLI runs syncs itself rather than hand them over.
            self._presence_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._presence_task
            self._presence_task = None
        if self._retention is not None:
            self._tasks.append(self._retention)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self.controller is not None:
            await self.controller.stop()
        if self.runner is not None:
            await self.runner.cleanup()
        if self.metrics_runner is not None:
            await self.metrics_runner.cleanup()
        if self.notifier is not None:
            await self.notifier.stop(timeout=5)
        if self.audit is not None:
            await self.audit.stop()
        if self.store is not None:
            await self.store.close()
        if self.kube is not None:
            await self.kube.close()


@contextlib.asynccontextmanager
async def running(opts: RuntimeOptions) -> AsyncIterator[Runtime]:
    rt = Runtime(opts)
    try:
        # A start that fails half way (a busy port) still closes what it opened.
        await rt.start()
        yield rt
    finally:
        await rt.stop()


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the app and revision when the line is about one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for k in ("app", "revision"):
            v = getattr(record, k, None)
            if v:
                out[k] = v
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        app = getattr(record, "app", None)
        rev = getattr(record, "revision", None)
        return base + (f" app={app}" if app else "") + (f" revision={rev}" if rev else "")


def setup_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


async def run_forever(opts: RuntimeOptions) -> None:
    """Runs until SIGTERM or SIGINT, then stops gracefully: the lease is released (a standby
    takes over at once) and queued notifications get a chance to go out."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running(opts):
        await stop.wait()
        log.info("stopping")
