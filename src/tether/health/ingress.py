"""Health of Ingresses (networking.k8s.io, extensions): ready once given an address."""

from __future__ import annotations

from tether.health._fields import entries, mapping
from tether.model import Health, HealthStatus, Obj


def assess(obj: Obj) -> Health:
    if entries(mapping(obj, "status", "loadBalancer"), "ingress"):
        return Health(HealthStatus.HEALTHY)
    return Health(HealthStatus.PROGRESSING, "waiting for the ingress controller to give an address")
