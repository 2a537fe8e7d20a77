"""Health of core PersistentVolumeClaims from their binding phase."""

from __future__ import annotations

from tether.health._fields import mapping, text
from tether.model import Health, HealthStatus, Obj


def assess(obj: Obj) -> Health:
    phase = text(mapping(obj, "status"), "phase")
    if phase == "Bound":
        return Health(HealthStatus.HEALTHY)
    # A claim the API server has only just stored has no phase yet; it is about to be Pending.
    if phase in ("Pending", ""):
        return Health(HealthStatus.PROGRESSING, "waiting for a volume to be bound")
    if phase == "Lost":
        return Health(HealthStatus.DEGRADED, "the bound volume no longer exists")
    return Health(HealthStatus.UNKNOWN, f"unknown phase {phase!r}")
