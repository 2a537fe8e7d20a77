"""Health of apiextensions.k8s.io CustomResourceDefinitions: names accepted and API established."""

from __future__ import annotations

from tether.health._fields import condition, conditions, is_true, reason_message
from tether.model import Health, HealthStatus, Obj


def assess(obj: Obj) -> Health:
    if not conditions(obj):
        return Health(
            HealthStatus.PROGRESSING, "waiting for the API server to accept the definition"
        )
    names = condition(obj, "NamesAccepted")
    if names is not None and names.get("status") == "False":
        return Health(HealthStatus.DEGRADED, f"names not accepted: {reason_message(names)}")
    structural = condition(obj, "NonStructuralSchema")
    if is_true(structural):
        return Health(
            HealthStatus.DEGRADED, f"schema is not structural: {reason_message(structural)}"
        )
    established = condition(obj, "Established")
    if is_true(established):
        return Health(HealthStatus.HEALTHY)
    detail = reason_message(established) if established is not None else ""
    return Health(
        HealthStatus.PROGRESSING,
        f"not established yet: {detail}" if detail else "not established yet",
    )
