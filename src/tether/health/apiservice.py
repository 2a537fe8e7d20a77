"""Health of apiregistration.k8s.io APIServices: whether the aggregated API is being served."""

from __future__ import annotations

from tether.health._fields import condition, reason_message
from tether.model import Health, HealthStatus, Obj


def assess(obj: Obj) -> Health:
    available = condition(obj, "Available")
    if available is None:
        return Health(HealthStatus.PROGRESSING, "waiting for the API service to be available")
    if available.get("status") == "True":
        return Health(HealthStatus.HEALTHY, reason_message(available))
    # Unavailable is usually the backing Deployment still starting, or briefly unreachable;
    # that workload carries its own health and says Degraded when it really is broken.
    return Health(HealthStatus.PROGRESSING, reason_message(available))
