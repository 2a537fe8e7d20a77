"""The ``tether`` command: install the CRDs, manage Applications, diff, sync, render."""

from __future__ import annotations

import asyncio
import errno
import functools
import json
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import yaml
from click.core import ParameterSource
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from tether import __version__
from tether.api.application import (
    API_VERSION,
    DEFAULT_NAMESPACE,
    REFRESH_ANNOTATION,
    crd_manifests,
    new_application,
)
from tether.cli.application_file import read_application_file
from tether.cli.audit_cmds import LOCAL_AUDIT_DB
from tether.cli.audit_cmds import register as register_audit_commands
from tether.cli.output import Cell, print_table, styled
from tether.deletion import delete_application
from tether.diff import render_diffs
from tether.engine import Comparison, Engine, SyncResult
from tether.errors import KubeError, TetherError
from tether.kube import KubeClient
from tether.model import HealthStatus, Obj, ResourceDiffStatus
from tether.render import DirectoryOptions, Tree, render_directory
from tether.source import GitCache, redact

T = TypeVar("T")
# Piped output is read by people too (CI logs, `| less`): give tables room rather than
# truncating every column to fit 80 characters.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_OK, EXIT_DIFF, EXIT_ERROR = 0, 1, 2


class Ctx:
    def __init__(
        self,
        kubeconfig: str | None,
        context: str | None,
        namespace: str,
        output: str,
        *,
        namespace_given: bool = False,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.context = context
        self.namespace = namespace
        self.output = output
        self.namespace_given = namespace_given


force_conflicts_option = click.option(
    "--force-conflicts",
    is_flag=True,
    help="Take over fields another field manager owns (server-side apply with force).",
)


def common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the global options to a command (they may be given before or after it)."""
    opts = [
        click.option(
            "--kubeconfig",
            default=None,
            help="Path to the kubeconfig (default: $KUBECONFIG, ~/.kube/config, "
            "or the in-cluster service account).",
        ),
        click.option("--context", default=None, help="kubeconfig context to use."),
        click.option(
            "-n",
            "--namespace",
            default=None,
            help=f"Namespace where Applications live (default {DEFAULT_NAMESPACE}).",
        ),
        click.option(
            "-o",
            "--output",
            type=click.Choice(["table", "json", "yaml"]),
            default=None,
            help="Output format.",
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        kubeconfig: str | None,
        context: str | None,
        namespace: str | None,
        output: str | None,
        **kw: Any,
    ) -> Any:
        parent = click.get_current_context().find_object(Ctx)
        ctx = Ctx(
            kubeconfig or (parent.kubeconfig if parent else None),
            context or (parent.context if parent else None),
            namespace or (parent.namespace if parent else DEFAULT_NAMESPACE),
            output or (parent.output if parent else "table"),
        )
        return fn(ctx, *args, **kw)

    return wrapper


def run(coro: Coroutine[Any, Any, int]) -> None:
    """Runs a command's coroutine; turns errors into a message and exit code 2."""
    try:
        code = asyncio.run(coro)
    except TetherError as e:
        fail(e)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code)


def fail(e: TetherError) -> NoReturn:
    """Prints ``error: …`` and its hint on stderr and exits 2."""
    err.print("[red]error:[/red] " + escape(e.message))
    if e.hint:
        err.print("  [dim]hint:[/dim] " + escape(e.hint))
    sys.exit(EXIT_ERROR)


async def with_engine(ctx: Ctx, fn: Callable[[Engine], Awaitable[int]]) -> int:
    kube = await KubeClient.connect(ctx.kubeconfig, ctx.context)
    try:
        return await fn(Engine(kube))
    finally:
        await kube.close()


# ---- root --------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tether")
# No ``envvar`` on --kubeconfig here or on any command: click would read $KUBECONFIG into the
# command's own option, which then beats a --kubeconfig given before the command. An explicit
# flag must always win; KubeClient.connect falls back to $KUBECONFIG when none is given.
@click.option("--kubeconfig", default=None, help="Path to the kubeconfig.")
@click.option("--context", default=None, help="kubeconfig context to use.")
@click.option(
    "-n",
    "--namespace",
    default=None,
    help=f"Namespace where Applications live (default {DEFAULT_NAMESPACE}).",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json", "yaml"]),
    default=None,
    help="Output format.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log what the engine does.")
@click.pass_context
def cli(
    click_ctx: click.Context,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    output: str | None,
    verbose: bool,
) -> None:
    """tether: GitOps continuous delivery for Kubernetes.

    Git is the source of truth; tether renders what a commit describes, applies it with
    server-side apply, prunes what left Git, and reports drift.
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    click_ctx.obj = Ctx(
        kubeconfig,
        context,
        namespace or DEFAULT_NAMESPACE,
        output or "table",
        namespace_given=namespace is not None,
    )


@cli.command("install-crds")
@common
def install_crds(ctx: Ctx) -> None:
    """Install the Application CRD and create the tether-system namespace."""

    async def go(engine: Engine) -> int:
        for crd in crd_manifests():
            await engine.kube.apply(crd)
            out.print(f"customresourcedefinition/{crd['metadata']['name']} applied")
        await engine.kube.wait_for_resource(API_VERSION, "Application")
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ctx.namespace}}
        await engine.kube.apply(ns)
        out.print(f"namespace/{ctx.namespace} applied")
        return EXIT_OK

    run(with_engine(ctx, go))


# ---- app ---------------------------------------------------------------------------------


@cli.group()
def app() -> None:
    """Create, inspect, diff, sync and delete Applications."""


@app.command("create")
@click.argument("name")
@click.option("--repo", required=True, help="Git repository URL.")
@click.option("--path", "path", default=".", show_default=True, help="Path inside the repo.")
@click.option("--revision", default="HEAD", show_default=True, help="Branch, tag or commit.")
@click.option("--dest-namespace", default="", help="Namespace for namespaced objects.")
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
    auto_sync: bool,
    prune: bool,
    self_heal: bool,
    sync_options: tuple[str, ...],
    upsert: bool,
    force_conflicts: bool,
) -> None:
    """Create an Application NAME from a repo and path."""
    try:
        obj = new_application(
            name,
            ctx.namespace,
            repo_url=repo,
            path=path,
            revision=revision,
            dest_namespace=dest_namespace,
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
def app_list(ctx: Ctx) -> None:
    """List Applications with their sync and health."""

    async def go(engine: Engine) -> int:
        items, _ = await engine.kube.list(API_VERSION, "Application", ctx.namespace)
        if ctx.output in ("json", "yaml"):
            print_obj({"apiVersion": "v1", "kind": "List", "items": items}, ctx.output)
            return EXIT_OK
        rows: list[list[Cell]] = []
        for it in sorted(items, key=lambda o: o["metadata"]["name"]):
            st = it.get("status") or {}
            src = (it.get("spec") or {}).get("source") or {}
            rows.append(
                [
                    it["metadata"]["name"],
                    str((st.get("sync") or {}).get("status", "Unknown")),
                    health_cell(str((st.get("health") or {}).get("status", "Unknown"))),
                    str((st.get("sync") or {}).get("revision") or "")[:10],
                    redact(str(src.get("repoURL", ""))),
                    str(src.get("path", "")),
                ]
            )
        print_table(
            out,
            ("NAME", "SYNC", "HEALTH", "REVISION", "REPO", "PATH"),
            rows,
            whole=("SYNC", "HEALTH", "REVISION"),
        )
        return EXIT_OK

    run(with_engine(ctx, go))


@app.command("get")
@click.argument("name")
@common
def app_get(ctx: Ctx, name: str) -> None:
    """Show an Application: sync, health, revision and its resources."""

    async def go(engine: Engine) -> int:
        a = await engine.get_app(name, ctx.namespace)
        if ctx.output in ("json", "yaml"):
            print_obj(a.obj, ctx.output)
            return EXIT_OK
        print_app(a.obj)
        return EXIT_OK

    run(with_engine(ctx, go))


@app.command("diff")
@click.argument("name")
@click.option("--revision", default=None, help="Compare against this revision instead.")
@click.option("--color/--no-color", default=None, help="Colour the diff (default: on a tty).")
@common
def app_diff(ctx: Ctx, name: str, revision: str | None, color: bool | None) -> None:
    """Show how the cluster differs from Git. Exit 0 in sync, 1 with a diff, 2 on error."""

    async def go(engine: Engine) -> int:
        a = await engine.get_app(name, ctx.namespace)
        cmp = await engine.compare(a, revision)
        if cmp.error is not None:
            raise cmp.error
        diffs = [d for d in cmp.diffs() if d.status != ResourceDiffStatus.SYNCED]
        if ctx.output in ("json", "yaml"):
            print_obj(
                {
                    "revision": cmp.revision,
                    "sync": cmp.sync_status.value,
                    "resources": [
                        {
                            **d.key.to_dict(),
                            "status": d.status.value,
                            "changedPaths": d.changed_paths,
                            "diff": d.diff_text,
                        }
                        for d in diffs
                    ],
                },
                ctx.output,
            )
        elif diffs:
            use_color = sys.stdout.isatty() if color is None else color
            sys.stdout.write(render_diffs(diffs, color=use_color))
            sys.stdout.flush()
        return EXIT_DIFF if diffs else EXIT_OK

    run(with_engine(ctx, go))


@app.command("sync")
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
    "--timeout",
    default=120.0,
    show_default=True,
    help="Seconds to wait for health after applying (0: don't wait).",
)
@common
def app_sync(
    ctx: Ctx,
    name: str,
    revision: str | None,
    dry_run: bool,
    prune: bool | None,
    allow_mass_prune: bool,
    timeout: float,
) -> None:
    """Render, apply, prune (if asked) and wait for health; updates the status."""

    async def go(engine: Engine) -> int:
        a = await engine.get_app(name, ctx.namespace)
        res = await engine.sync(
            a,
            revision=revision,
            prune=bool(prune),
            dry_run=dry_run,
            allow_mass_prune=allow_mass_prune,
        )
        cmp = res.comparison
        if res.ok and not dry_run and timeout > 0 and cmp is not None:
            with err.status(f"waiting up to {timeout:.0f}s for {name} to become healthy"):
                a = await engine.get_app(name, ctx.namespace)
                cmp = await engine.wait_healthy(a, timeout, revision=res.revision)
                await engine.write_status(a, cmp)
        if ctx.output in ("json", "yaml"):
            print_obj(sync_summary(res, cmp), ctx.output)
        else:
            print_sync(res, cmp)
        if not res.ok:
            return EXIT_DIFF
        if (
            cmp is not None
            and not dry_run
            and timeout > 0
            and cmp.health.status not in (HealthStatus.HEALTHY, HealthStatus.SUSPENDED)
        ):
            return EXIT_DIFF
        return EXIT_OK

    run(with_engine(ctx, go))


@app.command("delete")
@click.argument("name")
@click.option(
    "--cascade/--orphan",
    default=True,
    show_default=True,
    help="Also delete the objects the app owns (cascade) or leave them (orphan).",
)
@click.option(
    "--timeout",
    default=120.0,
    show_default=True,
    help="Seconds to wait for a sync the controller is running to end before deleting.",
)
@common
def app_delete(ctx: Ctx, name: str, cascade: bool, timeout: float) -> None:
    """Delete an Application (and, with --cascade, everything it owns)."""

    async def go(engine: Engine) -> int:
        deleted = await delete_application(
            engine, name, ctx.namespace, cascade=cascade, timeout=timeout
        )
        for key in deleted:
            out.print(f"{key} deleted")
        out.print(f"application/{name} deleted")
        return EXIT_OK

    run(with_engine(ctx, go))


@app.command("refresh")
@click.argument("name")
@common
def app_refresh(ctx: Ctx, name: str) -> None:
    """Ask the controller to re-read Git and compare now (a hard refresh)."""

    async def go(engine: Engine) -> int:
        a = await engine.get_app(name, ctx.namespace)
        token = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        await engine.kube.merge_patch(
            a.obj, {"metadata": {"annotations": {REFRESH_ANNOTATION: token}}}
        )
        out.print(f"application/{name} refresh requested ({REFRESH_ANNOTATION}={token})")
        return EXIT_OK

    run(with_engine(ctx, go))


# ---- controller --------------------------------------------------------------------------


def metrics_listener(addr: str) -> dict[str, Any]:
    """``--metrics-addr HOST:PORT`` as RuntimeOptions fields; ValueError when malformed."""
    if not addr:
        return {}
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--metrics-addr {addr!r} must look like HOST:PORT, e.g. 127.0.0.1:9090")
    return {"metrics_host": host.strip("[]") or "0.0.0.0", "metrics_port": int(port)}


@cli.command("controller")
@click.option(
    "--kubeconfig",
    default=None,
    help="kubeconfig (default: the one given before 'controller', $KUBECONFIG, "
    "~/.kube/config, or the in-cluster service account when in a Pod).",
)
@click.option("--context", default=None, help="kubeconfig context to use.")
@click.option(
    "--namespaces",
    default=None,
    help="Comma-separated namespaces whose Applications to manage ('' = all) "
    "[default: $POD_NAMESPACE, else tether-system].",
)
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port for webhooks, /metrics, /healthz and /readyz.",
)
@click.option("--http-host", default="0.0.0.0", show_default=True)
@click.option(
    "--metrics-addr",
    default="",
    metavar="HOST:PORT",
    help="Serve /metrics on this address only, not on --http-port (e.g. 127.0.0.1:9090).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Applications reconciled at once.",
)
@click.option(
    "--audit-db",
    default=str(LOCAL_AUDIT_DB),
    show_default=True,
    help="SQLite file of the audit trail.",
)
@click.option(
    "--cache-dir",
    default=str(Path.home() / ".cache/tether/git"),
    show_default=True,
    help="Where git repositories are cached.",
)
@click.option(
    "--refresh-interval",
    default="3m",
    show_default=True,
    help="Default Git polling interval (per app: annotation tether.dev/refresh-interval).",
)
@click.option(
    "--git-timeout",
    default="60s",
    show_default=True,
    help="How long one git command (ls-remote, fetch) may run before it is stopped.",
)
@click.option(
    "--leader-elect",
    is_flag=True,
    help="Run several replicas; one works at a time (a Lease in the first namespace).",
)
@click.option(
    "--identity", default="", help="Leader-election identity (default: $POD_NAME, else host-pid)."
)
@click.option(
    "--self-heal-limit",
    default="5/10m",
    show_default=True,
    help="Stop correcting an object after N corrections within a window.",
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False),
    default="info",
    show_default=True,
)
def controller_cmd(
    kubeconfig: str | None,
    context: str | None,
    namespaces: str | None,
    http_port: int,
    http_host: str,
    metrics_addr: str,
    workers: int,
    audit_db: str,
    cache_dir: str,
    refresh_interval: str,
    git_timeout: str,
    leader_elect: bool,
    identity: str,
    self_heal_limit: str,
    log_format: str,
    log_level: str,
) -> None:
    """Run the continuous engine: watch, poll, take webhooks, sync, self-heal, audit."""
    from tether.api.application import parse_duration
    from tether.controller.runtime import RuntimeOptions, run_forever, setup_logging

    click_ctx = click.get_current_context()
    group = click_ctx.find_object(Ctx)
    if group is not None:
        # Options given before 'controller' count as if given after it; its own win.
        kubeconfig = kubeconfig or group.kubeconfig
        context = context or group.context
        if group.namespace_given and (
            click_ctx.get_parameter_source("namespaces") == ParameterSource.DEFAULT
        ):
            namespaces = group.namespace
    # In a Pod, its own namespace holds the Applications and the Lease unless told otherwise.
    pod_namespace = os.environ.get("POD_NAMESPACE", "").strip()
    if namespaces is None:
        namespaces = pod_namespace or "tether-system"
    setup_logging(log_format, log_level)
    limit, _, window = self_heal_limit.partition("/")
    if not limit.isdigit():
        err.print("[red]error:[/red] --self-heal-limit must look like 5/10m (corrections/window)")
        sys.exit(EXIT_ERROR)
    try:
        opts = RuntimeOptions(
            kubeconfig=kubeconfig,
            context=context,
            namespaces=[n.strip() for n in namespaces.split(",")] if namespaces else [""],
            http_host=http_host,
            http_port=http_port,
            **metrics_listener(metrics_addr),
            workers=workers,
            audit_db=Path(audit_db),
            cache_dir=Path(cache_dir),
            leader_elect=leader_elect,
            identity=identity or os.environ.get("POD_NAME", ""),
            default_refresh_interval=parse_duration(refresh_interval),
            fight_limit=int(limit),
            fight_window=parse_duration(window or "10m"),
            git_timeout=parse_duration(git_timeout),
            pod_namespace=pod_namespace,
        )
        if opts.git_timeout <= 0:
            raise ValueError(f"--git-timeout must be more than 0, not {git_timeout!r}")
    except (ValueError, TetherError) as e:
        err.print("[red]error:[/red] " + escape(str(e)))
        sys.exit(EXIT_ERROR)

    async def go() -> int:
        try:
            await run_forever(opts)
        except OSError as e:
            if e.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
                raise
            # asyncio names the address in the message: --http-port's or --metrics-addr's.
            bound = re.search(r"address \('([^']*)', (\d+)\)", str(e))
            where = f"{bound[1]}:{bound[2]}" if bound else f"{http_host}:{http_port}"
            raise TetherError(
                f"cannot listen on {where}: {os.strerror(e.errno).lower()}",
                hint="another process holds the port, or the address is not this host's: "
                "choose another --http-port / --http-host (or --metrics-addr)",
            ) from e
        return EXIT_OK

    run(go())


# ---- render ------------------------------------------------------------------------------


@cli.command("render")
@click.option("--repo", required=True, help="Git URL or a local directory.")
@click.option("--path", "path", default=".", show_default=True, help="Path inside the repo.")
@click.option("--revision", default="HEAD", show_default=True, help="Branch, tag or commit.")
@click.option("--recurse", is_flag=True, help="Include subdirectories.")
@click.option("--include", default="", help="Glob of files to include.")
@click.option("--exclude", default="", help="Glob of files to exclude.")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml")
def render_cmd(
    repo: str, path: str, revision: str, recurse: bool, include: str, exclude: str, output: str
) -> None:
    """Print the manifests a repo path renders to (nothing is applied)."""
    opts = DirectoryOptions(recurse=recurse, include=include, exclude=exclude)

    async def go() -> int:
        local = Path(repo)
        if local.is_dir():
            tree = Tree.from_directory(local)
        else:
            from tether.engine import default_cache_dir

            git = GitCache(default_cache_dir())
            commit = await git.resolve(repo, revision, None)
            await git.fetch(repo, None, commit)
            content = git.read_tree(repo, commit, path)
            tree = Tree(files=content.files, symlinks=content.symlinks)
        manifests = render_directory(tree, path, opts)
        objs = [m.obj for m in manifests]
        if output == "json":
            print(json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}, indent=2))
        else:
            sys.stdout.write(yaml.safe_dump_all(objs, sort_keys=False))
        return EXIT_OK

    run(go())


# ---- printing ----------------------------------------------------------------------------


def print_obj(obj: Any, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(obj, indent=2, sort_keys=False, default=str))
    else:
        sys.stdout.write(yaml.safe_dump(obj, sort_keys=False))


_HEALTH_COLOURS = {
    "Healthy": "green",
    "Progressing": "cyan",
    "Degraded": "red",
    "Missing": "yellow",
    "Suspended": "magenta",
}
_RESULT_COLOURS = {"failed": "red", "pruned": "yellow", "created": "green", "configured": "green"}


def health_text(status: str) -> str:
    """``status`` as markup in its colour, for a line of text."""
    colour = _HEALTH_COLOURS.get(status, "white")
    return f"[{colour}]{escape(status)}[/{colour}]"


def health_cell(status: str) -> Text:
    """``status`` in its colour, for a table cell."""
    return styled(status, _HEALTH_COLOURS.get(status))


def print_app(obj: Obj) -> None:
    st = obj.get("status") or {}
    spec = obj.get("spec") or {}
    src = spec.get("source") or {}
    sync = st.get("sync") or {}
    health = st.get("health") or {}
    op = st.get("operationState") or {}
    out.print(f"[bold]Name:[/bold]        {obj['metadata']['namespace']}/{obj['metadata']['name']}")
    out.print(f"[bold]Repo:[/bold]        {redact(str(src.get('repoURL', '')))}")
    out.print(f"[bold]Path:[/bold]        {src.get('path', '.')}")
    out.print(f"[bold]Target:[/bold]      {src.get('targetRevision', 'HEAD')}")
    dest = (spec.get("destination") or {}).get("namespace", "")
    out.print(f"[bold]Destination:[/bold] {dest or '(objects set their own namespace)'}")
    synced_to = str(sync.get("revision") or "")[:10]
    out.print(
        f"[bold]Sync:[/bold]        {escape(str(sync.get('status', 'Unknown')))}"
        + (f" to {escape(synced_to)}" if synced_to else " (never synced)")
    )
    out.print(
        f"[bold]Health:[/bold]      {health_text(health.get('status', 'Unknown'))}"
        + (f" — {escape(str(health['message']))}" if health.get("message") else "")
    )
    if op:
        out.print(
            f"[bold]Last sync:[/bold]   {op.get('phase')} at {op.get('finishedAt', '')}: "
            + escape(str(op.get("message", "")))
        )
    for c in st.get("conditions") or []:
        out.print(
            f"[bold red]Condition:[/bold red]   {c.get('type')}: "
            + escape(str(c.get("message", "")))
        )
    resources = st.get("resources") or []
    if resources:
        rows: list[list[Cell]] = []
        for r in resources:
            h = r.get("health") or {}
            rows.append(
                [
                    str(r.get("group", "")),
                    str(r.get("kind", "")),
                    str(r.get("namespace", "")),
                    str(r.get("name", "")),
                    str(r.get("status", "")),
                    health_cell(str(h["status"])) if h.get("status") else "",
                    str(h.get("message") or r.get("message", "")),
                ]
            )
        out.print()
        print_table(
            out,
            ("GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH", "MESSAGE"),
            rows,
            whole=("KIND", "STATUS", "HEALTH"),
        )


def sync_summary(res: SyncResult, cmp: Comparison | None) -> dict[str, Any]:
    return {
        "phase": res.phase,
        "message": res.message,
        "revision": res.revision,
        "dryRun": res.dry_run,
        "resources": [r.to_dict() for r in res.results],
        "sync": cmp.sync_status.value if cmp else "Unknown",
        "health": cmp.health.status.value if cmp else "Unknown",
    }


def print_sync(res: SyncResult, cmp: Comparison | None) -> None:
    changed = [r for r in res.results if r.action != "unchanged"]
    if changed:
        print_table(
            out,
            ("KIND", "NAMESPACE", "NAME", "RESULT", "MESSAGE"),
            [
                [
                    r.key.kind,
                    r.key.namespace,
                    r.key.name,
                    styled(r.action, _RESULT_COLOURS.get(r.action)),
                    r.message,
                ]
                for r in changed
            ],
            whole=("KIND", "RESULT"),
        )
    colour = "green" if res.ok else "red"
    out.print(
        f"[{colour}]{res.phase}[/{colour}]: {escape(res.message)} "
        f"(revision {res.revision[:10] or 'unknown'})"
    )
    if cmp is not None and not res.dry_run:
        out.print(
            f"Sync: {cmp.sync_status.value}   Health: {health_text(cmp.health.status.value)}"
            + (f" — {escape(cmp.health.message)}" if cmp.health.message else "")
        )


register_audit_commands(cli, app)


def main() -> None:
    try:
        cli(prog_name="tether")
    except TetherError as e:  # raised outside run(), e.g. while validating options
        fail(e)
