"""The controller's HTTP server: push webhooks, Prometheus metrics, health probes, audit queries.

``POST /api/webhook`` authenticates its caller by the provider's signature; ``GET
/api/v1/audit`` by a Kubernetes bearer token, answering only with the records of namespaces
where the caller may list Applications (see ``tether.server.access``). Probes and metrics
hold nothing secret but say what the cluster runs: ``create_metrics_app`` serves the metrics
on a listener of their own when they should not share the webhook's address.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Protocol

from aiohttp import ClientPayloadError, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tether import metrics
from tether.audit.model import check_app
from tether.errors import KubeError, TetherError
from tether.lograte import RateLimitedLog
from tether.server.access import AccessReview, Caller
from tether.server.auth.middleware import ACCESS, FORWARDED_AUTH, auth_middleware
from tether.server.errors import error_middleware
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
) -> web.Application:
    """The aiohttp application; the caller owns what each callback does.

    ``on_push`` gets every verified push and returns how many Applications it refreshed.
    ``get_secrets`` is awaited per delivery, so a rotated Secret applies without a restart.
    ``audit`` serves ``GET /api/v1/audit`` to callers ``access`` lets in; without both the
    route answers 404. ``serve_metrics=False`` leaves ``/metrics`` to ``create_metrics_app``.
    ``liveness`` returns why the process is stuck ("" when it is not): ``/healthz`` then
    answers 503 with that text, so the kubelet restarts it. ``extensions`` add their routes
    (the API under ``/api/v1``, the UI): every ``/api/v1`` route is answered only to a caller
    ``access`` authenticates (see ``tether.server.auth``).
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
            return web.json_response({"error": "audit log not enabled"}, status=404)
        params = dict(request.query)
        try:
            caller = await _authenticate(request, access)
            namespaces = await _readable_namespaces(caller, params.get("app"), audit, access)
            records = await audit.query(params, namespaces)
        except _Refused as e:
            return e.response()
        except ValueError as e:
            return web.json_response({"error": str(e)}, status=400)
        except TetherError as e:
            log.warning("audit query failed: %s", e)
            return web.json_response({"error": str(e)}, status=503)
        return web.json_response(records)

    app = web.Application(middlewares=[error_middleware, auth_middleware])
    if access is not None:
        app[ACCESS] = access
    app.router.add_post("/api/webhook", webhook)
    if serve_metrics:
        app.router.add_get("/metrics", _metrics)
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


async def _metrics(_: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


class _Refused(Exception):
    def __init__(self, status: int, error: str, hint: str) -> None:
        self.status, self.error, self.hint = status, error, hint

    def response(self) -> web.Response:
        resp = web.json_response({"error": self.error, "hint": self.hint}, status=self.status)
        if self.status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="tether"'
        return resp


async def _authenticate(request: web.Request, access: AccessReview) -> Caller:
    header = request.headers.get("Authorization") or request.headers.get(FORWARDED_AUTH) or ""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    hint = (
        "send 'Authorization: Bearer <token>' with a Kubernetes token (tether audit sends "
        "the one in your kubeconfig)"
    )
    if scheme.lower() != "bearer" or not token:
        raise _Refused(401, "a bearer token is required", hint)
    try:
        caller = await access.authenticate(token)
    except KubeError as e:
        raise _Refused(503, f"cannot check the token with the Kubernetes API: {e}", "retry") from e
    if caller is None:
        raise _Refused(401, "the token is not valid", hint)
    return caller


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
            raise _Refused(503, f"cannot check access with the Kubernetes API: {e}", "retry") from e

    if app:
        check_app(app)  # a malformed name is a 400, before any review
        ns = app.partition("/")[0]
        if not await may_list(ns):
            raise _Refused(
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


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start ``app`` on ``host:port`` (0 picks a free port); stop it with ``runner.cleanup()``."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info("HTTP server listening on %s:%d", host, bound_port(runner))
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port the server listens on: the one the OS chose when ``serve`` was given 0."""
    for address in runner.addresses:
        # (host, port) for IPv4, (host, port, flowinfo, scope_id) for IPv6.
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the server is not listening on a TCP port")
