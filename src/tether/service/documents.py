"""The JSON documents both faces print: the HTTP API answers with them and ``tether ... -o
json`` prints the same ones, so a script gets one shape whichever way it asks.

``app_document``: an Application as Kubernetes holds it, without ``managedFields`` (noise for a
person, as ``kubectl get`` hides them) and with the credentials of every URL in it masked.
``diff_document``: a comparison, as ``tether app diff -o json`` prints it; ``diffs_of_document``
reads one back, so the text of a diff is printed from the document whichever way it came.
``list_document``: the Applications of ``tether app list -o json``.
``outcome_of_document``: a sync's outcome (``SyncOutcome.to_dict``, what ``tether app sync -o
json`` prints and a dry run through the API answers) read back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.model import Obj, ResourceDiff, ResourceDiffStatus, ResourceKey
from tether.source import redact

if TYPE_CHECKING:
    from tether.compare import Comparison
    from tether.service.results import SyncOutcome


def app_document(obj: Obj) -> dict[str, Any]:
    """``obj`` (an Application) safe to hand to anyone who may read it."""
    doc: dict[str, Any] = _masked(obj)  # new containers all through: ``obj`` is untouched
    (doc.get("metadata") or {}).pop("managedFields", None)
    return doc


def diff_document(cmp: Comparison) -> dict[str, Any]:
    """The objects that differ from Git (Secrets' values already masked by the diff)."""
    diffs = [d for d in cmp.diffs() if d.status != ResourceDiffStatus.SYNCED]
    return {
        "revision": cmp.revision,
        "sync": cmp.sync_status.value,
        "resources": [
            {
                **d.key.to_dict(),
                "status": d.status.value,
                "changedPaths": d.changed_paths,
                "diff": d.diff_text,
            }
            for d in diffs
        ],
    }


def diffs_of_document(doc: dict[str, Any]) -> list[ResourceDiff]:
    """The differing objects of a ``diff_document``, to print as text."""
    return [
        ResourceDiff(
            key=ResourceKey(
                str(r.get("group") or ""),
                str(r.get("kind") or ""),
                str(r.get("namespace") or ""),
                str(r.get("name") or ""),
            ),
            status=ResourceDiffStatus(str(r.get("status") or ResourceDiffStatus.OUT_OF_SYNC)),
            diff_text=str(r.get("diff") or ""),
            changed_paths=[str(p) for p in r.get("changedPaths") or []],
        )
        for r in doc.get("resources") or []
        if isinstance(r, dict)
    ]


def list_document(apps: list[Obj]) -> dict[str, Any]:
    """Applications as one ``List``, each an ``app_document``."""
    return {"apiVersion": "v1", "kind": "List", "items": [app_document(a) for a in apps]}


def outcome_of_document(doc: dict[str, Any]) -> SyncOutcome:
    """The ``SyncOutcome`` whose ``to_dict()`` is ``doc``."""
    from tether.service.results import SyncOutcome
    from tether.sync.state import TaskRecord

    return SyncOutcome(
        phase=str(doc.get("phase") or ""),
        message=str(doc.get("message") or ""),
        revision=str(doc.get("revision") or ""),
        run_by=str(doc.get("runBy") or ""),
        by_controller=bool(doc.get("byController")),
        records=[TaskRecord.from_dict(r) for r in doc.get("resources") or []],
        dry_run=bool(doc.get("dryRun")),
        operation_id=str(doc.get("operationId") or ""),
        sync_status=str(doc.get("sync") or "Unknown"),
        health_status=str(doc.get("health") or "Unknown"),
    )


def _masked(value: Any) -> Any:
    """Every string with a URL's credentials masked, wherever it sits (spec, status,
    annotations): an Application may carry a repository URL in many places."""
    if isinstance(value, str):
        return redact(value) if "@" in value else value
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value
