"""Taking an operation on: claiming ``status.operationState``, clearing a request, abandoning.

``Running`` is written before anything is applied, so a controller killed mid-sync is
resumed by the next one, and so that ``tether app delete`` can tell a sync is under way.
That write is conditional on the resourceVersion just read: a deletion mark written in
between makes it fail with a conflict rather than go unseen (see ``tether.deletion``).
"""

from __future__ import annotations

from tether.api.application import API_VERSION, KIND
from tether.deletion import sync_running
from tether.errors import KubeError
from tether.kube import FIELD_MANAGER, KubeClient
from tether.model import Obj
from tether.status import now
from tether.sync.record import WRITE_ATTEMPTS, Busy, Refused, claim, write_progress

CLAIM_ATTEMPTS = WRITE_ATTEMPTS

__all__ = ["Busy", "Refused", "abandon_leftover", "claim", "clear_request", "write_progress"]


async def clear_request(kube: KubeClient, obj: Obj, request_id: str) -> Obj | None:
    """Removes ``operation`` (a request now recorded in ``status.operationState``) from the
    Application, unless it holds another request by now. Returns the Application as
    written (None when there was nothing to clear)."""
    meta = obj.get("metadata") or {}
    name, namespace = str(meta.get("name")), str(meta.get("namespace"))
    res = await kube.resource_for(API_VERSION, KIND)
    for _ in range(CLAIM_ATTEMPTS):
        fresh = await kube.get(API_VERSION, KIND, name, namespace)
        pending = (fresh or {}).get("operation") or {}
        if fresh is None or str(pending.get("id") or "") != request_id:
            return None
        rv = str(fresh["metadata"]["resourceVersion"])
        try:
            out: Obj = await kube.request(
                "PATCH",
                res.path(namespace, name),
                query={"fieldManager": FIELD_MANAGER},
                body={"metadata": {"resourceVersion": rv}, "operation": None},
                content_type="application/merge-patch+json",
            )
        except KubeError as e:
            if e.status == 409:
                continue
            if e.status == 404:
                return None
            raise
        return out
    raise KubeError(
        f"Application {namespace}/{name} kept changing while its sync request was cleared",
        status=409,
        hint="the request is cleared on the next reconcile",
    )


async def abandon_leftover(kube: KubeClient, obj: Obj) -> Obj | None:
    """An app being deleted with an operation still ``Running`` (waiting for a wave, or left
    by an engine that stopped): mark it ended, so the delete waiting for it can go on. Only
    the active controller calls this, from the app's reconcile, so never during a step."""
    if not sync_running(obj):
        return None
    op = dict((obj.get("status") or {}).get("operationState") or {})
    op.update(
        phase="Failed",
        finishedAt=now(),
        message="abandoned: the sync was interrupted and the Application is being deleted",
    )
    try:
        out: Obj = await kube.patch_status(obj, {"operationState": op})
    except KubeError as e:
        if e.status == 404:
            return None
        raise
    return out
