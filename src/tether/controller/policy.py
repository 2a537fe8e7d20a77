"""When to sync: the triggers an automated sync answers, self-heal, retry counting, sync windows.

A reconcile compares an app, then asks this module whether an automated operation is due
(``due_trigger``), whether its sync windows hold it (``window_hold``), and, once an
operation ended, counts a failure against the revision and spec it tried (``count_outcome``)
so that ``syncPolicy.retry.limit`` bounds the attempts. The dependsOn gate lives in
``tether.controller.dependencies``; the controller asks it between these two.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from tether.api.application import Application
from tether.compare import Comparison
from tether.controller.outlets import AppLog
from tether.controller.state import AppState, attempt_key
from tether.controller.windows import gate as window_gate
from tether.model import ResourceKey, SyncStatus
from tether.status import Condition, has_several_sources, revision_key, source_revisions

TRIGGER_ORDER = ("webhook", "poll", "refresh", "spec", "self-heal", "retry", "resync")
"""Reasons an app was queued for, most telling first: the one a reconcile is named after."""

AUTOMATED_TRIGGERS = ("webhook", "poll", "refresh")
"""Reasons an automated sync is named after; any other reason makes it ``auto``."""


TERMINATED = "terminated"
"""The message of an operation that ``tether app terminate-op`` stopped."""


def main_reason(reasons: set[str]) -> str:
    return next((t for t in TRIGGER_ORDER if t in reasons), "resync")


def last_revision_key(app: Application) -> str:
    """``revision_key`` of the last sync, as its operation state recorded it."""
    last = app.status.get("operationState") or {}
    if has_several_sources(app) and last.get("revisions"):
        return ",".join(str(r) for r in last["revisions"])
    return str(last.get("revision") or "")


def revisions_if_several(app: Application, cmp: Comparison) -> list[str] | None:
    return source_revisions(cmp) if has_several_sources(app) else None


def due_trigger(
    app: Application, cmp: Comparison, st: AppState, reason: str, drifted: list[ResourceKey]
) -> str:
    """The trigger of an automated operation due now ("" when none is): a new revision or
    spec that is out of sync (within the retry limit), or drift that self-heal corrects."""
    pol = app.sync_policy
    if not pol.automated or cmp.error is not None or cmp.sync_status != SyncStatus.OUT_OF_SYNC:
        return ""
    last = app.status.get("operationState") or {}
    if terminated(app, cmp):
        return ""  # a person stopped the sync of this revision: not started again by itself
    new_revision = (
        last_revision_key(app) != revision_key(app, cmp)
        or int(last.get("generation", -1)) != app.generation
        or last.get("phase") in ("Running", "Failed")
    )
    if new_revision:
        # Failed attempts count per revision and spec: a new commit or spec change starts
        # afresh; the same one is retried up to syncPolicy.retry.limit times.
        attempts = st.attempts.get(attempt_key(revision_key(app, cmp), app), 0)
        if attempts == 0 or attempts <= pol.retry.limit or pol.retry.limit < 0:
            return reason if reason in AUTOMATED_TRIGGERS else "auto"
        return ""
    if pol.self_heal and drifted:
        return "self-heal"
    return ""


def terminated(app: Application, cmp: Comparison) -> bool:
    """The last operation was stopped by ``tether app terminate-op`` at this very revision
    and spec (as Argo CD, an automated sync does not start it again; a new commit, a spec
    change or ``tether app sync`` does)."""
    last = app.status.get("operationState") or {}
    return (
        last.get("phase") == "Failed"
        and last.get("message") == TERMINATED
        and last_revision_key(app) == revision_key(app, cmp)
        and int(last.get("generation", -1)) == app.generation
    )


def window_hold(
    app: Application,
    cmp: Comparison,
    trigger: str,
    recheck: Callable[[float], None],
    logx: AppLog,
) -> str:
    """The app's sync windows: a due automated sync or self-heal they deny is held (a
    condition says so, and until when); ``recheck`` is called with the seconds until their
    next edge, when the app is looked at again. Returns the trigger, or "" when held."""
    g = window_gate(cmp.sync_windows, app.name, trigger, cmp.revision, datetime.now(UTC))
    if g.recheck_in is not None:
        recheck(g.recheck_in)
    if not g.held:
        return trigger
    cmp.conditions.append(Condition("SyncHeldByWindow", g.message, reason=g.reason))
    known = app.status.get("conditions") or []
    if not any(c.get("message") == g.message for c in known):
        logx.info("%s", g.message)
    return ""


def count_outcome(app: Application, cmp: Comparison, st: AppState, ok: bool) -> int:
    """Records an automated operation's outcome; returns the failures of this revision and
    spec so far (0 after a success, which forgets the earlier ones)."""
    key = attempt_key(revision_key(app, cmp), app)
    if ok:
        st.attempts.pop(key, None)
        return 0
    failures = st.attempts[key] = st.attempts.get(key, 0) + 1
    return failures


def retry_delay(app: Application, failures: int) -> float | None:
    """Seconds before retrying after ``failures`` failed attempts; None: no more retries."""
    pol = app.sync_policy.retry
    if pol.limit < 0 or failures <= pol.limit:
        return pol.delay(failures)
    return None


def retries_exhausted(app: Application, cmp: Comparison, st: AppState) -> Condition | None:
    """The condition of an app whose revision failed more times than retry.limit allows."""
    failures = st.attempts.get(attempt_key(revision_key(app, cmp), app), 0)
    limit = app.sync_policy.retry.limit
    if not cmp.revision or not 0 <= limit < failures:
        return None
    return Condition(
        "RetriesExhausted",
        f"sync to {cmp.revision[:10]} failed {failures} time(s) and retry.limit is "
        f"{limit}: no more automatic syncs of this revision. Push a fix, change the "
        "spec, or run 'tether app sync'",
    )
