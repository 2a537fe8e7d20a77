"""The controller's HTTP server: push webhooks, Prometheus metrics, health probes, audit queries.

``POST /api/webhook`` authenticates its caller by the provider's signature; everything under
``/api/v1`` by a Kubernetes bearer token or a session cookie (``tether.server.auth``), and
``GET /api/v1/audit`` answers only with the records of namespaces where the caller may list
Applications (see ``tether.server.access``). ``/metrics`` needs a token allowed to ``get``
the non-resource URL ``/metrics`` unless the operator made it public; ``create_metrics_app``
serves the metrics, open, on a listener of their own when they should not share the
webhook's address.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Protocol

from aiohttp import ClientPayloadError, web
from prometheus_client import CONTENT_TYPE_LATEST

from tether import metrics
from tether.audit.model import check_app
from tether.errors import KubeError, TetherError
from tether.lograte import RateLimitedLog
from tether.server.access import AccessReview, Caller
from tether.server.auth.middleware import (
    ACCESS,
    auth_middleware,
    authenticate_token,
    bearer_token,
    caller_of,
    install_auth,
    refuse,
)
from tether.server.auth.routes import add_session_routes
from tether.server.auth.settings import AuthSettings
from tether.server.errors import ApiError, error_middleware
from tether.server.webhooks import (
    PushEvent,
    WebhookBadRequest,
    WebhookSecrets,
    WebhookUnauthorized,
    detect_provider,
    parse_webhook,
)
from tether.source.credentials import redact

log = logging.getLogger(__name__)

OnPush = Callable[[PushEvent], Awaitable[int]]
GetSecrets = Callable[[], Awaitable[WebhookSecrets]]

_READ_CHUNK = 64 * 1024
AddRoutes = Callable[[web.Application], None]


class AuditReader(Protocol):
    """Where ``GET /api/v1/audit`` reads from."""

    async def query(
        self, params: dict[str, str], namespaces: Collection[str] | None
    ) -> list[dict[str, Any]]:
        """Records matching the query string, only of ``namespaces`` (None: of every one).

        A ValueError is answered 400 with its message, any other TetherError 503.
        """
        ...

    async def namespaces(self) -> list[str]:
        """Every namespace the trail holds records of."""
        ...


class _TooLarge(Exception):
    pass


class _ClientGone(Exception):
    def __init__(self, received: int) -> None:
        self.received = received


def create_app(
    *,
    on_push: OnPush,
    get_secrets: GetSecrets,
    is_ready: Callable[[], bool],
    audit: AuditReader | None = None,
    access: AccessReview | None = None,
    serve_metrics: bool = True,
    max_body: int = 1_048_576,
    liveness: Callable[[], str] | None = None,
    extensions: Sequence[AddRoutes] = (),
    auth: AuthSettings = AuthSettings(),  # noqa: B008 - frozen, never mutated
) -> web.Application:
    """The aiohttp application; the caller owns what each callback does.

    ``on_push`` gets every verified push and returns how many Applications it refreshed.
    ``get_secrets`` is awaited per delivery, so a rotated Secret applies without a restart.
    ``audit`` serves ``GET /api/v1/audit`` to callers ``access`` lets in; without both the
    route answers 404. ``serve_metrics=False`` leaves ``/metrics`` to ``create_metrics_app``.
    ``liveness`` returns why the process is stuck ("" when it is not): ``/healthz`` then
    answers 503 with that text, so the kubelet restarts it. ``extensions`` add their routes
    (the API under ``/api/v1``, the UI): every ``/api/v1`` route is answered only to a caller
    ``access`` authenticates (see ``tether.server.auth``), as is ``/metrics`` unless
    ``auth.metrics_public``.
    """

    # Anyone who reaches the port can drop connections: one line per client address a minute.
    dropped = RateLimitedLog(log, interval=60.0)

    async def webhook(request: web.Request) -> web.Response:
        provider = detect_provider(request.headers)

        def answer(outcome: str, status: int, body: dict[str, Any]) -> web.Response:
            metrics.WEBHOOKS.labels(provider=provider, outcome=outcome).inc()
            return web.json_response(body, status=status)

        try:
            body = await _read_capped(request, max_body)
        except _ClientGone as e:
            # Nobody is left to answer, and there is nothing to debug: one line, no traceback.
            dropped.log(
                logging.WARNING,
                f"dropped:{request.remote}",
                "%s webhook from %s: the client closed the connection after %d of %s bytes",
                provider,
                request.remote,
                e.received,
                request.content_length if request.content_length is not None else "?",
            )
            return answer("dropped", 400, {"error": "the request body ended early"})
        except _TooLarge:
            log.warning(
                "refused %s webhook from %s: body over %d bytes", provider, request.remote, max_body
            )
            resp = answer("too-large", 413, {"error": f"body larger than {max_body} bytes"})
            # The connection still carries the unread body: close it after answering. aiohttp
            # drains (and discards) the rest for a short while so the client can read the 413.
            resp.force_close()
            return resp
        try:
            event = parse_webhook(request.headers, body, await get_secrets())
        except WebhookUnauthorized as e:
            log.warning("refused %s webhook from %s: %s", e.provider, request.remote, e)
            return answer("unauthorized", 401, {"error": "invalid signature"})
        except WebhookBadRequest as e:
            log.warning("bad %s webhook from %s: %s", e.provider, request.remote, e)
            return answer("bad", 400, {"error": e.message})
        if event is None:
            return answer("ignored", 200, {"status": "ignored"})
        apps = await on_push(event)
        log.info(
            "%s push to %s %s (%s) by %s: %d application(s) refreshed",
            event.provider,
            redact(event.repo_urls[0]),
            event.ref,
            event.after[:12] or "deleted",
            event.pusher or "?",
            apps,
        )
        return answer("accepted", 200, {"status": "accepted", "apps": apps})

    async def healthz(_: web.Request) -> web.Response:
        stuck = liveness() if liveness is not None else ""
        if stuck:
            return web.Response(text=f"unhealthy: {stuck}", status=503)
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        if is_ready():
            return web.Response(text="ready")
        return web.Response(text="not ready", status=503)

    async def audit_(request: web.Request) -> web.Response:
        if audit is None or access is None:
            raise ApiError(404, "audit log not enabled")
        params = dict(request.query)
        caller = caller_of(request)
        try:
            namespaces = await _readable_namespaces(caller, params.get("app"), audit, access)
            records = await audit.query(params, namespaces)
        except ValueError as e:
            raise ApiError(400, str(e)) from e
        except TetherError as e:
            log.warning("audit query failed: %s", e)
            raise ApiError(503, str(e), "retry") from e
        return web.json_response(records)

    async def metrics_(request: web.Request) -> web.Response:
        if not auth.metrics_public:
            await _may_read_metrics(request)
        return await _metrics(request)

    app = web.Application(middlewares=[error_middleware, auth_middleware])
    if access is not None:
        install_auth(app, access, auth)
        add_session_routes(app)
    app.router.add_post("/api/webhook", webhook)
    if serve_metrics:
        app.router.add_get("/metrics", metrics_)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/v1/audit", audit_)
    for add_routes in extensions:
        add_routes(app)
    return app


def create_metrics_app() -> web.Application:
    """Only ``GET /metrics``: for a listener of its own (``--metrics-addr``)."""
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    return app


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server TLS context from a PEM certificate (chain) and its key; a ``TetherError``
    naming the files when they cannot be read or do not match."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as e:
        raise TetherError(
            f"cannot load the TLS certificate {cert_file} with key {key_file}: {e}",
            hint="give a PEM certificate (chain) and its unencrypted PEM private key",
        ) from e
    return context


async def _metrics(_: web.Request) -> web.Response:
    return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _may_read_metrics(request: web.Request) -> None:
    """Refuses (401, 403) a scrape whose bearer token may not ``get`` ``/metrics``."""
    hint = (
        "scrape with a bearer token whose identity may get the non-resource URL /metrics "
        "(e.g. Prometheus's ServiceAccount token; see docs/auth.md), or start the controller "
        "with --metrics-public or --metrics-addr"
    )
    if ACCESS not in request.app:
        raise ApiError(503, "/metrics needs a token, and this server cannot check tokens", hint)
    token = bearer_token(request)
    if not token:
        raise refuse(401, "no-credentials", "a bearer token is required for /metrics", hint)
    caller = await authenticate_token(request, token)
    try:
        allowed = await request.app[ACCESS].may_use_path(caller, "get", "/metrics")
    except KubeError as e:
        raise ApiError(503, f"cannot check access with the Kubernetes API: {e}", "retry") from e
    if not allowed:
        raise ApiError(403, f"{caller.username} may not get /metrics", hint)


async def _readable_namespaces(
    caller: Caller, app: str | None, audit: AuditReader, access: AccessReview
) -> Collection[str] | None:
    """The namespaces whose records ``caller`` may read, None meaning every namespace.

    With ``app`` (``<namespace>/<name>``), its namespace or a 403; without, the namespaces
    the trail holds that the caller may list Applications in (possibly none)."""

    async def may_list(ns: str) -> bool:
        try:
            return await access.may_list_applications(caller, ns)
        except KubeError as e:
            raise ApiError(503, f"cannot check access with the Kubernetes API: {e}", "retry") from e

    if app:
        check_app(app)  # a malformed name is a 400, before any review
        ns = app.partition("/")[0]
        if not await may_list(ns):
            raise ApiError(
                403,
                f"{caller.username} may not list applications.tether.dev in namespace {ns}",
                "the audit trail of an app is readable by whoever may list Applications in its "
                "namespace",
            )
        return [ns]
    if await may_list(""):
        return None
    return [ns for ns in await audit.namespaces() if await may_list(ns)]


async def _read_capped(request: web.Request, limit: int) -> bytes:
    """The raw body, or _TooLarge as soon as it passes ``limit`` bytes (read no further)."""
    if request.content_length is not None and request.content_length > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    # Content-Length may be absent (chunked) or lie, so count what actually arrives.
    try:
        async for chunk in request.content.iter_chunked(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
    except (ConnectionResetError, ClientPayloadError):
        raise _ClientGone(size) from None
    return b"".join(chunks)


async def serve(
    app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> web.AppRunner:
    """Start ``app`` on ``host:port`` (0 picks a free port), HTTPS with ``ssl_context``;
    stop it with ``runner.cleanup()``."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
    except BaseException:
        await runner.cleanup()
        raise
    scheme = "HTTPS" if ssl_context is not None else "HTTP"
    log.info("%s server listening on %s:%d", scheme, host, bound_port(runner))
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port the server listens on: the one the OS chose when ``serve`` was given 0."""
    for address in runner.addresses:
        # (host, port) for IPv4, (host, port, flowinfo, scope_id) for IPv6.
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the server is not listening on a TCP port")
