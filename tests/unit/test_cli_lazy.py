"""The ``tether`` command loads a command's module only when that command runs: the lazy
tables describe every command as the command itself does, and ``--help`` and the modules
``tether app list``/``get`` need import none of the heavy parts (engine, Git, audit, server).
"""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from tether.cli import app_cmds, main
from tether.cli.lazy import Lazy, LazyGroup, load

pytestmark = pytest.mark.unit

TABLES = {"tether": main.COMMANDS, "tether app": app_cmds.COMMANDS}
ENTRIES = [(group, name, entry) for group, t in TABLES.items() for name, entry in t.items()]

# Loaded by a command that needs them, never by --help nor by `app list` or `app get`.
HEAVY = (
    "tether.engine",
    "tether.compare",
    "tether.desired",
    "tether.sync.apply",
    "tether.render",
    "tether.audit",
    "tether.server",
    "tether.controller.runtime",
    "tether.pin",
    "tether.service.applications",
    "tether.cli.audit_cmds",
    "tether.cli.operation_cmds",
    "tether.cli.controller_cmd",
    "tether.cli.render_cmd",
)


@pytest.mark.parametrize(("group", "name", "entry"), ENTRIES, ids=lambda v: str(v)[:40])
def test_each_entry_is_its_command_and_its_help(group: str, name: str, entry: Lazy) -> None:
    cmd = load(entry.target)
    assert cmd.name == name, f"{group} {name}: {entry.target} is named {cmd.name}"
    listed = click.Command(name, help=entry.help)
    for limit in (30, 45, 80, 200):
        assert listed.get_short_help_str(limit) == cmd.get_short_help_str(limit), (
            f"'{group} {name}': the table's help differs from the command's docstring; "
            f"copy its first paragraph into {group}'s COMMANDS"
        )


def test_the_groups_are_lazy_and_list_every_command() -> None:
    assert isinstance(main.cli, LazyGroup)
    assert isinstance(app_cmds.app, LazyGroup)
    ctx = click.Context(main.cli)
    assert main.cli.list_commands(ctx) == sorted(
        ["app", "audit", "blame", "controller", "install-crds", "render"]
    )
    app_ctx = click.Context(app_cmds.app)
    assert set(app_cmds.app.list_commands(app_ctx)) >= {
        *app_cmds.COMMANDS,
        "list",
        "get",
        "diff",
        "create",
        "apply",
        "delete",
        "refresh",
    }


def test_an_unknown_name_is_no_command() -> None:
    group = LazyGroup("g", lazy={"x": Lazy("tether.cli.app_cmds:app", "X.")})
    assert group.get_command(click.Context(group), "y") is None
    assert group.get_command(click.Context(group), "x") is app_cmds.app


def test_a_target_that_is_no_command_is_refused() -> None:
    with pytest.raises(TypeError, match="not a click command"):
        load("tether.cli.common:DEFAULT_NAMESPACE")


def _modules_after(code: str) -> tuple[set[str], str]:
    """The ``tether``/``pygit2`` modules a fresh interpreter holds after ``code``, and what
    ``code`` printed."""
    script = (
        "import io, json, sys, contextlib\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + "print(json.dumps([sorted(sys.modules), buf.getvalue()]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    modules, printed = json.loads(done.stdout)
    return set(modules), printed


def test_help_imports_no_command_module() -> None:
    modules, printed = _modules_after(
        "from tether.cli.main import cli\n"
        "try:\n"
        "    cli(['--help'], prog_name='tether')\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    for name in main.COMMANDS:
        assert name in printed
    assert not {m for m in modules if m.startswith(HEAVY)}, "--help imported heavy modules"
    assert "tether.cli.app_cmds" not in modules


def test_what_app_list_and_get_run_imports_nothing_heavy() -> None:
    modules, _ = _modules_after(
        "from tether.cli.main import cli\n"
        "from tether.cli.lazy import load\n"
        "load('tether.cli.app_cmds:app')\n"
        "import tether.cli.backend, tether.service.reading, tether.service.documents\n"
        "import tether.cli.pin_text\n"
    )
    assert "tether.cli.app_cmds" in modules
    heavy = sorted(m for m in modules if m.startswith(HEAVY))
    assert not heavy, f"app list/get would import {heavy}"
