"""What blame found, as values: one row per field (its value, the source and commit whose
render set it, and where the live value differs, who wrote that), the revisions looked at and
what the walk cost; and the rows of the table ``tether blame`` prints. Secret values never
reach a report: they are ``(redacted)`` before they are stored here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tether.blame.history import Commit
from tether.blame.live import Write

ABSENT_TEXT = "(absent)"
UNKNOWN_WRITER = "unknown (not in managedFields)"


@dataclass
class LiveValue:
    value: Any
    """The live value (``(absent)`` when the live object lacks the field)."""
    writer: Write | None

    def to_dict(self) -> dict[str, Any]:
        w = self.writer.to_dict() if self.writer else {"manager": "", "operation": "", "time": ""}
        return {"value": self.value, **w}


@dataclass
class FieldBlame:
    path: str
    value: Any
    source: int
    """Index of the source (spec order) whose commit set the value."""
    commit: Commit
    at_or_before: bool
    """History depth reached: the value was already there at ``commit``, the oldest looked at."""
    live: LiveValue | None = None
    """Set when the live value differs from Git."""

    @property
    def commit_text(self) -> str:
        if self.at_or_before:
            return f"at or before {self.commit.short} (history depth reached)"
        return self.commit.short

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.path,
            "value": self.value,
            "source": self.source,
            "commit": self.commit.to_dict(),
            "atOrBefore": self.at_or_before,
            "live": self.live.to_dict() if self.live else None,
        }


@dataclass
class Skipped:
    source: int
    commit: str
    reason: str


@dataclass
class BlameReport:
    app: str
    object: dict[str, str]
    sources: list[dict[str, Any]]
    """Per source: repoURL (credentials removed), path or chart, the synced revision,
    ``history`` (how many commits were looked at) and whether the branch's start was reached."""
    depth: int
    fields: list[FieldBlame] = field(default_factory=list)
    renders: int = 0
    reused: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    live: bool = True
    """The object exists in the cluster."""

    def filtered(self, prefix: str) -> list[FieldBlame]:
        from tether.blame.fields import matches

        return [f for f in self.fields if matches(f.path, prefix)]

    def to_dict(self, prefix: str = "") -> dict[str, Any]:
        return {
            "app": self.app,
            "object": self.object,
            "live": self.live,
            "depth": self.depth,
            "sources": self.sources,
            "renders": self.renders,
            "rendersReused": self.reused,
            "skipped": [
                {"source": s.source, "commit": s.commit, "reason": s.reason} for s in self.skipped
            ],
            "fields": [f.to_dict() for f in self.filtered(prefix)],
        }


HEADERS = ("FIELD", "VALUE", "COMMIT", "AUTHOR", "DATE", "MESSAGE")
LIVE_HEADERS = ("LIVE", "MANAGER")
WHOLE = ("COMMIT", "DATE")


def value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def table(rows: list[FieldBlame], several_sources: bool) -> tuple[tuple[str, ...], list[list[str]]]:
    """Headers and rows; LIVE and MANAGER only when some live value differs."""
    with_live = any(r.live for r in rows)
    headers = HEADERS + (LIVE_HEADERS if with_live else ())
    out: list[list[str]] = []
    for r in rows:
        commit = f"#{r.source} {r.commit_text}" if several_sources else r.commit_text
        row = [
            r.path,
            value_text(r.value),
            commit,
            r.commit.author,
            r.commit.date,
            r.commit.message,
        ]
        if with_live:
            if r.live:
                w = r.live.writer
                who = f"{w.manager} ({w.operation} {w.time})" if w else UNKNOWN_WRITER
                row += [value_text(r.live.value), who]
            else:
                row += ["", ""]
        out.append(row)
    return headers, out
