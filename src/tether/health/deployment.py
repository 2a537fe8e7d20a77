"""Health of apps Deployments, read the way ``kubectl rollout status`` reads them."""

from __future__ import annotations

from tether.health._fields import condition, generation_observed, integer, mapping, text
from tether.model import Health, HealthStatus, Obj


def assess(obj: Obj) -> Health:
    spec, status = mapping(obj, "spec"), mapping(obj, "status")
    if spec.get("paused") is True:
        return Health(HealthStatus.SUSPENDED, "deployment is paused")
    # Status counts and conditions describe the last generation the controller saw; until it
    # has seen this one they say nothing about it.
    if not generation_observed(obj):
        return Health(
            HealthStatus.PROGRESSING,
            "waiting for rollout to finish: "
            "observed deployment generation less than desired generation",
        )
    progressing = condition(obj, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        detail = text(progressing, "message")
        return Health(
            HealthStatus.DEGRADED,
            f"progress deadline exceeded: {detail}" if detail else "progress deadline exceeded",
        )
    desired = integer(spec, "replicas", 1)
    updated = integer(status, "updatedReplicas")
    if updated < desired:
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for rollout to finish: {updated} out of {desired} new replicas "
            "have been updated",
        )
    current = integer(status, "replicas")
    if current > updated:
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for rollout to finish: {current - updated} old replicas "
            "are pending termination",
        )
    available = integer(status, "availableReplicas")
    if available < updated:
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for rollout to finish: {available} of {updated} updated replicas "
            "are available",
        )
    return Health(HealthStatus.HEALTHY)
