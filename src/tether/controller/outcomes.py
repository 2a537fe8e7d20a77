"""Reporting what the controller did: an operation started or ended, retries given up, health.

Each outcome goes to every place a person looks: an Event on the Application, the metrics,
the audit trail and the notifications, with who asked (``tether.controller.requested_by``).
Nothing here decides anything; the one status write is the mark that an operation
``tether app sync`` ran itself has been audited, so it is recorded once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from tether import metrics
from tether.api.application import Application
from tether.compare import Comparison
from tether.controller.outlets import AppLog, Outlets
from tether.controller.requested_by import (
    ROLLBACK,
    catch_up_cli,
    claimed_request,
    record_sync,
    requester,
    rollback_details,
)
from tether.controller.state import AppState
from tether.errors import KubeError
from tether.model import HealthStatus
from tether.source import redact
from tether.status import has_several_sources, history_sources, source_revisions
from tether.sync.apply import SyncResult
from tether.sync.state import OperationRequest

log = logging.getLogger("tether.controller")


class Outcomes:
    def __init__(self, out: Outlets) -> None:
        self.out = out

    async def started(self, app: Application, trigger: str, revision: str, logx: AppLog) -> None:
        logx.info("syncing (%s) to %s", trigger, revision[:10])
        await self.out.event(
            app, "SyncStarted", f"sync ({trigger}) to {revision[:10]} started", warning=False
        )

    async def finished(
        self,
        app: Application,
        cmp: Comparison,
        st: AppState,
        trigger: str,
        res: SyncResult,
        request: OperationRequest | None = None,
    ) -> str:
        """An operation ended: Event, metrics, self-heal bookkeeping, audit, notification.
        ``request``: what was asked (else read from ``app``'s ``status.operationState``, as
        claimed). Returns the one-line message said about it."""
        metrics.record_sync(app.namespace, app.name, res.phase, trigger)
        changed = res.changed()
        if trigger == "self-heal" and res.ok:
            t = time.monotonic()
            for r in changed:
                st.corrections.setdefault(r.key, deque()).append(t)
            metrics.SELF_HEALS.inc((app.namespace, app.name), len(changed))
        rev = res.revision or cmp.revision
        msg = f"sync ({trigger}) to {rev[:10]} {res.phase.lower()}: {res.message}"
        # The Events and the audit record are written at once, not one after the other.
        writes = [
            self.out.event(
                app, "SyncSucceeded" if res.ok else "SyncFailed", msg, warning=not res.ok
            ),
            self._audit(app, cmp, trigger, res, requester(request or claimed_request(app))),
        ]
        if trigger == "self-heal" and res.ok and changed:
            writes.append(
                self.out.event(
                    app,
                    "DriftCorrected",
                    "re-applied " + ", ".join(str(r.key) for r in changed[:5]),
                    warning=False,
                )
            )
        await asyncio.gather(*writes)
        notify = self.out.notify
        if notify and not res.ok:
            notify.send("sync-failed", app, msg, revision=res.revision)
        elif notify and changed and trigger != "self-heal":
            notify.send(
                "sync-succeeded",
                app,
                msg,
                revision=res.revision,
                objects=[r.key.to_dict() for r in changed],
            )
        return msg

    async def _audit(
        self, app: Application, cmp: Comparison, trigger: str, res: SyncResult, user: str
    ) -> None:
        audit = self.out.audit
        if audit is None:
            return
        desired = res.comparison.desired if res.comparison else None
        commit_message = desired.commit.message if desired else ""
        details: dict[str, Any] = {
            "outcome": res.message,
            "source": {
                "repoURL": redact(app.source.repo_url),
                "path": app.source.path,
                "targetRevision": app.source.target_revision,
            },
            **_several_sources(app, res.comparison or cmp),
        }
        if trigger == ROLLBACK:
            details.update(rollback_details(res.revision, commit_message))
        await record_sync(
            audit,
            app,
            trigger,
            revision=res.revision,
            result=res.phase,
            message=commit_message.splitlines()[0] if commit_message else res.message,
            author=desired.commit.author if desired else "",
            objects=[r.to_dict() for r in res.results if r.action != "unchanged"],
            details=details,
            user=user,
        )

    async def catch_up_cli(self, app: Application) -> bool:
        """Records an ended operation ``tether app sync`` ran itself, once (see
        ``tether.controller.requested_by.catch_up_cli``)."""
        if self.out.audit is None:
            return False
        return await catch_up_cli(self.out.kube, self.out.audit, self.out.identity, app)

    async def give_up(
        self, app: Application, revision: str, failures: int, why: str, logx: AppLog
    ) -> None:
        """The last retry failed: say so everywhere a person looks, once."""
        limit = app.sync_policy.retry.limit
        message = (
            f"sync to {revision[:10]} failed {failures} time(s); retry.limit ({limit}) "
            f"reached, no more automatic retries: {why}"
        )
        logx.warning("%s", message)
        await self.out.event(app, "SyncRetriesExhausted", message, warning=True)
        if self.out.audit:
            await self.out.audit.record(
                "retries-exhausted", app, revision=revision, result="Failed", message=message
            )

    async def health(self, app: Application, cmp: Comparison, st: AppState) -> None:
        """The app's health changed since the last reconcile: Event, and when Degraded a
        notification and an audit record. Called at the end of every reconcile, it also
        catches up on an operation a CLI ran (``catch_up_cli``)."""
        try:
            await self.catch_up_cli(app)
        except KubeError as e:  # the next reconcile tries again
            log.warning(
                "%s/%s: operation run by the CLI not audited yet: %s", app.namespace, app.name, e
            )
        health = cmp.health.status.value
        previous, st.health = st.health, health
        if not previous or health == previous:
            return
        await self.out.event(
            app,
            "HealthChanged",
            f"health {previous} → {health}"
            + (f": {cmp.health.message}" if cmp.health.message else ""),
            warning=health == HealthStatus.DEGRADED.value,
        )
        if health != HealthStatus.DEGRADED.value:
            return
        if self.out.notify:
            self.out.notify.send(
                "health-degraded",
                app,
                f"{app.name} is Degraded: {cmp.health.message}",
                revision=cmp.revision,
            )
        if self.out.audit:
            await self.out.audit.record(
                "health", app, revision=cmp.revision, result=health, message=cmp.health.message
            )


def _several_sources(app: Application, cmp: Comparison) -> dict[str, Any]:
    """An audit record's ``revisions`` and ``sources`` for an app with several sources."""
    if not has_several_sources(app):
        return {}
    return {"revisions": source_revisions(cmp), "sources": history_sources(app, cmp)}
