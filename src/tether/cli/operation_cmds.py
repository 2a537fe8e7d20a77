"""The ``tether app`` commands that run or follow a sync operation: ``sync``, ``terminate-op``
and ``wait``, and how a sync's outcome is printed. They go through the application service
(``tether.service``), which decides whether a running controller or this command runs a sync;
with ``--server``, through tether's HTTP API, where the controller runs it
(``tether.cli.backend``). The outcome is printed the same either way.

``tether app sync NAME --dest-namespace NS`` never retargets NAME: it clones NAME into a new
Application (``NAME-NS``, or ``--as``) and syncs that (``tether.cli.clone_cmd``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from tether.cli.backend import Applications, with_backend
from tether.cli.common import (
    EXIT_DIFF,
    EXIT_OK,
    Ctx,
    common,
    err,
    fail,
    health_text,
    not_over_api,
    out,
    over_api,
    print_obj,
    run,
    with_engine,
)
from tether.cli.output import escape, print_table, styled
from tether.errors import TetherError
from tether.service import SyncOutcome, SyncRequest, WaitTimedOut
from tether.sync.state import ResourceSelector

if TYPE_CHECKING:  # the engine: imported by a clone's sync only
    from tether.service.clone import CloneRequest

_RESULT_COLOURS = {"failed": "red", "pruned": "yellow", "created": "green", "configured": "green"}
_HOOK_COLOURS = {"Succeeded": "green", "Failed": "red", "Running": "cyan"}


def parse_selectors(values: tuple[str, ...]) -> list[ResourceSelector]:
    try:
        return [ResourceSelector.parse(v) for v in values]
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--resource") from e


@click.command("sync")
@click.argument("name")
@click.option("--revision", default=None, help="Sync to this revision instead of the target.")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--prune", is_flag=True, default=None, help="Delete objects that left Git.")
@click.option(
    "--allow-mass-prune",
    is_flag=True,
    help="Allow pruning more than half of the app, a Namespace or a CRD.",
)
@click.option(
    "--resource",
    "resources",
    multiple=True,
    metavar="GROUP:KIND:NAME",
    help="Sync only this object (repeatable; NAMESPACE/NAME allowed, an empty GROUP is the "
    "core group: ':ConfigMap:settings'). Hooks do not run; nothing else is pruned.",
)
@click.option(
    "--timeout",
    default=120.0,
    show_default=True,
    help="Seconds for the sync (its waves and hooks) and then for health "
    "(0: the operation's own timeout, and no wait for health).",
)
@click.option(
    "--ignore-dependencies",
    is_flag=True,
    help="Sync even if an app in spec.dependsOn is not Synced and Healthy.",
)
@click.option(
    "--force-window",
    is_flag=True,
    help="Sync even while the app's sync windows deny manual syncs.",
)
@click.option(
    "--dest-namespace",
    default=None,
    help="Do not sync NAME: clone it at --revision into this namespace, as NAME-NS (or "
    "--as), and sync the clone (see 'tether app clone').",
)
@click.option("as_name", "--as", default=None, help="With --dest-namespace: the clone's name.")
@click.option(
    "--create-namespace", is_flag=True, help="With --dest-namespace: let the sync create it."
)
@common
@over_api
def app_sync(
    ctx: Ctx,
    name: str,
    revision: str | None,
    dry_run: bool,
    prune: bool | None,
    allow_mass_prune: bool,
    resources: tuple[str, ...],
    timeout: float,
    ignore_dependencies: bool,
    force_window: bool,
    dest_namespace: str | None,
    as_name: str | None,
    create_namespace: bool,
) -> None:
    """Sync an Application: through the running controller when there is one, else here.

    With --dest-namespace NS, NAME is left alone: it is cloned at --revision into NS as a new
    Application NAME-NS (or --as NEWNAME), whose name is printed, and the clone is synced.

    Exit 0 when the sync succeeded (and the app became healthy), 1 when it failed or the
    app is not healthy in time, 2 on an error."""
    if dest_namespace is not None:
        if ctx.server is not None:
            fail(not_over_api("app sync --dest-namespace"))
        if resources:
            raise click.UsageError("--resource does not go with --dest-namespace")
        req = _clone_request(ctx, name, revision, dest_namespace, as_name, create_namespace)
        _sync_a_clone(ctx, req, dry_run, timeout)
        return
    if as_name is not None or create_namespace:
        raise click.UsageError("--as and --create-namespace go with --dest-namespace")
    request = SyncRequest(
        name,
        ctx.namespace,
        revision=revision or "",
        prune=bool(prune),
        allow_mass_prune=allow_mass_prune,
        resources=parse_selectors(resources),
        ignore_dependencies=ignore_dependencies,
        force_window=force_window,
    )

    async def go(apps: Applications) -> int:
        with err.status(f"syncing {name}") as spinner:

            def say(line: str) -> None:
                spinner.update(escape(f"{name}: {line}"))

            outcome = await apps.sync(request, dry_run=dry_run, timeout=timeout, progress=say)
        for notice in outcome.notices:
            err.print(f"[yellow]{escape(notice)}[/yellow]")
        if ctx.output in ("json", "yaml"):
            print_obj(outcome.to_dict(), ctx.output)
        else:
            print_outcome(outcome)
        if not outcome.ok:
            return EXIT_DIFF
        if outcome.waited_for_health and not outcome.healthy:
            return EXIT_DIFF
        return EXIT_OK

    run(timed_out_is_1(with_backend(ctx, go)))


def _clone_request(
    ctx: Ctx,
    name: str,
    revision: str | None,
    dest_namespace: str,
    as_name: str | None,
    create_namespace: bool,
) -> CloneRequest:
    from tether.service.clone import CloneRequest
    from tether.service.clone_spec import default_clone_name

    new_name = as_name or default_clone_name(name, dest_namespace)
    err.print(
        f"--dest-namespace: {escape(name)} is not retargeted; syncing a clone of it, "
        f"Application [bold]{escape(new_name)}[/bold], deploying to {escape(dest_namespace)}"
    )
    return CloneRequest(
        name,
        ctx.namespace,
        new_name,
        dest_namespace,
        revision=revision or "",
        create_namespace=create_namespace,
    )


def _sync_a_clone(ctx: Ctx, req: CloneRequest, dry_run: bool, timeout: float) -> None:
    from tether.cli.clone_cmd import clone_runner  # it imports this module's printing

    run(timed_out_is_1(with_engine(ctx, clone_runner(ctx, req, True, dry_run, timeout))))


@click.command("terminate-op")
@click.argument("name")
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    help="Seconds to wait for the operation to end (0: do not wait).",
)
@common
@over_api
def app_terminate_op(ctx: Ctx, name: str, timeout: float) -> None:
    """Stop the sync running on an Application. It ends Failed ("terminated") at its next
    step; what was applied stays applied, what was not is not. Exit 0 once it ended."""

    async def go(apps: Applications) -> int:
        state = await apps.terminate(name, ctx.namespace, wait=timeout > 0, timeout=timeout)
        if ctx.output in ("json", "yaml"):
            print_obj(state.to_dict(), ctx.output)
        else:
            out.print(
                f"operation {state.operation.id} on {name}: {state.phase}"
                + (f": {escape(state.message)}" if state.message else "")
            )
        return EXIT_OK

    run(timed_out_is_1(with_backend(ctx, go)))


@click.command("wait")
@click.argument("name")
@click.option("--health", is_flag=True, help="Wait until the app is Healthy.")
@click.option("--sync", "sync_", is_flag=True, help="Wait until the app is Synced.")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait.")
@common
@over_api
def app_wait(ctx: Ctx, name: str, health: bool, sync_: bool, timeout: float) -> None:
    """Wait until no sync runs and the app is Synced and Healthy (with --sync or --health:
    only that). Exit 0 when reached, 1 on timeout (saying what is still not so), 2 on error."""
    both = not health and not sync_

    async def go(apps: Applications) -> int:
        res = await apps.wait(
            name, ctx.namespace, health=health or both, sync=sync_ or both, timeout=timeout
        )
        if ctx.output in ("json", "yaml"):
            print_obj(
                {
                    "sync": res.sync_status,
                    "health": res.health_status,
                    "operation": res.operation_phase,
                    "source": res.source,
                },
                ctx.output,
            )
        else:
            out.print(
                f"{name}: Sync: {res.sync_status}   Health: {health_text(res.health_status)}"
                + (f"   Last sync: {res.operation_phase}" if res.operation_phase else "")
            )
        return EXIT_OK

    run(timed_out_is_1(with_backend(ctx, go)))


async def timed_out_is_1(coro: Any) -> int:
    """A wait that ran out of time is an answer (exit 1), not an error (exit 2)."""
    try:
        code: int = await coro
    except WaitTimedOut as e:
        _print_error("timed out", e)
        return EXIT_DIFF
    return code


def _print_error(label: str, e: TetherError) -> None:
    err.print(f"[red]{label}:[/red] " + escape(e.message))
    if e.hint:
        err.print("  [dim]hint:[/dim] " + escape(e.hint))


def print_outcome(o: SyncOutcome) -> None:
    """The table of what the sync did (sync phase and wave of each object, a hook's phase),
    the result line, who ran it, and sync and health."""
    changed = [r for r in o.records if r.action != "unchanged"]
    if changed:
        waves = any(r.wave for r in changed) or any(r.sync_phase != "Sync" for r in changed)
        rows = []
        for r in changed:
            cells: list[Any] = [r.key.kind, r.key.namespace, r.key.name]
            if waves:
                cells += [r.sync_phase, str(r.wave)]
            result = styled(r.action, _RESULT_COLOURS.get(r.action))
            if r.hook_phase:
                result = styled(f"{r.action} ({r.hook_phase})", _HOOK_COLOURS.get(r.hook_phase))
            rows.append([*cells, result, r.message])
        headers = ("KIND", "NAMESPACE", "NAME", *(("PHASE", "WAVE") if waves else ()))
        print_table(
            out,
            (*headers, "RESULT", "MESSAGE"),
            rows,
            whole=("KIND", "PHASE", "WAVE", "RESULT"),
        )
    colour = "green" if o.ok else "red"
    out.print(
        f"[{colour}]{o.phase}[/{colour}]: {escape(o.message)} "
        f"(revision {o.revision[:10] or 'unknown'})"
    )
    if o.runner:
        out.print(escape(o.runner))
    if (not o.dry_run and o.health_status != "Unknown") or o.waited_for_health:
        out.print(
            f"Sync: {o.sync_status}   Health: {health_text(o.health_status)}"
            + (f" — {escape(o.health_message)}" if o.health_message else "")
        )
