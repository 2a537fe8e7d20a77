"""Health of autoscaling HorizontalPodAutoscalers (v1, v2, v2beta*) from their conditions."""

from __future__ import annotations

import json
from typing import Any

from tether.health._fields import (
    conditions,
    find_condition,
    is_true,
    mapping,
    reason_message,
    text,
)
from tether.model import Health, HealthStatus, Obj

# autoscaling/v1 has no status.conditions; the API server carries them in this annotation.
V1_CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"


def assess(obj: Obj) -> Health:
    conds = conditions(obj)
    if not conds:
        raw = mapping(obj, "metadata", "annotations").get(V1_CONDITIONS_ANNOTATION)
        if isinstance(raw, str) and raw:
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                return Health(
                    HealthStatus.UNKNOWN,
                    f"cannot parse the {V1_CONDITIONS_ANNOTATION} annotation: {exc}",
                )
            if isinstance(parsed, list):
                conds = [c for c in parsed if isinstance(c, dict)]
    if not conds:
        return Health(HealthStatus.PROGRESSING, "waiting to autoscale")
    failing = [reason_message(c) for c in conds if _is_failing(c)]
    if failing:
        return Health(HealthStatus.DEGRADED, "; ".join(failing))
    limited = find_condition(conds, "ScalingLimited")
    message = text(limited, "message") if is_true(limited) else ""
    return Health(HealthStatus.HEALTHY, message)


def _is_failing(cond: dict[str, Any]) -> bool:
    if cond.get("status") != "False":
        return False
    reason = text(cond, "reason")
    if cond.get("type") == "AbleToScale":
        # Older controllers reported BackoffBoth/BackoffUpscale/BackoffDownscale while inside
        # the forbidden window between two scalings: a wait, not a fault.
        return not reason.startswith("Backoff")
    if cond.get("type") == "ScalingActive":
        # The other False reason, ScalingDisabled, means the target was scaled to zero on purpose.
        return reason.startswith(("Failed", "Invalid"))
    return False
