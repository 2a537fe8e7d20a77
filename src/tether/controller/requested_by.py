"""Who asked, in the audit trail: the user of a sync a person requested, what a rollback
record says, and the catch-up of operations ``tether app sync`` ran itself.

A sync someone requested (``initiatedBy`` other than the controller) is recorded with
``user``; a sync of a rollback commit (trigger ``rollback``) as kind ``rollback``. An
operation the command ran with no controller running (``runBy: cli``) is recorded by the
first controller that sees it ended, which marks it ``status.auditedOperation: <id>`` so it
is recorded once, whichever controller that is.
"""

from __future__ import annotations

import re
from typing import Any

from tether.api.application import Application
from tether.controller.outlets import AuditSink
from tether.errors import KubeError
from tether.kube import FIELD_MANAGER, KubeClient
from tether.sync.state import ENDED, RUN_BY_CLI, OperationRequest, OperationState

AUTOMATED_BY = "controller"
"""``OperationRequest.initiated_by`` of the operations the controller starts itself."""
AUDITED_MARK = "auditedOperation"
"""``status.auditedOperation``: the id of the last operation a CLI ran that is in the audit
trail."""
ROLLBACK = "rollback"

_REVERTS = re.compile(r"This reverts commit ([0-9a-f]{7,40})")
_RESTORES = re.compile(r"(?:[Rr]estores?\b[^\n]*?\bto|[Rr]oll(?:s|ed)? back to) ([0-9a-f]{7,40})")


async def catch_up_cli(kube: KubeClient, audit: AuditSink, identity: str, app: Application) -> bool:
    """Records the operation ``tether app sync`` ran itself (no controller was running)
    if it ended and is not in the audit trail yet, then marks it so in status: once,
    whichever controller sees it first. Returns True when it recorded one."""
    raw = app.status.get("operationState") or {}
    if not raw or raw.get("runBy") != RUN_BY_CLI:
        return False
    state = OperationState.from_dict(raw)
    if state.phase not in ENDED or app.status.get(AUDITED_MARK) == state.operation.id:
        return False
    trigger = state.operation.trigger
    user = requester(state.operation)
    commit = _history_commit(app, state.revision)
    details: dict[str, Any] = {
        "outcome": state.message,
        "runBy": RUN_BY_CLI,
        "operation": state.operation.id,
        "startedAt": state.started_at,
        "finishedAt": state.finished_at,
        "recordedBy": identity,
        "recordedLate": "run by the tether command while no controller was running; "
        "recorded when a controller first saw it",
    }
    if state.revisions:
        details["revisions"] = list(state.revisions)
    if trigger == ROLLBACK:
        details.update(rollback_details(state.revision, commit.get("message", "")))
    objects = [r.to_dict() for r in state.resources if r.action != "unchanged"]
    # Marked first: a record that fails is retried by the sink and counted, while a mark
    # that fails after the record would record the operation twice.
    if not await _mark_audited(kube, app, state.operation.id):
        return False
    await record_sync(
        audit,
        app,
        trigger,
        revision=state.revision,
        result=state.phase,
        message=commit.get("message") or state.message,
        author=commit.get("author", ""),
        objects=objects,
        details=details,
        user=user,
    )
    return True


async def record_sync(
    audit: AuditSink,
    app: Application,
    trigger: str,
    *,
    revision: str,
    result: str,
    message: str,
    author: str,
    objects: list[dict[str, Any]],
    details: dict[str, Any],
    user: str,
) -> None:
    """The record of an ended operation (kind ``sync``, or ``rollback`` for a rollback's
    sync), then one ``prune`` record of the objects it pruned, if any."""
    await audit.record(
        audit_kind(trigger),
        app,
        revision=revision,
        trigger=trigger,
        result=result,
        message=message,
        author=author,
        objects=objects,
        details=details,
        user=user,
    )
    pruned = [o for o in objects if o.get("action") == "pruned"]
    if pruned:
        await audit.record(
            "prune",
            app,
            revision=revision,
            trigger=trigger,
            result=result,
            objects=pruned,
            message=f"pruned {len(pruned)} object(s)",
            user=user,
        )


async def _mark_audited(kube: KubeClient, app: Application, operation_id: str) -> bool:
    """``status.auditedOperation``, at the resourceVersion read: False when the app
    changed meanwhile (it is looked at again on the reconcile that change brings)."""
    meta = app.obj["metadata"]
    try:
        await kube.request(
            "PATCH",
            (await kube.resource_for(app.obj["apiVersion"], app.obj["kind"])).path(
                app.namespace, app.name, "status"
            ),
            query={"fieldManager": FIELD_MANAGER},
            body={
                "metadata": {"resourceVersion": str(meta["resourceVersion"])},
                "status": {AUDITED_MARK: operation_id},
            },
            content_type="application/merge-patch+json",
        )
    except KubeError as e:
        if e.status in (404, 409):
            return False
        raise
    return True


def requester(request: OperationRequest | None) -> str:
    """Who asked for the operation: its ``initiatedBy``, unless the controller started it
    on its own ("")."""
    if request is None or request.initiated_by in ("", AUTOMATED_BY):
        return ""
    return request.initiated_by


def rollback_details(revision: str, commit_message: str) -> dict[str, Any]:
    """What a rollback record says beside the sync's: the commit it synced, the commit whose
    content it restores and the commits it reverts (when its message names them: "Restore
    ... to <sha>", "Roll back to <sha>", git's "This reverts commit <sha>"), and the
    commit message."""
    text = commit_message or ""
    restores = _RESTORES.search(text)
    return {
        "rollback": {
            "commit": revision,
            "restores": restores.group(1) if restores else "",
            "reverts": _REVERTS.findall(text),
            "commitMessage": commit_message,
        }
    }


def audit_kind(trigger: str) -> str:
    return {"self-heal": "correction", ROLLBACK: ROLLBACK}.get(trigger, "sync")


def claimed_request(app: Application) -> OperationRequest | None:
    """The request of the operation recorded on ``app`` (as claimed when it started)."""
    raw = (app.status.get("operationState") or {}).get("operation")
    return OperationRequest.from_dict(raw) if isinstance(raw, dict) and raw else None


def _history_commit(app: Application, revision: str) -> dict[str, str]:
    """Author and message of ``revision`` as the status history recorded them."""
    for entry in app.status.get("history") or []:
        if revision and entry.get("revision") == revision:
            return {
                "author": str(entry.get("author") or ""),
                "message": str(entry.get("message") or ""),
            }
    return {}
