"""``tether app rollback``: write the commit that restores an app to an older revision, push
it, sync it (``tether.service.rollback``), and print what was done or what to do by hand."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import click

from tether.cli.backend import with_api
from tether.cli.common import (
    EXIT_DIFF,
    EXIT_ERROR,
    EXIT_OK,
    Ctx,
    common,
    connect_kube,
    err,
    out,
    over_api,
    print_obj,
    run,
)
from tether.cli.operation_cmds import print_outcome
from tether.cli.output import escape
from tether.errors import TetherError
from tether.service.identity import kube_user, requester
from tether.service.results import WaitTimedOut
from tether.service.rollback_plan import (
    BRANCH,
    HISTORY_ID_DIGITS,
    MANUAL,
    NOTHING,
    BranchMoved,
    Progress,
    RepoPlan,
    RollbackRequest,
    RollbackResult,
)
from tether.source.commits import PushRejected
from tether.source.credentials import redact

RollBack = Callable[[RollbackRequest, Progress], Awaitable[RollbackResult]]
"""``RollbackService.rollback``, or ``RemoteApplications.rollback`` with ``--server``."""

EXIT_NO_WRITE = 3
"""No write access to the repository: the git commands were printed, nothing changed."""
EXIT_MOVED = 4
"""The branch moved since the revision the user saw: nothing was pushed."""


@click.command("rollback")
@click.argument("name")
@click.option("--to", "to", default="", help="Commit-ish, or a history ID, to go back to.")
@click.option(
    "--steps",
    default=1,
    show_default=True,
    help="Go back this many distinct deployed revisions (status history).",
)
@click.option("--message", "-m", default="", help="First line of the commit message.")
@click.option(
    "--branch",
    default="",
    help="Push to this new branch (for a pull request) instead; do not sync.",
)
@click.option("--author", default="", help='Commit author, "Name <email>" (default: kubeconfig).')
@click.option(
    "--expect",
    default="",
    help="The branch head you looked at (default: the revision the app is synced to); "
    "refuse if the branch is elsewhere.",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Delete objects the restored revision does not have, whatever the app's policy "
    "(default: as syncPolicy.automated.prune says).",
)
@click.option("--timeout", default=120.0, show_default=True, help="Seconds for sync and health.")
@common
@over_api
def app_rollback(
    ctx: Ctx,
    name: str,
    to: str,
    steps: int,
    message: str,
    branch: str,
    author: str,
    expect: str,
    prune: bool,
    timeout: float,
) -> None:
    """Roll an Application back by writing Git: a commit on the tracked branch restores the
    app's paths to REVISION (--to, else --steps back in its history), authored by you, is
    pushed (only if the branch is still where you saw it), and synced. Auto-sync stays on:
    the branch head now is the rollback.

    Needs write access: a repository Secret with write: "true", or a Secret labelled
    tether.dev/secret-type=repository-write. Exit 0 when synced (or nothing to do, or
    pushed with --branch), 1 when the sync failed or the app is unhealthy, 2 on an error
    or refusal, 3 without write access (the git commands are printed, nothing changed),
    4 when the branch moved (nothing pushed).

    With --server, tether's server does it with its own repository credentials, the commit
    authored by the user the token names (--author is refused); the same output and exit
    codes."""
    if to and steps != 1:
        raise click.UsageError("give --to or --steps, not both")
    if ctx.server is not None and author:
        raise click.UsageError(
            "--author cannot be given with --server: the server writes the commit as the user "
            "its token names"
        )
    request = RollbackRequest(
        name,
        ctx.namespace,
        to=to,
        steps=steps,
        message=message,
        branch=branch,
        expect=expect,
        timeout=timeout,
        prune=prune,
    )
    if ctx.server is not None:
        run(with_api(ctx, lambda apps: _rollback(ctx, apps.rollback, request)))
        return
    who = kube_user(ctx.kubeconfig, ctx.context)
    request.author = requester(
        who.name if who else None, author or None, context=who.context if who else ""
    )

    async def go() -> int:
        # Git and the engine, loaded only here: through the API the server does the work.
        from tether.engine import Engine
        from tether.service.rollback import RollbackService

        if to.isdigit() and len(to) <= HISTORY_ID_DIGITS:
            request.entry = await audit_entry(ctx, name, int(to))
        kube = await connect_kube(ctx)
        try:
            return await _rollback(ctx, RollbackService(Engine(kube)).rollback, request)
        finally:
            await kube.close()

    run(go())


async def audit_entry(ctx: Ctx, name: str, ident: int) -> dict[str, Any] | None:
    """The sync record ``ident`` of the app in the audit trail, as ``tether app history``
    shows its IDs when the trail can be read; None when it cannot (the ID is then one of
    ``status.history``, as ``app history`` then shows) or holds no such record."""
    from tether.audit import MAX_LIMIT
    from tether.cli.audit_sources import AuditQuery, AuditSource, fetch_records
    from tether.service.history import HISTORY_KINDS

    try:
        records = await fetch_records(
            ctx,
            AuditSource(),
            AuditQuery(app=f"{ctx.namespace}/{name}", kinds=HISTORY_KINDS, limit=MAX_LIMIT),
        )
    except TetherError:
        return None
    for r in records:
        if r.id == ident and r.revision:
            revisions = r.details.get("revisions")
            multi = isinstance(revisions, list) and revisions
            return {"revision": r.revision, **({"revisions": revisions} if multi else {})}
    return None


async def _rollback(ctx: Ctx, roll_back: RollBack, request: RollbackRequest) -> int:
    """Runs the rollback (here, or by the server: ``roll_back``) and prints its result; the
    exit code."""
    try:
        with err.status(f"rolling back {request.name}") as spinner:

            def say(line: str) -> None:
                spinner.update(escape(f"{request.name}: {line}"))

            result = await roll_back(request, say)
    except (BranchMoved, PushRejected) as e:
        err.print("[red]refused:[/red] " + escape(e.message))
        err.print("  [dim]hint:[/dim] " + escape(e.hint))
        return EXIT_MOVED
    except WaitTimedOut as e:
        err.print("[red]timed out:[/red] " + escape(e.message))
        return EXIT_DIFF
    for notice in result.notices:
        err.print(f"[yellow]{escape(notice)}[/yellow]")
    if ctx.output in ("json", "yaml"):
        print_obj(result.to_dict(), ctx.output)
    else:
        print_result(result)
    return exit_code(result)


def exit_code(result: RollbackResult) -> int:
    if result.state == MANUAL:
        return EXIT_NO_WRITE
    if result.state in (NOTHING, BRANCH):
        return EXIT_OK
    o = result.outcome
    if o is None:
        return EXIT_ERROR
    if not o.ok or (o.waited_for_health and not o.healthy):
        return EXIT_DIFF
    return EXIT_OK


def print_result(result: RollbackResult) -> None:
    if result.state == NOTHING:
        target = ", ".join(r.target.short for r in result.repos) or "that revision"
        out.print(f"{escape(result.app)} already has the content of {target}: nothing to do")
        return
    for r in result.repos:
        if not r.changes:
            continue
        rolled = r.rolled_back
        out.print(
            f"{escape(result.app)}: back to {r.target.short} ({escape(r.target.subject)}) "
            f"on {escape(r.branch)}; rolling back {len(rolled)} commit(s):"
        )
        for c in rolled:
            out.print(f"  {c.short} {escape(c.subject)} ({escape(str(c.author))})")
        if result.state == MANUAL:
            _print_manual(result, r)
        else:
            out.print(f"pushed {r.new_sha[:10]} to {escape(r.pushed_to)} of {escape(_url(r.url))}")
    for url in result.pull_requests:
        out.print(f"open a pull request: {escape(url)}")
    if result.state == BRANCH and not result.pull_requests:
        out.print("open a pull request of that branch on your Git server (not synced)")
    if result.outcome is not None:
        print_outcome(result.outcome)


def _print_manual(result: RollbackResult, r: RepoPlan) -> None:
    author = result.author
    err.print(
        f"[yellow]tether has no write access to {escape(_url(r.url))}:[/yellow] nothing was "
        'changed. Add write: "true" to its repository Secret (or a Secret labelled '
        "tether.dev/secret-type=repository-write), or run:"
    )
    out.print(escape(r.commands(author)) if author else "", soft_wrap=True)


def _url(url: str) -> str:
    return redact(url)


__all__ = ["EXIT_MOVED", "EXIT_NO_WRITE", "app_rollback"]
