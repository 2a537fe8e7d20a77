"""Tables the ``tether`` command prints: one row per line, always.

Piped output (``tether audit | grep``, CI logs) is read by programs as much as by people, so
every row is one line with every cell whole, whatever its length. On a terminal, a row that
does not fit is cut with an ellipsis rather than wrapped into several lines; ``-o json``
gives every value in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

Cell = str | Text
"""A cell: plain text (never read as markup, so ``[ci skip]`` stays as it is) or styled
``Text``."""

GAP = "  "


def styled(text: str, style: str | None) -> Text:
    """``text`` in ``style`` (a colour) when there is one."""
    return Text(text, style=style or "")


def one_line(cell: Cell) -> Text:
    """The cell as ``Text`` on one line: a line break (a commit message's body, a
    multi-line health message) becomes a space."""
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
    console: Console,
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    whole: Sequence[str] = (),
) -> None:
    """Prints ``rows`` under ``headers``, one line each (see the module docstring). On a
    terminal, the columns named in ``whole`` (times, kinds, revisions: read whole or not at
    all) are never cut."""
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
