"""What every ``tether`` command shares: the consoles, exit codes, ``Ctx`` and the global
options (``common``, and ``server_options`` for ``--server``), running a command (``run``,
``fail``, ``with_engine``) and printing objects and health.

With ``--server URL`` (or ``$TETHER_SERVER``) a command talks to tether's HTTP API instead of
the Kubernetes API. A command that can is marked ``@over_api`` (or has an implementation in
``REMOTE``, by its path); every other one refuses with exit 2 rather than silently using the
kubeconfig."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from tether.api.names import DEFAULT_NAMESPACE
from tether.cli.output import LazyConsole, Styled, escape, styled
from tether.errors import KubeError, TetherError

if TYPE_CHECKING:
    from tether.client.http import ServerOptions
    from tether.client.reading import ApiReader
    from tether.engine import Engine
    from tether.kube import KubeClient
    from tether.kube.oneshot import OneShot

T = TypeVar("T")

# What a command needs is imported where it is needed, so that each command loads only its
# own dependencies (tether.cli.lazy); this module is imported by every one of them.

# Piped output is read by people too (CI logs, `| less`): give tables room rather than
# truncating every column to fit 80 characters.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))
out = LazyConsole(highlight=False, soft_wrap=True, width=_WIDTH)
err = LazyConsole(stderr=True, highlight=False, soft_wrap=True)

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
        server: ServerOptions | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.context = context
        self.namespace = namespace
        self.output = output
        self.namespace_given = namespace_given
        self.server = server
        """``--server``: talk to tether's HTTP API, not to the Kubernetes API."""


# ---- --server ----------------------------------------------------------------------------

_SERVER_META = "tether.server"
_API_CAPABLE = "__tether_over_api__"
REMOTE: dict[str, Callable[..., Any]] = {}
"""Commands implemented apart for ``--server``, by path (``"app history"``): called with the
command's direct implementation and ``Ctx`` first, then the command's own arguments."""


def over_api(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a command (under ``@common``) that works with ``--server`` itself."""
    setattr(fn, _API_CAPABLE, True)
    return fn


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def store(click_ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        click_ctx.meta.setdefault(_SERVER_META, {})[key] = value
        return value

    return store


def server_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The root group's ``--server``, ``--token``, ``--insecure-skip-tls-verify`` and
    ``--certificate-authority``. They reach commands through ``Ctx.server``; a top-level
    command (not a group) refuses them, as none of those talks to the API."""
    opts = [
        click.option(
            "--server",
            envvar="TETHER_SERVER",
            default=None,
            metavar="URL",
            expose_value=False,
            callback=_remember("url"),
            help="Talk to tether's HTTP API at URL (the controller's port, or an ingress) "
            "instead of the Kubernetes API (default $TETHER_SERVER). See 'Talking to the API' "
            "in docs/cli.md.",
        ),
        click.option(
            "--token",
            envvar="TETHER_TOKEN",
            default=None,
            expose_value=False,
            callback=_remember("token"),
            help="With --server: the bearer token to send (default $TETHER_TOKEN, else the "
            "kubeconfig user's token).",
        ),
        click.option(
            "--insecure-skip-tls-verify",
            is_flag=True,
            expose_value=False,
            callback=_remember("insecure"),
            help="With an https --server: do not check its certificate (a test setup only).",
        ),
        click.option(
            "--certificate-authority",
            type=click.Path(exists=True, dir_okay=False),
            default=None,
            expose_value=False,
            callback=_remember("ca_file"),
            help="With an https --server: the PEM file of the CA that signed its certificate.",
        ),
    ]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        result = fn(*args, **kw)
        click_ctx = click.get_current_context()
        sub = click_ctx.invoked_subcommand
        group = click_ctx.command
        if server_given(click_ctx) is not None and sub and isinstance(group, click.Group):
            command = group.get_command(click_ctx, sub)
            if command is not None and not isinstance(command, click.Group):
                fail(not_over_api(sub))
        return result

    for opt in reversed(opts):
        wrapper = opt(wrapper)
    return wrapper


def server_given(click_ctx: click.Context) -> ServerOptions | None:
    """The ``--server`` options given, or None without ``--server``."""
    given = click_ctx.meta.get(_SERVER_META) or {}
    if not given.get("url"):
        return None
    from tether.client.http import ServerOptions

    return ServerOptions(
        url=str(given["url"]),
        token=given.get("token") or None,
        insecure=bool(given.get("insecure")),
        ca_file=given.get("ca_file") or None,
    )


def not_over_api(path: str) -> TetherError:
    return TetherError(
        f"'tether {path}' talks to the Kubernetes API; it is not available with --server",
        hint="run it without --server (and without $TETHER_SERVER), with a kubeconfig that "
        "reaches the cluster",
    )


def _command_path(click_ctx: click.Context) -> str:
    """``app sync``: the command's path below the root group."""
    names: list[str] = []
    c: click.Context | None = click_ctx
    while c is not None and c.parent is not None:
        names.append(c.info_name or "")
        c = c.parent
    return " ".join(reversed(names))


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
        click_ctx = click.get_current_context()
        parent = click_ctx.find_object(Ctx)
        ctx = Ctx(
            kubeconfig or (parent.kubeconfig if parent else None),
            context or (parent.context if parent else None),
            namespace or (parent.namespace if parent else DEFAULT_NAMESPACE),
            output or (parent.output if parent else "table"),
            server=server_given(click_ctx),
        )
        if ctx.server is None or getattr(fn, _API_CAPABLE, False):
            return fn(ctx, *args, **kw)
        path = _command_path(click_ctx)
        from tether.cli import remote_cmds  # fills REMOTE

        remote_cmds.register()
        remote = REMOTE.get(path)
        if remote is None:
            fail(not_over_api(path))
        return remote(fn, ctx, *args, **kw)

    return wrapper


_VERBOSE = "tether.verbose"


def set_verbose(click_ctx: click.Context, verbose: bool) -> None:
    """``-v``: remembered for ``configure_logging``, which the command runs."""
    click_ctx.meta[_VERBOSE] = verbose


def configure_logging() -> None:
    """Log warnings (with ``-v``: what the engine does) as ``LEVEL logger: message``. Done
    as a command starts its work rather than at start-up, so that a one-shot command that
    logs nothing does not import ``logging``."""
    import logging

    click_ctx = click.get_current_context(silent=True)
    verbose = bool(click_ctx and click_ctx.meta.get(_VERBOSE))
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def run(coro: Coroutine[Any, Any, int]) -> NoReturn:
    """Runs a command's coroutine; turns errors into a message and exit code 2."""
    import asyncio  # here: the commands of the one-shot client (run_now) need no event loop

    configure_logging()
    _finish(lambda: asyncio.run(coro))


def run_now(fn: Callable[[], int]) -> NoReturn:
    """Runs a command's body without an event loop (the one-shot client's commands); turns
    errors into a message and exit code 2. ``logging`` is configured only with ``-v``."""
    click_ctx = click.get_current_context(silent=True)
    if click_ctx and click_ctx.meta.get(_VERBOSE):
        configure_logging()
    _finish(fn)


def _finish(fn: Callable[[], int]) -> NoReturn:
    try:
        code = fn()
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


def with_oneshot(ctx: Ctx, fn: Callable[[OneShot], T]) -> T:
    """Runs ``fn`` with the one-shot client (``tether.kube.oneshot``) of the cluster ``ctx``
    names, closed after: for a command of a few reads, with no event loop."""
    from tether.kube.oneshot import OneShot

    with OneShot.connect(ctx.kubeconfig, ctx.context) as kube:
        return fn(kube)


def with_api_now(ctx: Ctx, fn: Callable[[ApiReader], T]) -> T:
    """Runs ``fn`` with a reader of tether's API (``--server`` must be given), closed after:
    for a command of a read or two, with no event loop."""
    from tether.client.http import ApiClient
    from tether.client.reading import ApiReader

    assert ctx.server is not None
    with ApiClient(with_token(ctx, ctx.server)) as api:
        return fn(ApiReader(api))


def with_token(ctx: Ctx, options: ServerOptions) -> ServerOptions:
    """``options`` with a token: ``--token``/``$TETHER_TOKEN``, else the bearer token of the
    kubeconfig's user (a token, or an exec plugin's). Without any, none is sent and the
    server's 401 says what to do."""
    if options.token:
        return options
    from tether.client.http import ServerOptions
    from tether.kube.config import load_config

    try:
        token = load_config(ctx.kubeconfig, ctx.context).auth.current().token
    except KubeError:
        return options
    return ServerOptions(options.url, token or None, options.insecure, options.ca_file)


async def connect_kube(ctx: Ctx) -> KubeClient:
    """The async client of the cluster ``ctx`` names, for a command: its requests go through
    ``tether.kube.threaded`` (no aiohttp to import). Close it after."""
    from tether.kube.threaded import ThreadedKubeClient

    return await ThreadedKubeClient.connect(ctx.kubeconfig, ctx.context)


async def with_kube(ctx: Ctx, fn: Callable[[KubeClient], Awaitable[int]]) -> int:
    """Runs ``fn`` with a client of the Kubernetes API that ``ctx`` names, closed after."""
    kube = await connect_kube(ctx)
    try:
        return await fn(kube)
    finally:
        await kube.close()


async def with_engine(ctx: Ctx, fn: Callable[[Engine], Awaitable[int]]) -> int:
    """Runs ``fn`` with an engine over the Kubernetes API that ``ctx`` names."""
    from tether.engine import Engine

    return await with_kube(ctx, lambda kube: fn(Engine(kube)))


# ---- printing ----------------------------------------------------------------------------


def print_obj(obj: Any, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(obj, indent=2, sort_keys=False, default=str))
    else:
        import yaml

        sys.stdout.write(yaml.safe_dump(obj, sort_keys=False))


_HEALTH_COLOURS = {
    "Healthy": "green",
    "Progressing": "cyan",
    "Degraded": "red",
    "Missing": "yellow",
    "Suspended": "magenta",
}


def health_text(status: str) -> str:
    """``status`` as markup in its colour, for a line of text."""
    colour = _HEALTH_COLOURS.get(status, "white")
    return f"[{colour}]{escape(status)}[/{colour}]"


def health_cell(status: str) -> Styled:
    """``status`` in its colour, for a table cell."""
    return styled(status, _HEALTH_COLOURS.get(status))
