"""Tables the ``tether`` command prints: one row per line, always.

Piped output (``tether audit | grep``, CI logs) is read by programs as much as by people, so
every row is one line with every cell whole, whatever its length. On a terminal, a row that
does not fit is cut with an ellipsis rather than wrapped into several lines; ``-o json``
gives every value in full.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

# rich is imported when something is printed through it: a table piped into another program
# (``tether app list | grep``), plain text, is written without it (``print_table``).

Cell: TypeAlias = "str | Styled | Text"
"""A cell: plain text (never read as markup, so ``[ci skip]`` stays as it is), text in a
style (``styled``), or rich ``Text``."""

GAP = "  "


class Styled:
    """A cell's text and its style (a colour), made into rich ``Text`` when printed to a
    terminal."""

    __slots__ = ("style", "text")

    def __init__(self, text: str, style: str | None) -> None:
        self.text = text
        self.style = style or ""

    def __repr__(self) -> str:
        return f"Styled({self.text!r}, {self.style!r})"


def styled(text: str, style: str | None) -> Styled:
    """``text`` in ``style`` (a colour) when there is one."""
    return Styled(text, style)


_ESCAPABLE = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def escape(markup: str) -> str:
    """``markup`` printed as it is, never read as markup: ``rich.markup.escape`` (rich 15),
    without importing rich (``tests/unit/test_cli_plain_table.py`` holds them equal)."""

    def escape_backslashes(match: re.Match[str]) -> str:
        backslashes, text = match.groups()
        return f"{backslashes}{backslashes}\\{text}"

    markup = _ESCAPABLE.sub(escape_backslashes, markup)
    if markup.endswith("\\") and not markup.endswith("\\\\"):
        return markup + "\\"
    return markup


class LazyConsole:
    """A rich ``Console`` made on first use, with these arguments: importing rich costs a
    command that prints nothing through it (a piped table, JSON) more than its request."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.made: Console | None = None

    @property
    def console(self) -> Console:
        if self.made is None:
            from rich.console import Console

            self.made = Console(**self.options)
        return self.made

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)

    def print(self, *objects: Any, **options: Any) -> None:
        """``Console.print``; a line of markup piped into another program is written as
        rich would write it (``plain_markup``) without making the console."""
        if not options and len(objects) <= 1 and piped_plain(self):
            line = plain_markup(objects[0]) if objects and isinstance(objects[0], str) else None
            if line is not None or not objects:
                sys.stdout.write((line or "") + "\n")
                return
        self.console.print(*objects, **options)


def piped_plain(console: Console | LazyConsole) -> bool:
    """Whether ``console`` is a ``LazyConsole`` of stdout not yet made that rich would treat
    as no terminal (``Console.is_terminal``: not a tty, no ``TTY_COMPATIBLE=1``, no
    ``FORCE_COLOR``): it would print plain text, styles dropped."""
    if not isinstance(console, LazyConsole) or console.made is not None:
        return False
    if console.options.get("stderr") or "file" in console.options:
        return False
    if os.environ.get("TTY_COMPATIBLE") == "1" or os.environ.get("FORCE_COLOR"):
        return False
    isatty = getattr(sys.stdout, "isatty", None)
    return isatty is not None and not isatty()


_TAGS = re.compile(r"((\\*)\[([a-z#/@][^[]*?)])")
"""``rich.markup.RE_TAGS``: a markup tag."""
_EMOJI_CODES = re.compile(r"(:(\S*?)(?:(?:\-)(emoji|text))?:)")
"""What rich reads as an emoji code (``rich._emoji_replace``) when its name is one."""


def plain_markup(markup: str) -> str | None:
    """The text rich prints, styles dropped, for a line of ``markup`` that is printable (no
    control character or tab for rich to strip or expand) with no backslash (so no escaped
    bracket: every tag is one of ours) and no emoji code rich knows; None for any other
    line, which rich prints."""
    if not markup.isprintable() or "\\" in markup:
        return None
    segments = _TAGS.split(markup)[::4]  # the text between tags (split adds 3 groups each)
    for segment in segments:  # rich replaces emoji codes within each one
        for code in _EMOJI_CODES.finditer(segment):
            from rich._emoji_codes import EMOJI

            if code.group(2).lower() in EMOJI:
                return None
    return "".join(segments)


def plain_lines(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> list[str] | None:
    """The lines ``print_table`` prints when piped, made without rich, for a table whose
    every cell is printable ASCII on one line (one character is one column; nothing to
    strip, expand or join); None for any other table, which rich prints."""
    table: list[list[str]] = [list(headers)]
    for row in rows:
        cells: list[str] = []
        for cell in row:
            text = cell.text if isinstance(cell, Styled) else cell
            if not isinstance(text, str) or not (text.isascii() and text.isprintable()):
                return None
            cells.append(text)
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    last = len(headers) - 1
    return [
        GAP.join(
            c if i == last else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in table
    ]


def one_line(cell: Cell) -> Text:
    """The cell as ``Text`` on one line: a line break (a commit message's body, a
    multi-line health message) becomes a space."""
    from rich.text import Text

    if isinstance(cell, Styled):
        text = Text(cell.text, style=cell.style)
    else:
        text = cell.copy() if isinstance(cell, Text) else Text(cell)
    # Text.replace is not in rich's API; rebuild from the plain text keeping one style.
    if "\n" in text.plain or "\r" in text.plain:
        flat = " ".join(text.plain.split())
        return Text(flat, style=text.style)
    return text


def fit_widths(widths: Sequence[int], minimums: Sequence[int], room: int) -> list[int]:
    """Column widths that fit in ``room`` characters (gaps included): the widest column
    gives way first, so short columns such as times and kinds stay whole; no column goes
    below its minimum (the table is then wider than ``room``)."""
    out = list(widths)
    excess = sum(out) + len(GAP) * (len(out) - 1) - room
    while excess > 0:
        i = max(range(len(out)), key=lambda k: out[k] - minimums[k])
        if out[i] <= minimums[i]:
            break
        # Down to the next widest column at once, not one character per pass.
        others = [out[k] for k in range(len(out)) if k != i] or [0]
        step = min(excess, out[i] - minimums[i], max(out[i] - max(others), 1))
        out[i] -= step
        excess -= step
    return out


def print_table(
    console: Console | LazyConsole,
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    whole: Sequence[str] = (),
) -> None:
    """Prints ``rows`` under ``headers``, one line each (see the module docstring). On a
    terminal, the columns named in ``whole`` (times, kinds, revisions: read whole or not at
    all) are never cut."""
    plain = plain_lines(headers, rows) if piped_plain(console) else None
    if plain is not None:  # what rich prints for it, byte for byte (tests/unit/test_cli_output)
        sys.stdout.write("".join(line + "\n" for line in plain))
        return
    from rich.text import Text

    lines = [[Text(h, style="bold") for h in headers]]
    lines += [[one_line(c) for c in row] for row in rows]
    widths = [max(r[i].cell_len for r in lines) for i in range(len(headers))]
    if console.is_terminal:
        minimums = [
            w if h in whole else min(w, max(len(h), 5))
            for w, h in zip(widths, headers, strict=True)
        ]
        widths = fit_widths(widths, minimums, console.width)
    for row in lines:
        line = Text()
        for i, (cell, width) in enumerate(zip(row, widths, strict=True)):
            if i:
                line.append(GAP)
            if cell.cell_len > width:
                cell.truncate(width, overflow="ellipsis")
            if i < len(row) - 1:
                cell.pad_right(width - cell.cell_len)
            line.append_text(cell)
        line.rstrip()
        # Never wrapped: a piped row is whole, a terminal row was cut to fit above.
        console.print(line, soft_wrap=True, no_wrap=True, overflow="ignore", crop=False)


SOURCE_HEADERS = ("#", "REPO", "PATH/CHART", "TARGET", "TYPE", "REVISION")


def source_rows(obj: dict[str, Any]) -> list[list[Cell]]:
    """One row per source of an Application written with ``spec.sources`` (none for one
    with ``spec.source``): its repository (credentials masked), path or chart (or
    ``$<ref>`` for a source that only lends its files), the revision asked for, the render
    type detected and the revision last compared (a commit or a chart version)."""
    spec = obj.get("spec") or {}
    sources = spec.get("sources")
    if not isinstance(sources, list) or not sources:
        return []
    from tether.source import redact  # Git's package: only for an app of several sources

    st = obj.get("status") or {}
    revisions = list((st.get("sync") or {}).get("revisions") or [])
    types = list(st.get("sourceTypes") or [])
    rows: list[list[Cell]] = []
    for i, src in enumerate(s for s in sources if isinstance(s, dict)):
        if src.get("chart"):
            what = f"chart {src['chart']}"
        elif src.get("path"):
            what = str(src["path"])
        else:
            what = f"${src['ref']}" if src.get("ref") else "."
        rev = str(revisions[i]) if i < len(revisions) else ""
        rows.append(
            [
                str(i + 1),
                redact(str(src.get("repoURL", ""))),
                what,
                str(src.get("targetRevision") or "HEAD"),
                str(types[i]) if i < len(types) else "",
                rev[:10] if len(rev) == 40 else rev,
            ]
        )
    return rows


def first_source(obj: dict[str, Any]) -> dict[str, Any]:
    """``spec.source``, or the first of ``spec.sources``: the one a one-line listing shows."""
    spec = obj.get("spec") or {}
    src = spec.get("source")
    if isinstance(src, dict):
        return src
    many = spec.get("sources")
    if isinstance(many, list):
        return next((s for s in many if isinstance(s, dict) and not s.get("ref")), {}) or next(
            (s for s in many if isinstance(s, dict)), {}
        )
    return {}
