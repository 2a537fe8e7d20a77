"""The audit commands, ``tether audit`` and ``tether app history``: their records as tables
and documents. Where the records come from (``--db``, ``--url``, ``--server``, or the
controller through the Kubernetes API) is ``tether.cli.audit_sources``.

``register`` adds the commands to the ``tether`` group. The names it needs from
``tether.cli.main`` are imported when it runs, not when this module is imported, so main.py
may import this module at any point without a circular import.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from tether.api.names import HISTORY_LIMIT
from tether.audit import KINDS, MAX_LIMIT, AuditRecord
from tether.cli.audit_export import register_export, register_migrate
from tether.cli.audit_sources import AuditQuery, AuditSource, fetch_records, source_options
from tether.cli.output import Cell, escape, print_table, styled
from tether.errors import TetherError
from tether.service.history import HISTORY_KINDS, history_from_records, history_from_status

if TYPE_CHECKING:
    from tether.cli.main import Ctx
    from tether.engine import Engine

CLI_LIMIT = 100
"""Records ``tether audit`` shows by default: a screenful, not the store's 1000."""
OBJECTS_SHOWN = 3


# ---- what is shown -----------------------------------------------------------------------


def object_text(o: dict[str, Any]) -> str:
    """``Deployment shop/web configured spec.replicas by kubectl-edit``."""
    ns, name = str(o.get("namespace") or ""), str(o.get("name") or "")
    text = f"{o.get('kind') or '?'} {ns}/{name}" if ns else f"{o.get('kind') or '?'} {name}"
    if o.get("action"):
        text += f" {o['action']}"
    fields = [str(f) for f in (o.get("fields") or [])]
    if fields:
        more = f",+{len(fields) - OBJECTS_SHOWN}" if len(fields) > OBJECTS_SHOWN else ""
        text += " " + ",".join(fields[:OBJECTS_SHOWN]) + more
    if o.get("manager"):
        text += f" by {o['manager']}"
    return text


def record_summary(rec: AuditRecord) -> str:
    """The message, then the first objects: what one table row can say."""
    parts = [object_text(o) for o in rec.objects[:OBJECTS_SHOWN]]
    if len(rec.objects) > OBJECTS_SHOWN:
        parts.append(f"+{len(rec.objects) - OBJECTS_SHOWN} more")
    objects = "; ".join(parts)
    if rec.message and objects:
        return f"{rec.message} — {objects}"
    return rec.message or objects


_RESULT_COLOURS = {"Succeeded": "green", "Failed": "red", "Error": "red"}
_KIND_COLOURS = {
    "drift": "yellow",
    "correction": "magenta",
    "prune": "yellow",
    "fighting": "red",
    "health": "cyan",
}


AUDIT_HEADERS = ("TIME", "APP", "KIND", "REVISION", "TRIGGER", "RESULT", "AUTHOR", "MESSAGE")
HISTORY_HEADERS = ("ID", "DEPLOYED AT", "REVISION", "RESULT", "TRIGGER", "AUTHOR", "MESSAGE")
# Times, kinds and revisions are read whole or not at all: only the text columns are cut.
HISTORY_WHOLE = ("TIME", "KIND", "REVISION", "TRIGGER", "RESULT", "ID", "DEPLOYED AT")


def records_rows(records: Sequence[AuditRecord]) -> list[list[Cell]]:
    """The rows of ``tether audit``'s table, under ``AUDIT_HEADERS``."""
    return [
        [
            r.time,
            r.app,
            styled(r.kind, _KIND_COLOURS.get(r.kind)),
            r.revision[:10],
            r.trigger,
            styled(r.result, _RESULT_COLOURS.get(r.result)),
            r.author,
            record_summary(r),
        ]
        for r in records
    ]


def _revision_cell(h: dict[str, Any]) -> str:
    """The first 10 characters of the commit; with several sources, of each source's
    revision (a chart version whole), in spec order."""
    several = h.get("revisions") or []
    if not several:
        return str(h["revision"])[:10]
    return ",".join(r[:10] if len(r) == 40 else r for r in several)


def history_rows(rows: Sequence[dict[str, Any]]) -> list[list[Cell]]:
    """The rows of ``tether app history``'s table, under ``HISTORY_HEADERS``."""
    return [
        [
            "" if h["id"] is None else str(h["id"]),
            h["deployedAt"],
            _revision_cell(h),
            styled(h["result"], _RESULT_COLOURS.get(h["result"])),
            h["trigger"],
            h["author"],
            h["message"],
        ]
        for h in rows
    ]


def qualified_app(name: str, namespace: str) -> str:
    """``web`` → ``<namespace>/web``; ``ns/web`` stays as it is."""
    return name if "/" in name else f"{namespace}/{name}"


# ---- the commands ------------------------------------------------------------------------


def audit_command() -> click.Command:
    """``tether audit`` (with ``export`` and ``migrate``), for the root group's table."""
    return _registered()[0].commands["audit"]


def history_command() -> click.Command:
    """``tether app history``, for the ``app`` group's table."""
    return _registered()[1].commands["history"]


@functools.cache
def _registered() -> tuple[click.Group, click.Group]:
    root, app_group = click.Group("tether"), click.Group("app")
    register(root, app_group)
    return root, app_group


def register(cli: click.Group, app_group: click.Group) -> None:
    """Adds ``audit`` to ``cli`` and ``history`` to ``app_group`` (the ``tether app`` group)."""
    from tether.cli.main import EXIT_OK, common, err, out, print_obj, run, with_engine

    @cli.group("audit", invoke_without_command=True)
    @click.option(
        "--app",
        "app_name",
        default=None,
        metavar="NAME",
        help="Only this Application: NAME (in -n's namespace) or NAMESPACE/NAME.",
    )
    @click.option(
        "--since",
        default=None,
        metavar="T",
        help="Only records at or after T: RFC 3339, or a duration back from now (30m, 1h, 2d).",
    )
    @click.option(
        "--kind",
        "kinds",
        multiple=True,
        type=click.Choice(KINDS),
        help="Only records of this kind (repeatable).",
    )
    @click.option(
        "--limit",
        default=CLI_LIMIT,
        show_default=True,
        type=click.IntRange(1, MAX_LIMIT),
        help="At most this many records, the newest.",
    )
    @source_options
    @common
    def audit(
        ctx: Ctx,
        app_name: str | None,
        since: str | None,
        kinds: tuple[str, ...],
        limit: int,
        source: AuditSource,
    ) -> None:
        """Show the audit trail: syncs, drift, corrections, prunes, rollbacks, pins and
        deletions, newest first. 'tether audit export' writes it all as JSON lines."""
        if click.get_current_context().invoked_subcommand:
            return
        q = AuditQuery(
            app=qualified_app(app_name, ctx.namespace) if app_name else None,
            since=since,
            kinds=kinds,
            limit=limit,
        )

        async def go() -> int:
            records = await fetch_records(ctx, source, q)
            if ctx.output in ("json", "yaml"):
                print_obj([r.to_dict() for r in records], ctx.output)
                return EXIT_OK
            if not records:
                err.print("no audit records match")
                return EXIT_OK
            print_table(out, AUDIT_HEADERS, records_rows(records), whole=HISTORY_WHOLE)
            if len(records) >= limit:
                err.print(
                    f"[dim]showing the newest {limit} records; use --limit or --since for "
                    "more[/dim]"
                )
            return EXIT_OK

        run(go())

    register_export(audit)
    register_migrate(audit)

    @app_group.command("history")
    @click.argument("name")
    @click.option(
        "--full",
        is_flag=True,
        help="Fail rather than fall back to the status's last "
        f"{HISTORY_LIMIT} syncs when the audit trail cannot be read.",
    )
    @source_options
    @common
    def app_history(ctx: Ctx, name: str, full: bool, source: AuditSource) -> None:
        """Show an Application's syncs: revision, result, trigger, commit author and message.

        Every sync, from the audit trail (through the controller, or --db/--url/--server);
        IDs are then audit record ids. When the trail cannot be read, the last syncs kept in
        the Application's status, saying so."""
        app_key = qualified_app(name, ctx.namespace)
        chosen = full or source.db is not None or bool(source.server) or bool(source.url)
        from_audit = True

        rows: list[dict[str, Any]] = []

        async def from_status(engine: Engine) -> int:
            a = await engine.get_app(name, ctx.namespace)
            rows.extend(history_from_status(a.obj))
            return EXIT_OK

        async def go() -> int:
            nonlocal from_audit
            q = AuditQuery(app=app_key, kinds=HISTORY_KINDS, limit=MAX_LIMIT)
            try:
                rows.extend(history_from_records(await fetch_records(ctx, source, q)))
            except TetherError as e:
                if chosen:
                    raise
                from_audit = False
                # A table says where its rows come from; -o json/yaml stay machine-clean
                # (the entries' keys say it: status entries have "source").
                if ctx.output not in ("json", "yaml"):
                    err.print(
                        f"[dim]the audit trail cannot be read ({escape(e.message)}); showing "
                        f"the last {HISTORY_LIMIT} syncs kept in the status[/dim]"
                    )
                await with_engine(ctx, from_status)
            if ctx.output in ("json", "yaml"):
                print_obj(rows, ctx.output)
                return EXIT_OK
            if not rows:
                err.print(f"no syncs recorded for {escape(app_key)}")
                return EXIT_OK
            print_table(out, HISTORY_HEADERS, history_rows(rows), whole=HISTORY_WHOLE)
            if from_audit and len(rows) >= MAX_LIMIT:
                err.print(f"[dim]showing the newest {MAX_LIMIT} syncs[/dim]")
            elif not from_audit and len(rows) >= HISTORY_LIMIT:
                err.print(
                    f"[dim]the status keeps the last {HISTORY_LIMIT} syncs; the audit trail "
                    "has every one when the controller is reachable[/dim]"
                )
            return EXIT_OK

        run(go())
