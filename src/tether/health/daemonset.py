"""Health of apps DaemonSets: observed, updated on every node that should run one, available."""

from __future__ import annotations

from tether.health._fields import generation_observed, integer, mapping, text
from tether.model import Health, HealthStatus, Obj


def assess(obj: Obj) -> Health:
    status = mapping(obj, "status")
    if not generation_observed(obj):
        return Health(
            HealthStatus.PROGRESSING,
            "waiting for rollout to finish: "
            "observed daemon set generation less than desired generation",
        )
    desired = integer(status, "desiredNumberScheduled")
    updated = integer(status, "updatedNumberScheduled")
    # With OnDelete old pods are replaced only when someone deletes them, so a lagging update
    # count is the expected steady state, not a rollout in flight.
    if text(mapping(obj, "spec", "updateStrategy"), "type") == "OnDelete":
        return Health(
            HealthStatus.HEALTHY, f"{updated} out of {desired} pods run the current template"
        )
    if updated < desired:
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for rollout to finish: {updated} out of {desired} new pods have been updated",
        )
    available = integer(status, "numberAvailable")
    if available < desired:
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for rollout to finish: {available} of {desired} updated pods are available",
        )
    return Health(HealthStatus.HEALTHY)
