"""``tether blame`` (which commit set each field of an object, and who changed it live) and
``tether app drift`` (the drift timeline from the audit trail).

Blame renders in this process, through the engine's render path and a render cache of its
own; the drift timeline reads the audit trail the way ``tether audit`` does (its options and
``fetch_records``). ``register`` imports what it needs from ``tether.cli.main`` when it runs,
as ``audit_cmds`` does, so main.py may import this module at any point.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

import click

from tether.audit import MAX_LIMIT
from tether.blame import DEFAULT_DEPTH
from tether.blame.drift import TIMELINE_KINDS, DriftEntry, timeline
from tether.blame.target import parse_target
from tether.cli.audit_cmds import CLI_LIMIT, qualified_app
from tether.cli.audit_sources import AuditQuery, AuditSource, fetch_records, source_options
from tether.cli.output import escape, print_table

if TYPE_CHECKING:
    from tether.blame.report import BlameReport
    from tether.cli.main import Ctx
    from tether.engine import Engine

DRIFT_HEADERS = ("TIME", "OBJECT", "FIELDS", "WHO", "OPERATION", "CHANGED AT", "CORRECTED")


def drift_rows(entries: list[DriftEntry]) -> list[list[str]]:
    return [
        [
            e.time,
            e.object_text,
            ", ".join(e.fields) or ("(deleted)" if e.status == "Missing" else ""),
            e.manager or "unknown",
            e.operation,
            e.changed_at,
            e.outcome,
        ]
        for e in entries
    ]


def blame_command() -> click.Command:
    """``tether blame``, for the root group's table."""
    return _registered()[0].commands["blame"]


def drift_command() -> click.Command:
    """``tether app drift``, for the ``app`` group's table."""
    return _registered()[1].commands["drift"]


@functools.cache
def _registered() -> tuple[click.Group, click.Group]:
    root, app_group = click.Group("tether"), click.Group("app")
    register(root, app_group)
    return root, app_group


def register(cli: click.Group, app_group: click.Group) -> None:
    """Adds ``blame`` to ``cli`` and ``drift`` to ``app_group`` (the ``tether app`` group)."""
    from tether.cli.main import EXIT_OK, common, err, out, print_obj, run, with_engine

    @cli.command("blame")
    @click.argument("name")
    @click.argument("obj", metavar="KIND/[NAMESPACE/]NAME")
    @click.option(
        "--field",
        "prefix",
        default="",
        metavar="PATH",
        help="Only this field and those under it, e.g. spec.template.spec.containers.",
    )
    @click.option(
        "--depth",
        default=DEFAULT_DEPTH,
        show_default=True,
        type=click.IntRange(1, 10000),
        help="Commits of each Git source's history to look at, from the synced revision back.",
    )
    @common
    def blame_cmd(ctx: Ctx, name: str, obj: str, prefix: str, depth: int) -> None:
        """Show which commit set each field of an object the app manages.

        Each field's commit is the one whose render last changed its value (a Helm value, a
        Kustomize patch or a plain file alike), found by rendering the app along its
        branch's history; where the live value differs, the field manager that wrote it."""
        # Git, the engine and the renderers: loaded when blame runs, not for 'app drift'.
        from tether.blame.report import WHOLE, table
        from tether.blame.run import blame

        target = parse_target(obj)

        async def go(engine: Engine) -> int:
            app = await engine.get_app(name, ctx.namespace)
            started = time.monotonic()
            report = await blame(engine.kube, engine.desired, app, target, depth)
            elapsed = time.monotonic() - started
            if ctx.output in ("json", "yaml"):
                print_obj(report.to_dict(prefix), ctx.output)
                return EXIT_OK
            _print_report(report, prefix, elapsed)
            return EXIT_OK

        def _print_report(report: BlameReport, prefix: str, elapsed: float) -> None:
            o = report.object
            ns = f"{o['namespace']}/" if o["namespace"] else ""
            rows = report.filtered(prefix)
            if not rows:
                err.print(
                    f"no field of {escape(o['kind'])}/{escape(ns + o['name'])} "
                    f"under {escape(prefix)!r}"
                )
                return
            headers, cells = table(rows, len(report.sources) > 1)
            print_table(out, headers, cells, whole=WHOLE)
            for s in report.skipped:
                err.print(
                    f"[yellow]note:[/yellow] source #{s.source} did not render at "
                    f"{s.commit[:10]}, passed over: {escape(s.reason)}"
                )
            if not report.live:
                err.print("[yellow]note:[/yellow] the object is not in the cluster")
            looked = ", ".join(str(s.get("history", 0)) for s in report.sources)
            err.print(
                f"[dim]{looked} commit(s) looked at, {report.renders} render(s), "
                f"{report.reused} reused from the render cache, {elapsed:.1f}s[/dim]"
            )

        run(with_engine(ctx, go))

    @app_group.command("drift")
    @click.argument("name")
    @click.option(
        "--since",
        default=None,
        metavar="T",
        help="Only drift at or after T: RFC 3339, or a duration back from now (30m, 1h, 2d).",
    )
    @click.option(
        "--limit",
        default=CLI_LIMIT,
        show_default=True,
        type=click.IntRange(1, MAX_LIMIT),
        help="Read at most this many audit records (drift and what followed), the newest.",
    )
    @source_options
    @common
    def app_drift(ctx: Ctx, name: str, since: str | None, limit: int, source: AuditSource) -> None:
        """Show an app's drift timeline: who changed what in the cluster, when, and whether
        tether corrected it, newest first (from the audit trail)."""
        app_key = qualified_app(name, ctx.namespace)
        q = AuditQuery(app=app_key, since=since, kinds=TIMELINE_KINDS, limit=limit)

        async def go() -> int:
            entries = timeline(await fetch_records(ctx, source, q))
            if ctx.output in ("json", "yaml"):
                print_obj([e.to_dict() for e in entries], ctx.output)
                return EXIT_OK
            if not entries:
                err.print(f"no drift recorded for {escape(app_key)}")
                return EXIT_OK
            print_table(out, DRIFT_HEADERS, drift_rows(entries), whole=("TIME", "CHANGED AT"))
            return EXIT_OK

        run(go())
