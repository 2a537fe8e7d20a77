"""Order of application: sync waves, then tiers by kind, so dependencies exist first.

Within one step objects are independent and are applied concurrently. Namespaces come
before everything, CRDs before the custom resources that need them, and configuration
(service accounts, RBAC, config maps, secrets, volumes) before the workloads that mount it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from tether.model import Manifest
from tether.sync.annotations import SYNC_WAVE, annotation

# Lower tiers first. Kinds not listed (workloads, services, custom resources) share the last.
_TIERS: dict[str, int] = {
    "Namespace": 0,
    "CustomResourceDefinition": 1,
    "NetworkPolicy": 2,
    "ResourceQuota": 2,
    "LimitRange": 2,
    "PodSecurityPolicy": 2,
    "PodDisruptionBudget": 2,
    "ServiceAccount": 2,
    "Secret": 2,
    "ConfigMap": 2,
    "StorageClass": 2,
    "PersistentVolume": 2,
    "PersistentVolumeClaim": 2,
    "ClusterRole": 2,
    "ClusterRoleBinding": 3,
    "Role": 2,
    "RoleBinding": 3,
    "PriorityClass": 2,
}
LAST_TIER = 4

# A stable kind order inside a step, for readable results (same spirit as kubectl/Helm).
_KIND_ORDER = [
    "Namespace",
    "CustomResourceDefinition",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "Ingress",
    "APIService",
]
_KIND_RANK = {k: i for i, k in enumerate(_KIND_ORDER)}


def wave_of(m: Manifest) -> int:
    """``tether.dev/sync-wave`` (or Argo CD's ``argocd.argoproj.io/sync-wave``); 0 when
    absent or not an integer."""
    try:
        return int(annotation(m.obj, SYNC_WAVE) or 0)
    except (TypeError, ValueError):
        return 0


def tier_of(kind: str) -> int:
    return _TIERS.get(kind, LAST_TIER)


def sort_key(m: Manifest) -> tuple[int, str, str, str, str]:
    k = m.key
    return (_KIND_RANK.get(k.kind, len(_KIND_ORDER)), k.kind, k.group, k.namespace, k.name)


@dataclass
class Step:
    wave: int
    tier: int
    manifests: list[Manifest]


def plan_steps(manifests: list[Manifest]) -> list[Step]:
    """Group into (wave, tier) steps in order; each step's manifests stably sorted."""
    groups: dict[tuple[int, int], list[Manifest]] = defaultdict(list)
    for m in manifests:
        groups[(wave_of(m), tier_of(m.key.kind))].append(m)
    return [
        Step(wave, tier, sorted(groups[(wave, tier)], key=sort_key))
        for wave, tier in sorted(groups)
    ]
