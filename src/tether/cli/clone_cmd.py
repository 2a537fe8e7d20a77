"""``tether app clone NAME NEWNAME``: the original at one commit, in another namespace; and the
printing of a clone, shared with ``tether app sync NAME --dest-namespace NS``."""

from __future__ import annotations

from typing import Any

import click

from tether.cli.common import EXIT_DIFF, EXIT_OK, Ctx, common, err, out, print_obj, run, with_engine
from tether.cli.operation_cmds import print_outcome, timed_out_is_1
from tether.cli.output import escape
from tether.engine import Engine
from tether.service.clone import CloneOutcome, ClonePlan, Cloner, CloneRequest
from tether.service.clone_spec import source_dicts


@click.command("clone")
@click.argument("name")
@click.argument("new_name", metavar="NEWNAME")
@click.option(
    "--revision",
    default="",
    help="A commit, branch or tag for the first Git source (resolved now to its commit), or "
    "a history ID giving every source's revision. Default: what NAME has synced.",
)
@click.option(
    "--dest-namespace",
    required=True,
    help="Where the clone deploys (never the original's destination namespace).",
)
@click.option("--create-namespace", is_flag=True, help="Let the clone's sync create it.")
@click.option("--no-sync", is_flag=True, help="Create the clone; do not sync it.")
@click.option("--dry-run", is_flag=True, help="Check and render; create nothing.")
@click.option(
    "--timeout", default=120.0, show_default=True, help="Seconds for the sync and for health."
)
@common
def app_clone(
    ctx: Ctx,
    name: str,
    new_name: str,
    revision: str,
    dest_namespace: str,
    create_namespace: bool,
    no_sync: bool,
    dry_run: bool,
    timeout: float,
) -> None:
    """Reproduce NAME at one commit in another namespace, as a new Application NEWNAME.

    Same sources and render parameters, each source pinned to its exact commit, no automated
    sync. Refused, with nothing created, when an object would be cluster-scoped or land in a
    namespace other than --dest-namespace."""
    req = CloneRequest(
        name,
        ctx.namespace,
        new_name,
        dest_namespace,
        revision=revision,
        create_namespace=create_namespace,
    )
    run(timed_out_is_1(with_engine(ctx, clone_runner(ctx, req, not no_sync, dry_run, timeout))))


def clone_runner(ctx: Ctx, req: CloneRequest, sync: bool, dry_run: bool, timeout: float) -> Any:
    """The coroutine function a command runs to clone ``req`` and print the outcome."""

    async def go(engine: Engine) -> int:
        cloner = Cloner(engine)
        if dry_run:
            plan = await cloner.plan(req)
            return _report(ctx, req, CloneOutcome(plan), dry_run=True)
        with err.status(f"cloning {req.name} into {req.new_name}") as spinner:

            def say(line: str) -> None:
                spinner.update(escape(f"{req.new_name}: {line}"))

            outcome = await cloner.clone(req, sync=sync, timeout=timeout, progress=say)
        return _report(ctx, req, outcome, dry_run=False)

    return go


def _report(ctx: Ctx, req: CloneRequest, outcome: CloneOutcome, *, dry_run: bool) -> int:
    plan = outcome.plan
    if ctx.output in ("json", "yaml"):
        print_obj(
            {
                "application": plan.app,
                "revisions": plan.revisions,
                "objects": [k.to_dict() for k in plan.objects],
                "notes": plan.notes,
                "dryRun": dry_run,
                "sync": outcome.sync.to_dict() if outcome.sync else None,
            },
            ctx.output,
        )
    else:
        print_plan(req, plan, dry_run=dry_run)
        if outcome.sync is not None:
            print_outcome(outcome.sync)
    if outcome.sync is None:
        return EXIT_OK
    if not outcome.sync.ok or (outcome.sync.waited_for_health and not outcome.sync.healthy):
        return EXIT_DIFF
    return EXIT_OK


def print_plan(req: CloneRequest, plan: ClonePlan, *, dry_run: bool) -> None:
    verb = "would clone" if dry_run else ("re-cloned" if plan.replaces else "cloned")
    out.print(
        f"{verb} {escape(req.name)} into Application {escape(req.new_name)} "
        f"(namespace {req.namespace}), deploying to namespace [bold]{req.dest_namespace}[/bold]"
    )
    for i, (src, rev) in enumerate(
        zip(source_dicts(plan.app.get("spec") or {}), plan.revisions, strict=True)
    ):
        where = src.get("chart") or src.get("path") or ""
        out.print(f"  source {i + 1}: {escape(str(src.get('repoURL')))} {escape(where)} at {rev}")
    out.print(f"  {len(plan.objects)} object(s), all in namespace {req.dest_namespace}")
    for note in plan.notes:
        out.print(f"  {escape(note)}")
    if not dry_run:
        out.print(
            f"  see it with 'tether app get {req.new_name}'; remove it with "
            f"'tether app delete {req.new_name}'"
        )
