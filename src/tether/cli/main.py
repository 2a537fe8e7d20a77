"""The ``tether`` command's root group: its global options, ``install-crds``, an
Application's summary (``print_app``), and where every other command lives.

The commands live in ``app_cmds``, ``controller_cmd``, ``render_cmd``, ``audit_cmds`` and
``blame_cmds``; what they share, in ``common``. A command's module is imported only when that
command runs (``tether.cli.lazy``): ``tether app list`` does not load the engine, Git, the
audit stores or the HTTP server. ``print_app`` is here, reading this module's ``out``, so
that replacing ``tether.cli.main.out`` redirects it (the unit tests do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from tether import __version__
from tether.api.names import DEFAULT_NAMESPACE

# ``X as X`` marks a re-export: audit_cmds and the tests import those names from this module.
from tether.cli.common import EXIT_OK as EXIT_OK
from tether.cli.common import Ctx as Ctx
from tether.cli.common import common as common
from tether.cli.common import err as err
from tether.cli.common import fail, health_cell, health_text, server_options, set_verbose
from tether.cli.common import out as out
from tether.cli.common import print_obj as print_obj
from tether.cli.common import run as run
from tether.cli.common import with_engine as with_engine
from tether.cli.lazy import Lazy, LazyGroup
from tether.cli.output import Cell, escape, print_table
from tether.errors import TetherError

if TYPE_CHECKING:
    from tether.engine import Engine
    from tether.model import Obj

COMMANDS = {
    "app": Lazy("tether.cli.app_cmds:app", "Create, inspect, diff, sync and delete Applications."),
    "audit": Lazy(
        "tether.cli.audit_cmds:audit_command",
        "Show the audit trail: syncs, drift, corrections, prunes, rollbacks, pins and "
        "deletions, newest first. 'tether audit export' writes it all as JSON lines.",
    ),
    "blame": Lazy(
        "tether.cli.blame_cmds:blame_command",
        "Show which commit set each field of an object the app manages.",
    ),
    "controller": Lazy(
        "tether.cli.controller_cmd:controller_cmd",
        "Run the continuous engine: watch, poll, take webhooks, sync, self-heal, audit.",
    ),
    "render": Lazy(
        "tether.cli.render_cmd:render_cmd",
        "Print the manifests a repo path renders to (nothing is applied).",
    ),
}
"""The root group's commands but ``install-crds``, imported when run (``tether.cli.lazy``)."""


def __getattr__(name: str) -> Any:
    # ``from tether.cli.main import controller_cmd`` still works, importing it then.
    if name == "controller_cmd":
        from tether.cli.controller_cmd import controller_cmd

        return controller_cmd
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---- root --------------------------------------------------------------------------------


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
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
@server_options
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
    set_verbose(click_ctx, verbose)  # logging is configured as the command runs
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
    """Install the Application and Project CRDs and create the tether-system namespace."""
    from tether.api.application import API_VERSION, crd_manifests

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


# ---- printing ----------------------------------------------------------------------------


def print_app(obj: Obj) -> None:
    from tether.source.credentials import redact  # Git's package: not for every command

    st = obj.get("status") or {}
    spec = obj.get("spec") or {}
    src = spec.get("source") or {}
    sync = st.get("sync") or {}
    health = st.get("health") or {}
    op = st.get("operationState") or {}
    out.print(f"[bold]Name:[/bold]        {obj['metadata']['namespace']}/{obj['metadata']['name']}")
    if isinstance(spec.get("sources"), list):
        out.print(f"[bold]Sources:[/bold]     {len(spec['sources'])} (listed below)")
    else:
        types = st.get("sourceTypes") or []
        kind = f" ({escape(str(types[0]))})" if types and types[0] else ""
        out.print(f"[bold]Repo:[/bold]        {redact(str(src.get('repoURL', '')))}")
        if src.get("chart"):
            out.print(f"[bold]Chart:[/bold]       {escape(str(src['chart']))}{kind}")
        else:
            out.print(f"[bold]Path:[/bold]        {escape(str(src.get('path', '.')))}{kind}")
        out.print(f"[bold]Target:[/bold]      {src.get('targetRevision', 'HEAD')}")
    dest = (spec.get("destination") or {}).get("namespace", "")
    out.print(f"[bold]Destination:[/bold] {dest or '(objects set their own namespace)'}")
    out.print(f"[bold]Project:[/bold]     {escape(str(spec.get('project') or 'default'))}")
    synced_to = str(sync.get("revision") or "")[:10]
    out.print(
        f"[bold]Sync:[/bold]        {escape(str(sync.get('status', 'Unknown')))}"
        + (f" to {escape(synced_to)}" if synced_to else " (never synced)")
    )
    from tether.cli.pin_text import pin_line  # a pinned app says so right under its sync

    if pinned := pin_line(obj):
        out.print(f"[bold yellow]Pinned:[/bold yellow]      {escape(pinned)}")
    out.print(
        f"[bold]Health:[/bold]      {health_text(health.get('status', 'Unknown'))}"
        + (f" — {escape(str(health['message']))}" if health.get("message") else "")
    )
    windows = st.get("syncWindows") or {}
    if windows:
        verdict = "allowed" if windows.get("syncAllowed") else "denied"
        nxt = windows.get("next") or {}
        after = f"; next: {nxt.get('kind')} window at {nxt.get('start')}" if nxt else ""
        out.print(
            f"[bold]Windows:[/bold]     {verdict}: "
            + escape(str(windows.get("message", "")) + after)
        )
    if op.get("phase") in ("Running", "Terminating"):
        where = "pruning" if op.get("pruning") else f"{op.get('syncPhase')} wave {op.get('wave')}"
        out.print(
            f"[bold]Operation:[/bold]   {op.get('phase')} since {op.get('startedAt', '')}, "
            f"at {escape(where)}, run by {escape(str(op.get('runBy') or '?'))}"
            + (f": {escape(str(op['message']))}" if op.get("message") else "")
        )
    elif op:
        by = f" by {escape(str(op['runBy']))}" if op.get("runBy") else ""
        out.print(
            f"[bold]Last sync:[/bold]   {op.get('phase')} at {op.get('finishedAt', '')}{by}: "
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


# ---- entry point -------------------------------------------------------------------------


def main() -> None:
    try:
        cli(prog_name="tether")
    except TetherError as e:  # raised outside run(), e.g. while validating options
        fail(e)
