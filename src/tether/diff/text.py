"""Drift for people: the diffs of many objects as one text, optionally colored for a terminal."""

from __future__ import annotations

from collections.abc import Iterable

from tether.model import ResourceDiff

_RED = "\x1b[31m"
_GREEN = "\x1b[32m"
_CYAN = "\x1b[36m"
_BOLD = "\x1b[1m"
_RESET = "\x1b[0m"


def render_diffs(diffs: Iterable[ResourceDiff], color: bool = False) -> str:
    """Each object with a diff under a ``=== <status> <object> ===`` header; Synced ones are left
    out. With ``color``, removed lines are red, added lines green, hunk markers cyan.
    """
    blocks = []
    for diff in diffs:
        if not diff.diff_text:
            continue
        header = f"=== {diff.status.value} {diff.key} ==="
        body = diff.diff_text if diff.diff_text.endswith("\n") else diff.diff_text + "\n"
        if color:
            header = f"{_BOLD}{header}{_RESET}"
            body = _colored(body)
        blocks.append(f"{header}\n{body}")
    return "\n".join(blocks)


def _colored(body: str) -> str:
    lines = []
    in_file_header = True
    for line in body.splitlines():
        if line.startswith("@@"):
            # Only the lines before the first hunk are file headers; later "---" is content.
            in_file_header = False
            lines.append(f"{_CYAN}{line}{_RESET}")
        elif in_file_header:
            lines.append(f"{_BOLD}{line}{_RESET}")
        elif line.startswith("-"):
            lines.append(f"{_RED}{line}{_RESET}")
        elif line.startswith("+"):
            lines.append(f"{_GREEN}{line}{_RESET}")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"
