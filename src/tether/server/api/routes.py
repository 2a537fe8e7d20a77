"""The ``/api/v1`` routes, registered on the server's aiohttp application."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from tether.server.access import Caller
from tether.server.api import actions, apps, details, events, history, openapi
from tether.server.api.context import CONTEXT, ApiContext
from tether.server.api.guard import GET, may
from tether.server.api.stream import STREAM, AppStream, serve_stream
from tether.server.auth import caller_of
from tether.server.auth.middleware import session_alive

APP = "/api/v1/applications/{namespace}/{name}"


def api_routes(ctx: ApiContext) -> Callable[[web.Application], None]:
    """What ``create_app(extensions=[...])`` takes: adds every ``/api/v1`` route but the
    audit (the server's own) and the session (authentication's)."""

    def add(app: web.Application) -> None:
        app[CONTEXT] = ctx
        stream = AppStream(ctx)
        app[STREAM] = stream

        async def close_streams(_: web.Application) -> None:
            await stream.close()

        app.on_shutdown.append(close_streams)
        r = app.router
        r.add_get("/api/v1/applications", apps.list_route)
        r.add_get(APP, apps.get_route)
        r.add_get(APP + "/tree", details.tree_route)
        r.add_get(APP + "/diff", details.diff_route)
        r.add_get(APP + "/resource", details.resource_route)
        r.add_get(APP + "/history", history.history_route)
        r.add_get(APP + "/events", events.events_route)
        r.add_get(APP + "/drift", history.drift_route)
        r.add_post(APP + "/sync", actions.sync_route)
        r.add_post(APP + "/refresh", actions.refresh_route)
        r.add_delete(APP + "/operation", actions.terminate_route)
        r.add_post(APP + "/rollback", actions.rollback_route)
        r.add_post(APP + "/pin", actions.pin_route)
        r.add_delete(APP + "/pin", actions.unpin_route)
        r.add_get("/api/v1/stream/applications", stream_route)
        r.add_get("/api/v1/settings", apps.settings_route)
        r.add_get("/api/v1/openapi.json", openapi.document_route)

    return add


async def stream_route(request: web.Request) -> web.StreamResponse:
    caller = caller_of(request)

    async def visible(who: Caller, namespace: str, name: str) -> bool:
        return await may(request, who, GET, namespace) or await may(
            request, who, GET, namespace, name
        )

    async def still_valid() -> bool:
        """The session (or token) the stream was opened with still stands: checked at each
        keepalive, so a revoked session or a deleted ServiceAccount ends the stream."""
        return await session_alive(request)

    return await serve_stream(request, request.app[STREAM], caller, visible, still_valid)
