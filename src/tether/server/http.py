"""The controller's HTTP server: push webhooks, Prometheus metrics, health probes, audit queries.

Only ``POST /api/webhook`` authenticates its caller (by the provider's signature); the other
routes expose nothing secret and are meant for the cluster network (probes, scrapers).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tether import metrics
from tether.server.webhooks import (
    PushEvent,
    WebhookBadRequest,
    WebhookSecrets,
    WebhookUnauthorized,
    detect_provider,
    parse_webhook,
)
from tether.source.credentials import strip_url_credentials

log = logging.getLogger(__name__)

OnPush = Callable[[PushEvent], Awaitable[int]]
GetSecrets = Callable[[], Awaitable[WebhookSecrets]]
AuditQuery = Callable[[dict[str, str]], Awaitable[list[dict[str, Any]]]]

_READ_CHUNK = 64 * 1024


class _TooLarge(Exception):
    pass


def create_app(
    *,
    on_push: OnPush,
    get_secrets: GetSecrets,
    is_ready: Callable[[], bool],
    audit_query: AuditQuery | None = None,
    max_body: int = 1_048_576,
) -> web.Application:
    """The aiohttp application; the caller owns what each callback does.

    ``on_push`` gets every verified push and returns how many Applications it refreshed.
    ``get_secrets`` is awaited per delivery, so a rotated Secret applies without a restart.
    ``audit_query`` gets the query string of ``GET /api/v1/audit``; a ValueError it raises
    is answered 400 with its message.
    """

    async def webhook(request: web.Request) -> web.Response:
        provider = detect_provider(request.headers)

        def answer(outcome: str, status: int, body: dict[str, Any]) -> web.Response:
            metrics.WEBHOOKS.labels(provider=provider, outcome=outcome).inc()
            return web.json_response(body, status=status)

        try:
            body = await _read_capped(request, max_body)
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
            strip_url_credentials(event.repo_urls[0]),
            event.ref,
            event.after[:12] or "deleted",
            event.pusher or "?",
            apps,
        )
        return answer("accepted", 200, {"status": "accepted", "apps": apps})

    async def metrics_(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        if is_ready():
            return web.Response(text="ready")
        return web.Response(text="not ready", status=503)

    async def audit(request: web.Request) -> web.Response:
        if audit_query is None:
            return web.json_response({"error": "audit log not enabled"}, status=404)
        try:
            records = await audit_query(dict(request.query))
        except ValueError as e:
            return web.json_response({"error": str(e)}, status=400)
        return web.json_response(records)

    app = web.Application()
    app.router.add_post("/api/webhook", webhook)
    app.router.add_get("/metrics", metrics_)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/v1/audit", audit)
    return app


async def _read_capped(request: web.Request, limit: int) -> bytes:
    """The raw body, or _TooLarge as soon as it passes ``limit`` bytes (read no further)."""
    if request.content_length is not None and request.content_length > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    # Content-Length may be absent (chunked) or lie, so count what actually arrives.
    async for chunk in request.content.iter_chunked(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
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
