"""``GET .../{name}/events``: the Kubernetes Events about an Application, newest last."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tether.api.application import KIND
from tether.server.api.context import context_of
from tether.server.api.guard import app_for
from tether.source import redact


async def events_route(request: web.Request) -> web.Response:
    target = await app_for(request)
    ctx = context_of(request)
    selector = f"involvedObject.kind={KIND},involvedObject.name={target.name}"
    body = await ctx.kube.request(
        "GET",
        f"/api/v1/namespaces/{target.namespace}/events",
        query={"fieldSelector": selector},
    )
    uid = str((target.obj.get("metadata") or {}).get("uid") or "")
    items = [
        _event(e)
        for e in (body or {}).get("items") or []
        # An app deleted and created again under the same name: only the current one's.
        if not uid or str((e.get("involvedObject") or {}).get("uid") or uid) == uid
    ]
    items.sort(key=lambda e: (e["lastTimestamp"], e["firstTimestamp"]))
    return web.json_response({"items": items})


def _event(e: dict[str, Any]) -> dict[str, Any]:
    involved = e.get("involvedObject") or {}
    first = str(e.get("firstTimestamp") or e.get("eventTime") or "")
    return {
        "type": str(e.get("type") or ""),
        "reason": str(e.get("reason") or ""),
        "message": redact(str(e.get("message") or "")),
        "count": int(e.get("count") or 1),
        "firstTimestamp": first,
        "lastTimestamp": str(e.get("lastTimestamp") or first),
        "object": {
            "kind": str(involved.get("kind") or ""),
            "name": str(involved.get("name") or ""),
            "namespace": str(involved.get("namespace") or ""),
        },
    }
