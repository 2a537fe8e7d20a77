"""What happened to an app, from the audit trail: its syncs (``/history``, with who asked and
a link to each commit) and its drift timeline (``/drift``)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from tether.audit import MAX_LIMIT, AuditRecord, parse_limit
from tether.blame.drift import TIMELINE_KINDS, timeline
from tether.errors import TetherError
from tether.server.api.commits import commit_url
from tether.server.api.context import context_of
from tether.server.api.guard import app_for
from tether.server.errors import ApiError
from tether.service.history import HISTORY_KINDS, history_from_records, history_from_status

log = logging.getLogger(__name__)


async def history_route(request: web.Request) -> web.Response:
    """Newest first: every sync in the audit trail, or the last ones the status keeps."""
    target = await app_for(request)
    ctx = context_of(request)
    key = f"{target.namespace}/{target.name}"
    entries: list[dict[str, Any]] | None = None
    if ctx.store is not None:
        try:
            records = await ctx.store.query(app=key, kinds=HISTORY_KINDS, limit=MAX_LIMIT)
            entries = [_from_record(r) for r in records if r.kind in HISTORY_KINDS]
        except TetherError as failed:
            log.warning("history of %s from the status: the audit trail failed: %s", key, failed)
    source = "audit"
    if entries is None:
        source = "status"
        entries = [{**e, "initiatedBy": ""} for e in history_from_status(target.obj)]
    for e in entries:
        e["commitURL"] = commit_url(
            str((e.get("source") or {}).get("repoURL") or ""), e["revision"]
        )
    return web.json_response({"items": entries, "from": source})


def _from_record(r: AuditRecord) -> dict[str, Any]:
    (entry,) = history_from_records([r])
    return {**entry, "initiatedBy": r.user}


async def drift_route(request: web.Request) -> web.Response:
    """The drift timeline (``tether app drift -o json``): who changed what, and whether
    tether put it back."""
    target = await app_for(request)
    ctx = context_of(request)
    if ctx.store is None:
        raise ApiError(404, "the audit trail is not enabled on this server", reason="NoAuditTrail")
    records = await ctx.store.query(
        app=f"{target.namespace}/{target.name}",
        since=request.query.get("since") or None,
        kinds=TIMELINE_KINDS,
        limit=parse_limit(request.query.get("limit")),
    )
    return web.json_response({"items": [e.to_dict() for e in timeline(records)]})
