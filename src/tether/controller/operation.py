"""The Application's ``status.operationState`` as the controller's record of a sync.

``Running`` is written before anything is applied, so a controller killed mid-sync is
resumed by the next one, and so that ``tether app delete`` can tell a sync is under way.
That write is conditional on the resourceVersion just read: a deletion mark written in
between makes it fail with a conflict rather than go unseen (see ``tether.deletion``).
"""

from __future__ import annotations

from tether.api.application import API_VERSION, KIND, Application
from tether.deletion import being_deleted, sync_running
from tether.errors import KubeError
from tether.kube import FIELD_MANAGER, KubeClient
from tether.model import Obj
from tether.status import now

CLAIM_ATTEMPTS = 3


class Refused(Exception):
    """The sync must not start: the Application is gone or being deleted."""

    def __init__(self, obj: Obj | None, why: str) -> None:
        super().__init__(why)
        self.obj = obj
        self.why = why


async def claim(
    kube: KubeClient, app: Application, revision: str, *, revisions: list[str] | None = None
) -> Application:
    """Writes ``phase: Running`` at the Application's current resourceVersion and returns
    the Application as written; raises Refused when it is gone or being deleted.
    ``revisions`` (an app with several sources) are recorded beside ``revision``."""
    res = await kube.resource_for(API_VERSION, KIND)
    path = res.path(app.namespace, app.name, "status")
    for _ in range(CLAIM_ATTEMPTS):
        fresh = await kube.get(API_VERSION, KIND, app.name, app.namespace)
        if fresh is None:
            raise Refused(None, "it was deleted")
        why = being_deleted(fresh)
        if why:
            raise Refused(fresh, why)
        op = dict((fresh.get("status") or {}).get("operationState") or {})
        op.update(
            phase="Running",
            revision=revision,
            startedAt=now(),
            generation=app.generation,
            message="sync in progress",
        )
        if revisions is not None:
            op["revisions"] = revisions
        rv = str(fresh["metadata"]["resourceVersion"])
        try:
            out: Obj = await kube.request(
                "PATCH",
                path,
                query={"fieldManager": FIELD_MANAGER},
                # resourceVersion in a patch is a precondition: 409 if anyone wrote since.
                body={"metadata": {"resourceVersion": rv}, "status": {"operationState": op}},
                content_type="application/merge-patch+json",
            )
        except KubeError as e:
            if e.status == 409:
                continue  # written meanwhile (perhaps the deletion mark): read it again
            if e.status == 404:
                raise Refused(None, "it was deleted") from None
            raise
        return Application.from_obj(out)
    raise KubeError(
        f"Application {app.namespace}/{app.name} kept changing while a sync was starting",
        status=409,
        hint="the sync is retried",
    )


async def close_interrupted(kube: KubeClient, app: Application) -> Obj:
    """A sync a killed controller left ``Running`` that the cluster shows done."""
    op = dict(app.status.get("operationState") or {})
    op.update(
        phase="Succeeded",
        finishedAt=now(),
        message="completed: the cluster matches Git (finished before a restart)",
    )
    out: Obj = await kube.patch_status(app.obj, {"operationState": op})
    return out


async def abandon_leftover(kube: KubeClient, obj: Obj) -> Obj | None:
    """An app being deleted with a sync left ``Running`` by a controller that is gone: mark
    it ended, so the delete waiting for it can go on. Only the active controller calls
    this, and never while it runs a sync of that app itself."""
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
