"""``tether --server URL`` for the commands defined apart from their direct form: ``app
history`` (``GET .../history``) and ``app pin``/``unpin`` (``POST``/``DELETE .../pin``),
printed as the direct commands print them, and ``audit`` and
``app drift`` (their own ``--server`` source, ``GET /api/v1/audit``, defaults to the global
one). Registered in ``common.REMOTE`` by command path."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from tether.api.application import Application
from tether.api.names import HISTORY_LIMIT
from tether.cli.audit_cmds import HISTORY_HEADERS, HISTORY_WHOLE, history_rows
from tether.cli.backend import with_api
from tether.cli.common import EXIT_OK, REMOTE, Ctx, err, out, print_obj, run
from tether.cli.output import escape, print_table
from tether.cli.pin_text import print_pinned, print_unpinned
from tether.client import RemoteApplications
from tether.errors import TetherError

API_ONLY = ("initiatedBy", "commitURL")
"""Keys the API adds to a history entry for the UI; ``-o json`` prints the entries as the
direct command does."""


def remote_history(
    _direct: Callable[..., Any], ctx: Ctx, name: str, *, full: bool, **_source: Any
) -> None:
    """``tether app history NAME`` through the API: the audit trail's syncs, or the last ones
    the status keeps when the server has no trail (with ``--full``, an error instead)."""

    async def go(apps: RemoteApplications) -> int:
        answer = await apps.history(name, ctx.namespace)
        rows = [
            {k: v for k, v in e.items() if k not in API_ONLY}
            for e in answer.get("items") or []
            if isinstance(e, dict)
        ]
        from_status = answer.get("from") == "status"
        if from_status and full:
            raise TetherError(
                f"{apps.where} has no audit trail: only the last {HISTORY_LIMIT} syncs kept "
                f"in the status of {ctx.namespace}/{name} can be shown",
                hint="run without --full to see those, or enable the controller's audit trail",
            )
        if ctx.output in ("json", "yaml"):
            print_obj(rows, ctx.output)
            return EXIT_OK
        if from_status:
            err.print(
                f"[dim]{escape(apps.where)} has no audit trail; showing the last "
                f"{HISTORY_LIMIT} syncs kept in the status[/dim]"
            )
        if not rows:
            err.print(f"no syncs recorded for {escape(ctx.namespace)}/{escape(name)}")
            return EXIT_OK
        print_table(out, HISTORY_HEADERS, history_rows(rows), whole=HISTORY_WHOLE)
        return EXIT_OK

    run(with_api(ctx, go))


def remote_pin(
    _direct: Callable[..., Any],
    ctx: Ctx,
    name: str,
    revision: str,
    reason: str,
    source: int | None,
) -> None:
    """``tether app pin NAME REVISION`` through the API; the pin is recorded as the caller's."""

    async def go(apps: RemoteApplications) -> int:
        pin = await apps.pin(name, ctx.namespace, revision, reason=reason, source=source)
        if ctx.output in ("json", "yaml"):
            print_obj(pin, ctx.output)
            return EXIT_OK
        app = Application.from_obj(await apps.get(name, ctx.namespace))
        revisions = [str(r) for r in pin.get("revisions") or []]
        print_pinned(name, revisions, str(pin.get("by") or ""), app.sync_policy.automated)
        return EXIT_OK

    run(with_api(ctx, go))


def remote_unpin(_direct: Callable[..., Any], ctx: Ctx, name: str) -> None:
    """``tether app unpin NAME`` through the API."""

    async def go(apps: RemoteApplications) -> int:
        app = Application.from_obj(await apps.get(name, ctx.namespace))
        done = await apps.unpin(name, ctx.namespace)
        if ctx.output in ("json", "yaml"):
            print_obj(done, ctx.output)
            return EXIT_OK
        targets = [s.target_revision or "HEAD" for s in app.sources]
        print_unpinned(name, [str(r) for r in done.get("unpinned") or []], targets)
        return EXIT_OK

    run(with_api(ctx, go))


def remote_audit(direct: Callable[..., Any], ctx: Ctx, *args: Any, source: Any, **kw: Any) -> Any:
    """``tether audit`` and ``tether app drift`` read ``GET /api/v1/audit`` of the
    ``--server`` given globally, unless the command's own source options name another."""
    assert ctx.server is not None
    if source.server is None and source.db is None and not source.url:
        source = dataclasses.replace(source, server=ctx.server.url)
    return direct(ctx, *args, source=source, **kw)


def register() -> None:
    REMOTE["app history"] = remote_history
    REMOTE["audit"] = remote_audit
    REMOTE["app drift"] = remote_audit
    REMOTE["app pin"] = remote_pin
    REMOTE["app unpin"] = remote_unpin
