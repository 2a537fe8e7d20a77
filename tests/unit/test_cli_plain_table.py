"""A table piped into another program is written without rich, and is byte for byte what rich
writes for it; a table rich would print otherwise (a wide character, a tab, a line break, a
control character) is left to rich; a terminal, ``FORCE_COLOR`` or ``TTY_COMPATIBLE=1`` get
rich's output, colours included."""

from __future__ import annotations

import io
import random
import subprocess
import sys

import pytest
from rich.console import Console

from tether.cli.output import (
    LazyConsole,
    escape,
    piped_plain,
    plain_lines,
    plain_markup,
    print_table,
    styled,
)

pytestmark = pytest.mark.unit

HEADERS = ("NAME", "PROJECT", "SYNC", "HEALTH", "REVISION", "REPO", "PATH")


def by_rich(rows: list[list[object]]) -> str:
    buf = io.StringIO()
    print_table(Console(file=buf, width=160, highlight=False, soft_wrap=True), HEADERS, rows)  # type: ignore[arg-type]
    return buf.getvalue()


def by_plain(rows: list[list[object]]) -> str | None:
    lines = plain_lines(HEADERS, rows)  # type: ignore[arg-type]
    return None if lines is None else "".join(line + "\n" for line in lines)


def test_random_ascii_tables_are_written_as_rich_writes_them() -> None:
    rng = random.Random(12)
    alphabet = "abcXYZ019 -_./:@[]()*~"
    for _ in range(300):
        rows: list[list[object]] = []
        for _ in range(rng.randint(0, 4)):
            cells: list[object] = []
            for _ in HEADERS:
                text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
                cells.append(
                    styled(text, rng.choice([None, "green", "red"])) if rng.random() < 0.3 else text
                )
            rows.append(cells)
        assert by_plain(rows) == by_rich(rows), rows


@pytest.mark.parametrize(
    "cell", ["日本", "a\tb", "two\nlines", "cr\r", "bell\x07", "é", "[bold]x[/bold] ", " "]
)
def test_cells_rich_would_change_or_measure_otherwise(cell: str) -> None:
    rows: list[list[object]] = [
        ["web", "default", "Synced", styled("Healthy", "green"), "abc", "r", cell]
    ]
    plain = by_plain(rows)
    assert plain is None or plain == by_rich(rows)
    if not (cell.isascii() and cell.isprintable()):
        assert plain is None  # left to rich


def run_listing(env: dict[str, str]) -> str:
    code = (
        "import sys\n"
        "from tether.cli.common import out, health_cell\n"
        "from tether.cli.output import print_table\n"
        "print_table(out, ('NAME', 'HEALTH'), [['web', health_cell('Healthy')]])\n"
        "sys.stdout.write(repr(sorted(m for m in sys.modules if m == 'rich.console')))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout


def test_a_piped_table_loads_no_rich_and_a_forced_terminal_gets_colours() -> None:
    base = {"PATH": "/usr/bin:/bin", "COLUMNS": "80"}
    assert run_listing(base) == "NAME  HEALTH\nweb   Healthy\n[]"
    forced = run_listing({**base, "FORCE_COLOR": "1"})
    assert "\x1b[32mHealthy" in forced and forced.endswith("['rich.console']")
    tty = run_listing({**base, "TTY_COMPATIBLE": "1"})
    assert "\x1b[1mNAME" in tty and tty.endswith("['rich.console']")


def test_a_console_made_already_or_of_stderr_prints_through_rich() -> None:
    err = LazyConsole(stderr=True)
    made = LazyConsole()
    _ = made.console
    for console in (err, made):
        assert piped_plain(console) is False


def rich_print(markup: str) -> str:
    buf = io.StringIO()
    Console(file=buf, width=80, highlight=False, soft_wrap=True).print(markup)
    return buf.getvalue()


def test_random_markup_lines_are_written_as_rich_writes_them() -> None:
    rng = random.Random(7)
    words = [
        "Name:",
        "Sync:",
        "[bold]",
        "[/bold]",
        "[red]",
        "[/red]",
        "[bold yellow]",
        "[/bold yellow]",
        "[dim]",
        "[/dim]",
        " ",
        "  ",
        "10:00:00Z",
        ":smile:",
        ":x:",
        "a:b",
        ":warning:",
        "[1]",
        "[",
        "]",
        "(",
        "x",
        "—",
        "日本",
        "é",
        "😄",
        "\u200d",
        "\x1b[1m",
        "\\[",
        "\t",
        ":",
        "ns/app",
    ]
    for _ in range(2000):
        parts = [rng.choice(words) for _ in range(rng.randint(0, 8))]
        markup = "".join(parts)
        try:
            expected = rich_print(markup)
        except Exception:
            continue
        plain = plain_markup(markup)
        assert plain is None or plain + "\n" == expected, markup


def test_app_get_lines_piped_are_written_without_rich() -> None:
    line = "[bold]Last sync:[/bold]   Succeeded at 2026-11-28T10:00:00Z by alice: synced"
    assert plain_markup(line) == "Last sync:   Succeeded at 2026-11-28T10:00:00Z by alice: synced"
    assert plain_markup("[bold]Health:[/bold]      [green]Healthy[/green]") == (
        "Health:      Healthy"
    )
    assert plain_markup("message with :smile: in it") is None  # rich makes it an emoji
    assert plain_markup("an escaped \\[tag]") is None


def test_escape_is_richs_escape() -> None:
    from rich.markup import escape as rich_escape

    rng = random.Random(3)
    pieces = ["[", "]", "[bold]", "[/]", "[1]", "\\", "\\\\", "[@click]", "[#fff]", "x", " ", "a]"]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 7)))
        assert escape(text) == rich_escape(text), text
        assert rich_print(escape(text)) == rich_print(rich_escape(text))
