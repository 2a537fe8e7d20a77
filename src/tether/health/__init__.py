"""Health assessment: the state a live object is in, and an app's health as the worst of them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from tether.health import (
    apiextensions,
    apiservice,
    daemonset,
    deployment,
    generic,
    hpa,
    ingress,
    job,
    pod,
    pvc,
    replicaset,
    service,
    statefulset,
)
from tether.health._fields import mapping
from tether.model import Health, HealthStatus, Obj, ResourceKey

__all__ = ["aggregate", "assess", "missing", "of_objects"]

_ASSESSORS: dict[tuple[str, str], Callable[[Obj], Health]] = {
    ("apps", "Deployment"): deployment.assess,
    ("apps", "StatefulSet"): statefulset.assess,
    ("apps", "DaemonSet"): daemonset.assess,
    ("apps", "ReplicaSet"): replicaset.assess,
    ("", "Pod"): pod.assess,
    ("batch", "Job"): job.assess,
    ("", "Service"): service.assess,
    ("networking.k8s.io", "Ingress"): ingress.assess,
    ("extensions", "Ingress"): ingress.assess,
    ("", "PersistentVolumeClaim"): pvc.assess,
    ("autoscaling", "HorizontalPodAutoscaler"): hpa.assess,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): apiextensions.assess,
    ("apiregistration.k8s.io", "APIService"): apiservice.assess,
}

# Built-ins whose status, if they have one, records bookkeeping rather than whether they work;
# listing them keeps the generic condition rules from guessing about them.
_NO_HEALTH = frozenset(
    {
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "ServiceAccount"),
        ("", "Namespace"),
        ("", "Endpoints"),
        ("", "LimitRange"),
        ("", "ResourceQuota"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("networking.k8s.io", "IngressClass"),
        ("storage.k8s.io", "StorageClass"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    }
)


def assess(obj: Obj) -> Health | None:
    """The health of a live object, or None when its kind has no notion of health."""
    # An object held by finalizers is on its way out whatever its kind; until it is gone
    # the app has not settled.
    if mapping(obj, "metadata").get("deletionTimestamp"):
        return Health(HealthStatus.PROGRESSING, "pending deletion")
    key = ResourceKey.of(obj)
    group_kind = (key.group, key.kind)
    if group_kind in _NO_HEALTH:
        return None
    assessor = _ASSESSORS.get(group_kind)
    return assessor(obj) if assessor is not None else generic.assess(obj)


def aggregate(healths: Iterable[Health]) -> Health:
    """The worst health by severity with its message; the first of equals wins. Healthy if empty."""
    return max(healths, key=lambda h: h.status.severity, default=Health(HealthStatus.HEALTHY))


def missing(key: ResourceKey | None = None) -> Health:
    """The health of a desired object that is not in the cluster."""
    return Health(
        HealthStatus.MISSING,
        f"{key} is not in the cluster" if key is not None else "not in the cluster",
    )


def of_objects(keys: Iterable[ResourceKey], live: Mapping[ResourceKey, Obj]) -> Health:
    """The health of a set of objects from the cluster alone: each one present is assessed,
    each one gone is Missing. Needs nothing from Git, so it holds while Git is unreachable."""
    healths: list[Health] = []
    for key in keys:
        obj = live.get(key)
        h = assess(obj) if obj is not None else missing(key)
        if h is not None:
            healths.append(h)
    return aggregate(healths)
