"""Health of core Pods: how they ended, whether they are ready, and containers stuck on errors."""

from __future__ import annotations

from typing import Any

from tether.health._fields import (
    entries,
    find_condition,
    integer,
    is_true,
    mapping,
    reason_message,
    text,
)
from tether.model import Health, HealthStatus, Obj


def assess(obj: Obj) -> Health:
    spec, status = mapping(obj, "spec"), mapping(obj, "status")
    # The API server defaults restartPolicy to Always; an empty one means the same.
    restarts = text(spec, "restartPolicy") in ("", "Always")
    init_statuses = entries(status, "initContainerStatuses")
    statuses = entries(status, "containerStatuses")
    # A pod that runs once is judged by how it ends: a backing-off image pull may still succeed,
    # and calling it Degraded now would fail a sync hook that is merely slow.
    if restarts:
        stuck = [_stuck_message(cs) for cs in init_statuses + statuses if _is_stuck(cs)]
        if stuck:
            return Health(HealthStatus.DEGRADED, "; ".join(stuck))
    phase = text(status, "phase")
    if phase == "Succeeded":
        return Health(HealthStatus.HEALTHY, text(status, "message"))
    if phase == "Failed":
        return Health(HealthStatus.DEGRADED, _failure_message(status, init_statuses + statuses))
    if phase == "Pending":
        return Health(HealthStatus.PROGRESSING, _pending_message(status))
    if phase == "Running":
        if not restarts:
            return Health(HealthStatus.PROGRESSING, "running to completion")
        if _is_ready(status, statuses):
            return Health(HealthStatus.HEALTHY, text(status, "message"))
        waiting = [text(cs, "name") for cs in statuses if cs.get("ready") is not True]
        if waiting:
            return Health(
                HealthStatus.PROGRESSING,
                "waiting for containers to be ready: " + ", ".join(waiting),
            )
        return Health(HealthStatus.PROGRESSING, "waiting for the pod to be ready")
    return Health(HealthStatus.UNKNOWN, text(status, "message") or text(status, "reason"))


def _waiting(container_status: dict[str, Any]) -> dict[str, Any]:
    return mapping(container_status, "state", "waiting")


def _is_stuck(container_status: dict[str, Any]) -> bool:
    # kubelet names the waiting reasons that need a human Err*, *Error or *BackOff
    # (CrashLoopBackOff, ImagePullBackOff, ErrImagePull, CreateContainerConfigError, ...);
    # InvalidImageName is the one that escapes the pattern.
    reason = text(_waiting(container_status), "reason")
    return (
        reason.startswith("Err")
        or reason.endswith(("Error", "BackOff"))
        or reason == "InvalidImageName"
    )


def _stuck_message(container_status: dict[str, Any]) -> str:
    return f'container "{text(container_status, "name")}": ' + reason_message(
        _waiting(container_status)
    )


def _is_ready(status: dict[str, Any], statuses: list[dict[str, Any]]) -> bool:
    # The Ready condition also folds in readiness gates, so it wins when the kubelet reported it.
    ready = find_condition(entries(status, "conditions"), "Ready")
    if ready is not None:
        return is_true(ready)
    return bool(statuses) and all(cs.get("ready") is True for cs in statuses)


def _failure_message(status: dict[str, Any], statuses: list[dict[str, Any]]) -> str:
    if text(status, "message") or text(status, "reason"):
        return reason_message(status)
    for cs in statuses:
        terminated = mapping(cs, "state", "terminated")
        name = text(cs, "name")
        if text(terminated, "message"):
            return f'container "{name}": {text(terminated, "message")}'
        code = integer(terminated, "exitCode")
        if code != 0:
            reason = text(terminated, "reason") or "terminated"
            return f'container "{name}": {reason} (exit code {code})'
    return "pod failed"


def _pending_message(status: dict[str, Any]) -> str:
    scheduled = find_condition(entries(status, "conditions"), "PodScheduled")
    if scheduled is not None and scheduled.get("status") == "False":
        return reason_message(scheduled)
    return text(status, "message") or "waiting for the pod to start"
