"""What every ``tether`` command shares: the consoles, exit codes, ``Ctx`` and the global
options (``common``), running a command (``run``, ``fail``, ``with_engine``) and printing
objects and health."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn

import click
import yaml
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from tether.api.application import DEFAULT_NAMESPACE
from tether.cli.output import styled
from tether.engine import Engine
from tether.errors import TetherError
from tether.kube import KubeClient

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


def health_text(status: str) -> str:
    """``status`` as markup in its colour, for a line of text."""
    colour = _HEALTH_COLOURS.get(status, "white")
    return f"[{colour}]{escape(status)}[/{colour}]"


def health_cell(status: str) -> Text:
    """``status`` in its colour, for a table cell."""
    return styled(status, _HEALTH_COLOURS.get(status))
