"""Health of core Services: only a LoadBalancer has something to wait for, its address."""

from __future__ import annotations

from tether.health._fields import entries, mapping, text
from tether.model import Health, HealthStatus, Obj


def assess(obj: Obj) -> Health:
    if text(mapping(obj, "spec"), "type") != "LoadBalancer":
        return Health(HealthStatus.HEALTHY)
    if entries(mapping(obj, "status", "loadBalancer"), "ingress"):
        return Health(HealthStatus.HEALTHY)
    return Health(HealthStatus.PROGRESSING, "waiting for the load balancer to get an address")
