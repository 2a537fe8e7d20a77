"""Health of apps ReplicaSets: observed, able to create pods, and all replicas available."""

from __future__ import annotations

from tether.health._fields import (
    condition,
    generation_observed,
    integer,
    is_true,
    mapping,
    reason_message,
)
from tether.model import Health, HealthStatus, Obj


def assess(obj: Obj) -> Health:
    if not generation_observed(obj):
        return Health(
            HealthStatus.PROGRESSING,
            "waiting for rollout to finish: "
            "observed replica set generation less than desired generation",
        )
    failure = condition(obj, "ReplicaFailure")
    if is_true(failure):
        return Health(HealthStatus.DEGRADED, reason_message(failure))
    desired = integer(mapping(obj, "spec"), "replicas", 1)
    available = integer(mapping(obj, "status"), "availableReplicas")
    if available < desired:
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for rollout to finish: {available} out of {desired} replicas are available",
        )
    return Health(HealthStatus.HEALTHY)
