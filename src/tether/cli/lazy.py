"""Click groups whose commands are imported only when one runs (``LazyGroup``).

A command's module brings its dependencies (the engine, Git, the audit stores, the HTTP
server); importing every one at start-up would make ``tether app list`` pay for all of them.
A ``LazyGroup`` holds, per command name, where the command lives (``"module:attr"``) and the
first paragraph of its help, so ``--help`` lists every command without importing any. The
attribute is a ``click.Command``, or a function without arguments returning one.
``tests/unit/test_cli_lazy.py`` checks that each entry's help is the command's own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class Lazy:
    """Where a command lives (``"tether.cli.app_cmds:app"``) and the first paragraph of its
    help, for the list of commands."""

    target: str
    help: str


def load(target: str) -> click.Command:
    """The command at ``target`` (``"module:attr"``), importing its module."""
    module_name, _, attr = target.partition(":")
    found: Any = getattr(importlib.import_module(module_name), attr)
    cmd = found() if callable(found) and not isinstance(found, click.Command) else found
    if not isinstance(cmd, click.Command):
        raise TypeError(f"{target} is not a click command")
    return cmd


class LazyGroup(click.Group):
    """A ``click.Group`` that imports a command's module when the command is looked up
    (to run it, or for its own ``--help``), not before."""

    def __init__(self, *args: Any, lazy: Mapping[str, Lazy] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.lazy: dict[str, Lazy] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = self.commands.get(cmd_name)
        if cmd is None and cmd_name in self.lazy:
            cmd = load(self.lazy[cmd_name].target)
            self.add_command(cmd, cmd_name)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As ``click.Group.format_commands``, describing a command not yet imported by its
        entry instead of importing it."""
        rows: list[tuple[str, Callable[[int], str]]] = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name)
            if cmd is None:
                cmd = click.Command(name, help=self.lazy[name].help)
            if not cmd.hidden:
                rows.append((name, cmd.get_short_help_str))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, short(limit)) for name, short in rows])
