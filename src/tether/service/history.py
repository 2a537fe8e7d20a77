"""An app's deployment history, as ``tether app history`` and ``GET .../history`` show it:
from the audit trail's records or from ``status.history``, in one shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.audit import AuditRecord

HISTORY_KINDS = ("sync", "correction", "rollback")
"""The records of a deployment: a sync, a self-heal sync (recorded as a correction), and the
sync of a rollback (recorded as a rollback, with the user who asked). The status history,
which ``--full`` extends, has those syncs too."""


def history_from_status(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The Application's ``status.history`` (the last syncs), newest first, in stable keys."""
    entries = ((obj.get("status") or {}).get("history")) or []
    rows: list[dict[str, Any]] = [
        {
            "id": e.get("id"),
            "deployedAt": str(e.get("deployedAt") or ""),
            "revision": str(e.get("revision") or ""),
            "result": str(e.get("result") or ""),
            "trigger": str(e.get("trigger") or ""),
            "author": str(e.get("author") or ""),
            "message": str(e.get("message") or ""),
            "source": e.get("source") if isinstance(e.get("source"), dict) else {},
            **_several_sources(e),
        }
        for e in entries
        if isinstance(e, dict)
    ]
    # Ids increase with each sync, so they order the entries whatever their time format.
    return sorted(rows, key=lambda r: r["id"] if isinstance(r["id"], int) else 0, reverse=True)


def history_from_records(records: Sequence[AuditRecord]) -> list[dict[str, Any]]:
    """Deployment records (syncs, corrections, rollbacks' syncs) in the shape of
    ``history_from_status``; ``id`` is the record's."""
    return [
        {
            "id": r.id,
            "deployedAt": r.time,
            "revision": r.revision,
            "result": r.result,
            "trigger": r.trigger,
            "author": r.author,
            "message": r.message,
            "source": r.details.get("source") if isinstance(r.details.get("source"), dict) else {},
            **_several_sources(r.details),
        }
        for r in records
        if r.kind in HISTORY_KINDS
    ]


def _several_sources(entry: dict[str, Any]) -> dict[str, Any]:
    """``revisions`` and ``sources`` of a sync of an app with several sources (nothing for
    an app with one: its ``revision`` and ``source`` say it all)."""
    revisions = entry.get("revisions")
    if not isinstance(revisions, list) or not revisions:
        return {}
    sources = entry.get("sources")
    return {
        "revisions": [str(r) for r in revisions],
        "sources": sources if isinstance(sources, list) else [],
    }
