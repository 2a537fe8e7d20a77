"""Health of apps StatefulSets: observed, ready, and rolled out as far as the strategy asks."""

from __future__ import annotations

from tether.health._fields import generation_observed, integer, mapping, text
from tether.model import Health, HealthStatus, Obj


def assess(obj: Obj) -> Health:
    spec, status = mapping(obj, "spec"), mapping(obj, "status")
    if not generation_observed(obj):
        return Health(
            HealthStatus.PROGRESSING, "waiting for statefulset spec update to be observed"
        )
    desired = integer(spec, "replicas", 1)
    ready = integer(status, "readyReplicas")
    if ready < desired:
        return Health(HealthStatus.PROGRESSING, f"waiting for {desired - ready} pods to be ready")
    strategy = mapping(spec, "updateStrategy")
    # With OnDelete the controller never replaces pods itself, so there is no rollout to wait for.
    if text(strategy, "type") == "OnDelete":
        return Health(HealthStatus.HEALTHY, f"statefulset has {ready} ready pods")
    partition = integer(mapping(strategy, "rollingUpdate"), "partition")
    updated = integer(status, "updatedReplicas")
    target = max(desired - partition, 0)
    if updated < target:
        what = "partitioned roll out" if partition else "rolling update"
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for {what} to finish: {updated} out of {target} new pods have been updated",
        )
    if partition:
        # Pods below the partition stay on the old revision by design, so the revisions
        # never converge; the rollout is done once the pods above it are updated.
        return Health(
            HealthStatus.HEALTHY, f"partitioned roll out complete: {updated} new pods updated"
        )
    update_revision = text(status, "updateRevision")
    if update_revision != text(status, "currentRevision"):
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for rolling update to complete: {updated} pods at revision {update_revision}",
        )
    return Health(HealthStatus.HEALTHY)
