"""The Application list and one Application, as the caller may see them, and the server's
settings."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from tether.api.application import API_VERSION, KIND
from tether.model import Obj
from tether.server.access import Caller
from tether.server.api.context import ApiContext, context_of
from tether.server.api.guard import LIST, app_for, may
from tether.server.api.listing import ListFilter, sort_key
from tether.server.api.pagination import page, parse_limit
from tether.server.api.stream import STREAM
from tether.server.auth import caller_of
from tether.service.documents import app_document


async def list_route(request: web.Request) -> web.Response:
    """``{"items", "continue", "total"}``: the apps in namespaces the caller may list,
    sorted by namespace and name, filtered, one page of them."""
    ctx = context_of(request)
    caller = caller_of(request)
    limit = parse_limit(request.query.get("limit"))
    wanted = ListFilter.of(request.query)
    apps = await readable_apps(request, ctx, caller, request.query.get("namespace", ""))
    matching = sorted((a for a in apps if wanted.matches(a)), key=sort_key)
    items, token = page(matching, sort_key, limit, request.query.get("continue", ""))
    # Assembled from each app's cached JSON: at a thousand apps, encoding them anew for
    # every reader would cost more than everything else the route does.
    body = b"".join(
        (
            b'{"items":[',
            b",".join(ctx.documents.json(a) for a in items),
            b'],"continue":',
            json.dumps(token).encode(),
            b',"total":',
            str(len(matching)).encode(),
            b"}",
        )
    )
    return web.Response(body=body, content_type="application/json")


async def readable_apps(
    request: web.Request, ctx: ApiContext, caller: Caller, namespace: str = ""
) -> list[Obj]:
    """The Applications of the watched namespaces (only ``namespace`` if given) that
    ``caller`` may list: asked cluster-wide first, then per namespace holding apps. They
    come from the server's watch of Applications (the stream's), or from the API server
    while that watch is failing."""
    if namespace and not ctx.serves(namespace):
        return []
    watched = await request.app[STREAM].current_apps()
    if watched is not None:
        apps = [a for a in watched if not namespace or _namespace(a) == namespace]
    else:
        where = [namespace] if namespace else ctx.watched()
        lists = await asyncio.gather(*(ctx.kube.list(API_VERSION, KIND, ns) for ns in where))
        apps = [a for items, _ in lists for a in items]
    if await may(request, caller, LIST, namespace):
        return apps
    held = sorted({_namespace(a) for a in apps})
    allowed = {ns for ns in held if await may(request, caller, LIST, ns)}
    return [a for a in apps if _namespace(a) in allowed]


def _namespace(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


async def get_route(request: web.Request) -> web.Response:
    target = await app_for(request)
    return web.json_response(app_document(target.obj))


async def settings_route(request: web.Request) -> web.Response:
    """Who this server is and what it watches: for any authenticated caller."""
    ctx = context_of(request)
    caller_of(request)
    return web.json_response(
        {"version": ctx.version, "namespaces": ctx.watched(), "identity": ctx.identity}
    )
