"""The JSON documents both faces print: the HTTP API answers with them and ``tether ... -o
json`` prints the same ones, so a script gets one shape whichever way it asks.

``app_document``: an Application as Kubernetes holds it, without ``managedFields`` (noise for a
person, as ``kubectl get`` hides them) and with the credentials of every URL in it masked.
``diff_document``: a comparison, as ``tether app diff -o json`` prints it.
"""

from __future__ import annotations

import copy
from typing import Any

from tether.compare import Comparison
from tether.model import Obj, ResourceDiffStatus
from tether.source import redact


def app_document(obj: Obj) -> dict[str, Any]:
    """``obj`` (an Application) safe to hand to anyone who may read it."""
    doc = copy.deepcopy(obj)
    (doc.get("metadata") or {}).pop("managedFields", None)
    return _masked(doc)  # type: ignore[no-any-return]


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
