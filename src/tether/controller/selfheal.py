"""Drift and self-heal: which objects the cluster changed, reporting each change once, and
giving up on an object another writer keeps changing back (fighting)."""

from __future__ import annotations

import time

from tether import metrics
from tether.api.application import Application
from tether.controller.events import last_foreign_change
from tether.controller.outlets import AppLog, Outlets
from tether.controller.state import AppState
from tether.engine import Comparison, Condition
from tether.model import ResourceDiffStatus, ResourceKey


def drifted(app: Application, cmp: Comparison, st: AppState) -> list[ResourceKey]:
    """Objects that differ from Git because the *cluster* changed (not a new commit)."""
    last = app.status.get("operationState") or {}
    if (
        cmp.error is not None
        or last.get("revision") != cmp.revision
        or (last.get("phase") != "Succeeded")
    ):
        return []  # not synced to this revision yet: a difference is not drift
    drift_states = (ResourceDiffStatus.OUT_OF_SYNC, ResourceDiffStatus.MISSING)
    out = [key for key, rs in cmp.resources.items() if rs.diff.status in drift_states]
    current = set(out)
    for k in list(st.drift_reported):
        if k not in current:
            del st.drift_reported[k]  # back in sync: a new drift will be reported again
    return out


async def report_drift(
    out: Outlets, app: Application, cmp: Comparison, st: AppState, keys: list[ResourceKey]
) -> None:
    """Event, audit record, notification, metric and log line for drift not yet reported."""
    fresh = []
    for key in keys:
        live = cmp.live.get(key)
        rv = str(((live or {}).get("metadata") or {}).get("resourceVersion", "deleted"))
        if st.drift_reported.get(key) == rv:
            continue
        st.drift_reported[key] = rv
        fresh.append(key)
    if not fresh:
        return
    metrics.DRIFT.inc((app.namespace, app.name), len(fresh))
    objects = []
    diffs = []
    managers = set()
    for key in fresh:
        rs = cmp.resources[key]
        live = cmp.live.get(key)
        change = last_foreign_change(live) if live else None
        if change:
            managers.add(change.manager)
        objects.append(
            {
                **key.to_dict(),
                "status": rs.diff.status.value,
                "fields": rs.diff.changed_paths,
                "manager": change.manager if change else "",
                "operation": change.operation if change else ("Delete" if live is None else ""),
                "changedAt": change.time if change else "",
            }
        )
        diffs.append(rs.diff.diff_text)
    who = ", ".join(sorted(managers)) or "unknown (object deleted or no field manager)"
    names = ", ".join(str(k) for k in fresh[:5]) + ("…" if len(fresh) > 5 else "")
    message = f"drift: {names} changed in the cluster by {who}"
    AppLog(app).info("%s", message)
    await out.event(app, "DriftDetected", message, warning=True)
    diff_text = "".join(diffs)
    if out.audit:
        await out.audit.record(
            "drift",
            app,
            revision=cmp.revision,
            message=message,
            objects=objects,
            details={"diff": diff_text},
        )
    if out.notify:
        out.notify.send(
            "drift",
            app,
            message,
            revision=cmp.revision,
            diff=diff_text,
            field_manager=who,
            objects=objects,
        )


async def stop_fighting(
    out: Outlets,
    app: Application,
    cmp: Comparison,
    st: AppState,
    keys: list[ResourceKey],
    *,
    limit: int,
    window: float,
) -> set[ResourceKey]:
    """Objects tether keeps correcting against another writer: stop, and say who."""
    t = time.monotonic()
    for key in keys:
        q = st.corrections.get(key)
        if q is None:
            continue
        while q and t - q[0] > window:
            q.popleft()
        if len(q) >= limit and key not in st.fighting:
            live = cmp.live.get(key)
            change = last_foreign_change(live) if live else None
            st.fighting[key] = change
            who = change.manager if change else "another writer"
            message = (
                f"{key}: corrected {len(q)} times in "
                f"{window / 60:.0f} min; {who} keeps changing it. "
                "Self-heal stopped for this object"
            )
            AppLog(app).warning("%s", message)
            objects = [{**key.to_dict(), "manager": who}]
            await out.event(app, "SelfHealFighting", message, warning=True)
            if out.audit:
                await out.audit.record(
                    "fighting", app, revision=cmp.revision, message=message, objects=objects
                )
            if out.notify:
                out.notify.send(
                    "self-heal-fighting",
                    app,
                    message,
                    revision=cmp.revision,
                    field_manager=who,
                    objects=objects,
                )
    return set(st.fighting)


def fighting_conditions(cmp: Comparison, st: AppState) -> list[Condition]:
    """The SelfHealFighting conditions still standing; an object back in sync resumes."""
    if not st.fighting:
        return []
    if cmp.error is None and any(
        k in cmp.resources and cmp.resources[k].diff.status == ResourceDiffStatus.SYNCED
        for k in st.fighting
    ):
        for k in [
            k
            for k in st.fighting
            if cmp.resources.get(k) is None
            or cmp.resources[k].diff.status == ResourceDiffStatus.SYNCED
        ]:
            st.fighting.pop(k, None)
            st.corrections.pop(k, None)
    out = []
    for k, change in st.fighting.items():
        who = change.manager if change else "another writer"
        out.append(
            Condition(
                "SelfHealFighting",
                f"{k}: self-heal stopped after repeated corrections; "
                f"field manager {who} keeps changing it. Change it in Git, or stop {who}",
            )
        )
    return out
