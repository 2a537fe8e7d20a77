"""The ``tether app`` group and its commands (create, apply, list, get, diff, delete,
refresh). The group imports its other commands when one runs (``COMMANDS``): ``sync``,
``terminate-op`` and ``wait`` are in ``operation_cmds``, ``clone`` in ``clone_cmd``, ``pin``
and ``unpin`` in ``pin_cmds``, ``rollback`` in ``rollback_cmd``, ``history`` in
``audit_cmds`` (for ``--server``, ``remote_cmds``) and ``drift`` in ``blame_cmds``. list, get,
diff and refresh print the same whether they ask the Kubernetes API or, with ``--server``,
tether's HTTP API (``tether.cli.backend``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from tether.cli.common import (
    EXIT_DIFF,
    EXIT_OK,
    Ctx,
    common,
    err,
    fail,
    health_cell,
    out,
    over_api,
    print_obj,
    run,
    run_now,
    with_api_now,
    with_engine,
    with_oneshot,
)
from tether.cli.lazy import Lazy, LazyGroup
from tether.cli.output import SOURCE_HEADERS, Cell, first_source, print_table, source_rows
from tether.errors import KubeError, TetherError

if TYPE_CHECKING:
    from tether.cli.backend import Applications
    from tether.engine import Engine
    from tether.model import Obj

# Each command imports what only it needs (the engine, the differ, Git) when it runs, so that
# ``tether app list`` and ``app get`` load none of it.

force_conflicts_option = click.option(
    "--force-conflicts",
    is_flag=True,
    help="Take over fields another field manager owns (server-side apply with force).",
)


COMMANDS = {
    "clone": Lazy(
        "tether.cli.clone_cmd:app_clone",
        "Reproduce NAME at one commit in another namespace, as a new Application NEWNAME.",
    ),
    "drift": Lazy(
        "tether.cli.blame_cmds:drift_command",
        "Show an app's drift timeline: who changed what in the cluster, when, and whether "
        "tether corrected it, newest first (from the audit trail).",
    ),
    "history": Lazy(
        "tether.cli.audit_cmds:history_command",
        "Show an Application's syncs: revision, result, trigger, commit author and message.",
    ),
    "pin": Lazy(
        "tether.cli.pin_cmds:app_pin",
        "Hold NAME at REVISION (a commit, tag, branch, chart version or history ID) instead "
        "of its targetRevision, without writing Git, until 'tether app unpin NAME'.",
    ),
    "rollback": Lazy(
        "tether.cli.rollback_cmd:app_rollback",
        "Roll an Application back by writing Git: a commit on the tracked branch restores the "
        "app's paths to REVISION (--to, else --steps back in its history), authored by you, is "
        "pushed (only if the branch is still where you saw it), and synced. Auto-sync stays "
        "on: the branch head now is the rollback.",
    ),
    "sync": Lazy(
        "tether.cli.operation_cmds:app_sync",
        "Sync an Application: through the running controller when there is one, else here.",
    ),
    "terminate-op": Lazy(
        "tether.cli.operation_cmds:app_terminate_op",
        'Stop the sync running on an Application. It ends Failed ("terminated") at its next '
        "step; what was applied stays applied, what was not is not. Exit 0 once it ended.",
    ),
    "unpin": Lazy(
        "tether.cli.pin_cmds:app_unpin",
        "Remove the pin of NAME: it follows its targetRevision again (auto-sync deploys it).",
    ),
    "wait": Lazy(
        "tether.cli.operation_cmds:app_wait",
        "Wait until no sync runs and the app is Synced and Healthy (with --sync or --health: "
        "only that). Exit 0 when reached, 1 on timeout (saying what is still not so), 2 on "
        "error.",
    ),
}
"""The ``app`` commands defined in other modules, imported when run (``tether.cli.lazy``)."""


@click.group(cls=LazyGroup, lazy=COMMANDS)
def app() -> None:
    """Create, inspect, diff, sync and delete Applications."""


@app.command("create")
@click.argument("name")
@click.option("--repo", required=True, help="Git repository URL.")
@click.option("--path", "path", default=".", show_default=True, help="Path inside the repo.")
@click.option("--revision", default="HEAD", show_default=True, help="Branch, tag or commit.")
@click.option("--dest-namespace", default="", help="Namespace for namespaced objects.")
@click.option(
    "--project", default="", help="The Project whose rules the app keeps (default: default)."
)
@click.option("--auto-sync", is_flag=True, help="Sync automatically when Git changes.")
@click.option("--prune", is_flag=True, help="With --auto-sync: delete what left Git.")
@click.option("--self-heal", is_flag=True, help="With --auto-sync: undo live edits.")
@click.option(
    "--sync-option",
    "sync_options",
    multiple=True,
    metavar="K=V",
    help="A sync option such as CreateNamespace=true (repeatable).",
)
@click.option("--upsert", is_flag=True, help="Update the Application if it exists.")
@force_conflicts_option
@common
def app_create(
    ctx: Ctx,
    name: str,
    repo: str,
    path: str,
    revision: str,
    dest_namespace: str,
    project: str,
    auto_sync: bool,
    prune: bool,
    self_heal: bool,
    sync_options: tuple[str, ...],
    upsert: bool,
    force_conflicts: bool,
) -> None:
    """Create an Application NAME from a repo and path."""
    from tether.api.application import API_VERSION, new_application

    try:
        obj = new_application(
            name,
            ctx.namespace,
            repo_url=repo,
            path=path,
            revision=revision,
            dest_namespace=dest_namespace,
            project=project,
            auto_sync=auto_sync,
            prune=prune,
            self_heal=self_heal,
            sync_options=list(sync_options),
        )
    except TetherError as e:
        fail(e)

    async def go(engine: Engine) -> int:
        existing = await engine.kube.get(API_VERSION, "Application", name, ctx.namespace)
        if existing is not None and not upsert:
            raise TetherError(
                f"Application {ctx.namespace}/{name} already exists",
                hint="use --upsert to update it, or 'tether app apply -f'",
            )
        await apply_application(engine, obj, "the options given", force_conflicts)
        out.print(f"application/{name} {'configured' if existing else 'created'}")
        return EXIT_OK

    run(with_engine(ctx, go))


@app.command("apply")
@click.option(
    "-f",
    "--filename",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="YAML file with one or more Applications.",
)
@force_conflicts_option
@common
def app_apply(ctx: Ctx, filename: str, force_conflicts: bool) -> None:
    """Create or update Applications from a YAML file."""
    from pathlib import Path

    from tether.cli.application_file import read_application_file

    try:
        # Every document is checked before the first is sent: a file applies whole or not.
        docs = read_application_file(Path(filename), ctx.namespace)
    except TetherError as e:
        fail(e)

    async def go(engine: Engine) -> int:
        for doc in docs:
            await apply_application(engine, doc, filename, force_conflicts)
            out.print(f"application/{doc['metadata']['name']} applied")
        return EXIT_OK

    run(with_engine(ctx, go))


async def apply_application(engine: Engine, obj: Obj, origin: str, force: bool) -> None:
    """Server-side applies an Application written from ``origin`` (a file, or the options);
    the API server's refusals get a hint about that origin, not about Git."""
    where = f"Application {obj['metadata']['namespace']}/{obj['metadata']['name']}"
    try:
        await engine.kube.apply(obj, force=force)
    except KubeError as e:
        if e.status == 409:
            raise KubeError(
                f"{where}: {e.message}",
                status=e.status,
                hint="another field manager (kubectl edit, another tool) owns a field this "
                "sets; rerun with --force-conflicts to take the fields over, or change it "
                "where it is managed",
            ) from e
        if e.status == 422:
            raise KubeError(
                f"{where}: {e.message}", status=e.status, hint=f"fix {origin} and run again"
            ) from e
        raise


@app.command("list")
@common
@over_api
def app_list(ctx: Ctx) -> None:
    """List Applications with their sync and health."""

    def show(items: list[Obj]) -> int:
        """Prints the Applications: documents (``app_document``) for json and yaml; the
        table's cells are each safe as they are (the repository URL is redacted below)."""
        if ctx.output in ("json", "yaml"):
            from tether.service.documents import app_document, list_document

            docs = [it if documented else app_document(it) for it in items]
            print_obj(list_document(docs), ctx.output)
            return EXIT_OK
        from tether.api.names import project_name
        from tether.cli.pin_text import sync_cell
        from tether.source import redact

        rows: list[list[Cell]] = []
        for it in items:
            st = it.get("status") or {}
            src = first_source(it)
            rows.append(
                [
                    it["metadata"]["name"],
                    project_name(it),
                    sync_cell(it),
                    health_cell(str((st.get("health") or {}).get("status", "Unknown"))),
                    str((st.get("sync") or {}).get("revision") or "")[:10],
                    redact(str(src.get("repoURL", ""))),
                    str(src.get("path", "")),
                ]
            )
        print_table(
            out,
            ("NAME", "PROJECT", "SYNC", "HEALTH", "REVISION", "REPO", "PATH"),
            rows,
            whole=("SYNC", "HEALTH", "REVISION"),
        )
        return EXIT_OK

    documented = ctx.server is not None  # tether's API answers with documents already
    if documented:  # a read or a few, no event loop either way
        run_now(lambda: show(with_api_now(ctx, lambda api: api.list(ctx.namespace))))
    from tether.service.reading import list_apps_now

    run_now(lambda: show(with_oneshot(ctx, lambda kube: list_apps_now(kube, ctx.namespace))))


@app.command("get")
@click.argument("name")
@common
@over_api
def app_get(ctx: Ctx, name: str) -> None:
    """Show an Application: sync, health, revision and its resources."""

    def show(obj: Obj) -> int:
        if ctx.output in ("json", "yaml"):
            print_obj(obj, ctx.output)
            return EXIT_OK
        from tether.cli.main import print_app  # there, not in common: see main's docstring

        print_app(obj)
        sources = source_rows(obj)
        if sources:
            # Several sources: each one's repository and the revision it was compared at.
            out.print()
            print_table(out, SOURCE_HEADERS, sources, whole=("#", "TYPE", "REVISION"))
        return EXIT_OK

    if ctx.server is not None:  # one read, no event loop either way
        run_now(lambda: show(with_api_now(ctx, lambda api: api.get(name, ctx.namespace))))
    from tether.cli.backend import get_now

    run_now(lambda: show(with_oneshot(ctx, lambda kube: get_now(kube, name, ctx.namespace))))


@app.command("diff")
@click.argument("name")
@click.option("--revision", default=None, help="Compare against this revision instead.")
@click.option("--color/--no-color", default=None, help="Colour the diff (default: on a tty).")
@common
@over_api
def app_diff(ctx: Ctx, name: str, revision: str | None, color: bool | None) -> None:
    """Show how the cluster differs from Git. Exit 0 in sync, 1 with a diff, 2 on error."""

    def show(doc: Obj) -> int:
        """Prints the ``diff_document``; its ``resources`` are the objects that differ."""
        differs = any(isinstance(r, dict) for r in doc.get("resources") or [])
        if ctx.output in ("json", "yaml"):
            print_obj(doc, ctx.output)
        elif differs:  # only text needs the differ's modules
            from tether.diff import render_diffs
            from tether.service.documents import diffs_of_document

            use_color = sys.stdout.isatty() if color is None else color
            sys.stdout.write(render_diffs(diffs_of_document(doc), color=use_color))
            sys.stdout.flush()
        return EXIT_DIFF if differs else EXIT_OK

    if ctx.server is not None:  # the server compares: one read, no event loop
        run_now(
            lambda: show(with_api_now(ctx, lambda api: api.diff(name, ctx.namespace, revision)))
        )

    async def go(apps: Applications) -> int:
        return show(await apps.diff(name, ctx.namespace, revision))

    from tether.cli.backend import with_backend

    run(with_backend(ctx, go))


@app.command("delete")
@click.argument("name")
@click.option(
    "--cascade/--orphan",
    default=None,
    help="Also delete the objects the app owns (cascade) or leave them (orphan). "
    "Default: as the app's tether.dev/deletion-policy annotation says (cascade unless orphan).",
)
@click.option(
    "--timeout",
    default=120.0,
    show_default=True,
    help="Seconds to wait for a running sync to end, and then for the deletion to finish.",
)
@click.option(
    "--controller-wait",
    default=15.0,
    show_default=True,
    help="Seconds to wait for a running controller to take the deletion over before "
    "deleting the objects here (0: do it here).",
)
@common
def app_delete(
    ctx: Ctx, name: str, cascade: bool | None, timeout: float, controller_wait: float
) -> None:
    """Delete an Application (and, with --cascade, everything it owns). See docs/deletion.md."""

    from tether.cli.output import escape
    from tether.deletion.command import delete_application

    async def go(engine: Engine) -> int:
        res = await delete_application(
            engine,
            name,
            ctx.namespace,
            cascade=cascade,
            timeout=timeout,
            controller_wait=controller_wait,
            say=lambda line: err.print(escape(line)),
        )
        for key in res.deleted:
            out.print(f"{key} deleted")
        for key, why in res.kept:
            out.print(f"{key} kept: {escape(why)}")
        how = f"by {res.by}" if res.by else "orphan: its objects were left in place"
        out.print(f"application/{name} deleted ({how})")
        return EXIT_OK

    run(with_engine(ctx, go))


@app.command("refresh")
@click.argument("name")
@common
@over_api
def app_refresh(ctx: Ctx, name: str) -> None:
    """Ask the controller to re-read Git and compare now (a hard refresh)."""
    from tether.api.application import REFRESH_ANNOTATION
    from tether.cli.backend import with_backend

    async def go(apps: Applications) -> int:
        token = await apps.refresh(name, ctx.namespace)
        out.print(f"application/{name} refresh requested ({REFRESH_ANNOTATION}={token})")
        return EXIT_OK

    run(with_backend(ctx, go))
