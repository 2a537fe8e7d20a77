"""The drift timeline of an app, pure: audit records (drift, correction, sync, fighting)
→ one entry per drifted object, newest first, each saying who changed what and when, and
whether tether put it back (the first correction or sync of that object at or after the
drift) or gave up on it (fighting).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tether.audit import AuditRecord

TIMELINE_KINDS = ("drift", "correction", "sync", "fighting")
"""What the timeline reads: the drift, and what followed it."""


@dataclass
class DriftEntry:
    time: str
    """When tether saw the drift (the audit record's time)."""
    object: dict[str, str]
    """group, kind, namespace, name."""
    status: str
    """OutOfSync (a field changed) or Missing (deleted), or Fighting."""
    fields: list[str]
    manager: str
    operation: str
    changed_at: str
    """When the live write happened, from managedFields."""
    revision: str
    corrected: str = ""
    """Time of the correction (or sync) that re-applied the object; ``""``: not corrected."""
    corrected_by: str = ""
    """``self-heal``, or the trigger of the sync that re-applied it."""
    gave_up: str = ""
    """Time self-heal stopped on this object (fighting)."""

    @property
    def object_text(self) -> str:
        o = self.object
        ns = f"{o.get('namespace')}/" if o.get("namespace") else ""
        return f"{o.get('kind')}/{ns}{o.get('name')}"

    @property
    def outcome(self) -> str:
        if self.corrected:
            return f"corrected {self.corrected} ({self.corrected_by})"
        if self.gave_up:
            return f"self-heal stopped {self.gave_up}: still drifted"
        return "not corrected"

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "object": self.object,
            "status": self.status,
            "fields": self.fields,
            "manager": self.manager,
            "operation": self.operation,
            "changedAt": self.changed_at,
            "revision": self.revision,
            "corrected": self.corrected or None,
            "correctedBy": self.corrected_by or None,
            "selfHealStopped": self.gave_up or None,
        }


def _identity(o: dict[str, Any]) -> tuple[str, str, str, str]:
    return (
        str(o.get("group") or ""),
        str(o.get("kind") or ""),
        str(o.get("namespace") or ""),
        str(o.get("name") or ""),
    )


def timeline(records: Sequence[AuditRecord]) -> list[DriftEntry]:
    """Entries for the drift records among ``records`` (any order), newest first."""
    ordered = sorted(records, key=lambda r: (r.time, r.id or 0))
    entries: list[DriftEntry] = []
    for n, rec in enumerate(ordered):
        if rec.kind != "drift":
            continue
        later = ordered[n + 1 :]
        for o in rec.objects:
            entry = DriftEntry(
                time=rec.time,
                object={
                    k: v
                    for k, v in zip(
                        ("group", "kind", "namespace", "name"), _identity(o), strict=True
                    )
                },
                status=str(o.get("status") or ""),
                fields=[str(f) for f in o.get("fields") or []],
                manager=str(o.get("manager") or ""),
                operation=str(o.get("operation") or ""),
                changed_at=str(o.get("changedAt") or ""),
                revision=rec.revision,
            )
            _follow(entry, _identity(o), later)
            entries.append(entry)
    entries.sort(key=lambda e: e.time, reverse=True)
    return entries


def _follow(
    entry: DriftEntry, ident: tuple[str, str, str, str], later: Sequence[AuditRecord]
) -> None:
    """Fills in what happened to the object after the drift: the first re-apply or give-up."""
    for rec in later:
        if not any(_identity(o) == ident for o in rec.objects):
            continue
        if rec.kind == "drift":
            return  # drifted again before anything re-applied it: that record says the rest
        if rec.kind in ("correction", "sync") and rec.result in ("Succeeded", ""):
            entry.corrected = rec.time
            entry.corrected_by = "self-heal" if rec.kind == "correction" else rec.trigger or "sync"
            return
        if rec.kind == "fighting":
            entry.gave_up = rec.time
            return
