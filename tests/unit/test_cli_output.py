"""What the ``tether`` command prints: tables keep one row per line, piped or on a terminal,
and an Application's summary says plainly when it was never synced."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from tether.audit import AuditRecord, SqliteAuditStore
from tether.cli import main as cli_main
from tether.cli.audit_cmds import AUDIT_HEADERS, records_rows
from tether.cli.output import fit_widths, print_table, styled

pytestmark = pytest.mark.unit

LONG = "drift: " + "ConfigMap demo/guestbook-config changed in the cluster by kubectl-patch; " * 8
RECORDS = [
    AuditRecord(
        id=7,
        time="2026-11-26T04:20:19.877Z",
        app="tether-system/guestbook",
        kind="drift",
        revision="9c1e0d4b7f0123456789",
        author="Bob Example <bob@example.com>",
        message=LONG + "\nsecond line of the commit message",
        trigger="watch",
        result="",
    ),
    AuditRecord(
        id=6,
        time="2026-11-26T04:20:12.001Z",
        app="tether-system/guestbook",
        kind="sync",
        revision="9c1e0d4b7f0123456789",
        author="Bob Example <bob@example.com>",
        message="[ci skip] new greeting",
        trigger="webhook",
        result="Succeeded",
    ),
]


def printed(terminal: bool, width: int = 80) -> str:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=terminal, width=width, color_system=None)
    print_table(console, AUDIT_HEADERS, records_rows(RECORDS), whole=("TIME", "KIND", "REVISION"))
    return buf.getvalue()


def test_piped_table_is_one_whole_row_per_line_at_any_width() -> None:
    text = printed(terminal=False, width=80)
    lines = text.splitlines()
    assert len(lines) == 1 + len(RECORDS)
    assert lines[0].split() == list(AUDIT_HEADERS)
    # Nothing cut, nothing wrapped: the whole message, its second line joined with a space.
    assert LONG.strip() + " second line of the commit message" in lines[1]
    assert "…" not in text
    # Markup-looking text is text; grep finds a record by any of its cells on its own line.
    assert [ln for ln in lines if "webhook" in ln] == [lines[2]]
    assert "[ci skip] new greeting" in lines[2]
    assert lines[2].split()[:3] == ["2026-11-26T04:20:12.001Z", "tether-system/guestbook", "sync"]


def test_tether_audit_piped_into_grep_gets_every_record_on_one_line(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with SqliteAuditStore(db) as store:
        for r in reversed(RECORDS):
            store.append(r)
    tether = Path(sys.executable).with_name("tether")
    env = {**os.environ, "COLUMNS": "80"}
    p = subprocess.run(
        [str(tether), "audit", "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 1 + len(RECORDS), p.stdout
    assert "second line of the commit message" in lines[1]
    assert [ln for ln in lines if "kubectl-patch" in ln] == [lines[1]]


def test_terminal_table_cuts_long_cells_with_an_ellipsis_instead_of_wrapping() -> None:
    text = printed(terminal=True, width=120)
    lines = text.splitlines()
    assert len(lines) == 1 + len(RECORDS)
    assert all(len(ln) <= 120 for ln in lines)
    assert lines[1].endswith("…")
    # Columns read whole or not at all stay whole.
    assert "2026-11-26T04:20:19.877Z" in lines[1] and "9c1e0d4b7f" in lines[1]
    assert " drift " in lines[1]


def test_fit_widths_shrinks_the_widest_column_first_and_respects_minimums() -> None:
    assert fit_widths([24, 10, 200], [24, 5, 5], 80) == [24, 10, 80 - 24 - 10 - 4]
    # No room at all: every column at its minimum, never below.
    assert fit_widths([24, 10, 200], [24, 5, 5], 10) == [24, 5, 5]
    assert fit_widths([3, 4], [3, 4], 80) == [3, 4]


def test_styled_cell_keeps_its_text_when_piped() -> None:
    buf = io.StringIO()
    print_table(Console(file=buf, width=20), ["A", "B"], [[styled("Degraded", "red"), "x\r\ny"]])
    assert buf.getvalue().splitlines() == ["A         B", "Degraded  x y"]


def never_synced() -> dict[str, object]:
    return {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": "tether-system"},
        "spec": {"source": {"repoURL": "https://git.example.com/x.git", "path": "app"}},
    }


def test_app_get_of_a_never_synced_app_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(cli_main, "out", Console(file=buf, width=200, color_system=None))
    cli_main.print_app(never_synced())
    sync = [ln for ln in buf.getvalue().splitlines() if ln.startswith("Sync:")]
    assert sync == ["Sync:        Unknown (never synced)"]
