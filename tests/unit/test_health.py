"""Health assessment pinned case by case against live-object fixtures, and app-level aggregation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tether.health import aggregate, assess, missing
from tether.health.hpa import V1_CONDITIONS_ANNOTATION
from tether.model import Health, HealthStatus, Obj, ResourceKey

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "health"

H = HealthStatus.HEALTHY
P = HealthStatus.PROGRESSING
D = HealthStatus.DEGRADED
S = HealthStatus.SUSPENDED

# fixture -> (expected status, substring of the expected message); None means no health notion.
EXPECTED: dict[str, tuple[HealthStatus | None, str]] = {
    "deployment-healthy": (H, ""),
    "deployment-progressing": (P, "1 out of 3 new replicas have been updated"),
    "deployment-degraded": (
        D,
        'progress deadline exceeded: ReplicaSet "web-5d6f7c8b9a" has timed out progressing.',
    ),
    "deployment-paused": (S, "deployment is paused"),
    "deployment-generation-not-observed": (
        P,
        "waiting for rollout to finish: "
        "observed deployment generation less than desired generation",
    ),
    "deployment-old-replicas-pending": (P, "1 old replicas are pending termination"),
    "deployment-updated-replicas-unavailable": (P, "2 of 3 updated replicas are available"),
    "deployment-deleting": (P, "pending deletion"),
    "statefulset-healthy": (H, ""),
    "statefulset-progressing": (P, "waiting for 2 pods to be ready"),
    "statefulset-generation-not-observed": (P, "spec update to be observed"),
    "statefulset-rolling-update": (P, "rolling update to finish: 1 out of 3 new pods"),
    "statefulset-revision-not-current": (P, "3 pods at revision postgres-64c8d5b7f9"),
    "statefulset-partition-progressing": (P, "partitioned roll out to finish: 1 out of 2 new pods"),
    "statefulset-partition-healthy": (H, "partitioned roll out complete: 2 new pods"),
    "statefulset-ondelete": (H, "statefulset has 3 ready pods"),
    "daemonset-healthy": (H, ""),
    "daemonset-progressing": (P, "2 out of 4 new pods have been updated"),
    "daemonset-unavailable": (P, "3 of 4 updated pods are available"),
    "daemonset-generation-not-observed": (P, "observed daemon set generation less than desired"),
    "daemonset-ondelete": (H, "1 out of 4 pods run the current template"),
    "replicaset-healthy": (H, ""),
    "replicaset-progressing": (P, "1 out of 3 replicas are available"),
    "replicaset-generation-not-observed": (P, "observed replica set generation less than desired"),
    "replicaset-degraded": (
        D,
        'FailedCreate: pods "web-7b8c4f9d6e-x9k2p" is forbidden: exceeded quota',
    ),
    "pod-running": (H, ""),
    "pod-running-not-ready": (P, "waiting for containers to be ready: web"),
    "pod-crashloop": (D, 'container "web": CrashLoopBackOff: back-off 5m0s restarting'),
    "pod-imagepullbackoff": (D, 'container "web": ImagePullBackOff: Back-off pulling image'),
    "pod-errimagepull": (D, 'container "web": ErrImagePull: failed to pull and unpack image'),
    "pod-createcontainerconfigerror": (
        D,
        'container "web": CreateContainerConfigError: secret "web-db-credentials" not found',
    ),
    "pod-invalidimagename": (D, 'container "web": InvalidImageName: Failed to apply'),
    "pod-init-crashloop": (D, 'container "migrate": CrashLoopBackOff'),
    "pod-imagepullbackoff-restart-never": (P, "waiting for the pod to start"),
    "pod-running-restart-never": (P, "running to completion"),
    "pod-pending": (P, "Unschedulable: 0/3 nodes are available: 3 Insufficient cpu."),
    "pod-succeeded": (H, ""),
    "pod-failed": (D, "Evicted: The node was low on resource: memory."),
    "pod-failed-oomkilled": (D, 'container "web": OOMKilled (exit code 137)'),
    "job-running": (P, "1 active, 0 succeeded, 0 failed"),
    "job-succeeded": (H, "Reached expected number of succeeded pods"),
    "job-failed": (D, "BackoffLimitExceeded: Job has reached the specified backoff limit"),
    "job-failure-target": (D, "DeadlineExceeded: Job was active longer than specified deadline"),
    "job-suspended": (S, "job is suspended"),
    "svc-clusterip": (H, ""),
    "svc-loadbalancer-progressing": (P, "waiting for the load balancer to get an address"),
    "svc-loadbalancer-healthy": (H, ""),
    "ingress-healthy": (H, ""),
    "ingress-progressing": (P, "waiting for the ingress controller to give an address"),
    "ingress-extensions-healthy": (H, ""),
    "pvc-bound": (H, ""),
    "pvc-pending": (P, "waiting for a volume to be bound"),
    "pvc-lost": (D, "the bound volume no longer exists"),
    "hpa-v2-healthy": (H, ""),
    "hpa-v2-degraded": (
        D,
        "FailedGetResourceMetric: the HPA was unable to compute the replica count",
    ),
    "hpa-v2-degraded-unable-to-scale": (
        D,
        "FailedGetScale: the HPA controller was unable to get the target's current scale",
    ),
    "hpa-v2-scaling-disabled": (H, ""),
    "hpa-v2-progressing": (P, "waiting to autoscale"),
    "hpa-v2beta2-healthy": (H, "the desired replica count is less than the minimum replica count"),
    "hpa-v1-healthy": (H, ""),
    "hpa-v1-degraded": (D, "missing request for cpu in container api"),
    "hpa-v1-progressing": (P, "waiting to autoscale"),
    "crd-established": (H, ""),
    "crd-progressing": (P, "not established yet: Installing"),
    "crd-names-not-accepted": (
        D,
        'names not accepted: PluralConflict: "widgets" is already in use',
    ),
    "crd-non-structural": (D, "spec.preserveUnknownFields: Invalid value"),
    "apiservice-available": (H, "Passed: all checks passed"),
    "apiservice-local": (H, "Local APIServices are always available"),
    "apiservice-unavailable": (P, "FailedDiscoveryCheck: failing or missing response"),
    "generic-ready-true": (H, "Certificate is up to date and has not expired"),
    "generic-ready-false-progressing": (P, "DoesNotExist: Issuing certificate"),
    "generic-ready-false-degraded": (
        D,
        "InstallFailed: Helm install failed for release shop/redis",
    ),
    "generic-ready-false-err-prefix": (D, "ErrRegisterACMEAccount: Failed to register"),
    "generic-ready-unknown": (P, 'RevisionMissing: Configuration "hello" is waiting'),
    "generic-stalled": (D, "URLInvalid: failed to configure authentication options"),
    "generic-reconciling": (P, "Progressing: Running health checks for revision main@sha1:"),
    "generic-generation-not-observed": (P, "waiting for the controller to observe generation 2"),
    "generic-available-true": (H, ""),
    "generic-available-false": (P, "NoPodReady: shard 0"),
    "generic-no-conditions": (None, ""),
    "configmap": (None, ""),
    "secret": (None, ""),
    "serviceaccount": (None, ""),
    "clusterrole": (None, ""),
}


def load(name: str) -> Obj:
    obj = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
    assert isinstance(obj, dict)
    return obj


def test_every_fixture_has_an_expectation() -> None:
    on_disk = {p.stem for p in FIXTURES.glob("*.yaml")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED.items()), ids=sorted(EXPECTED))
def test_assess_fixture(name: str, expected: tuple[HealthStatus | None, str]) -> None:
    status, message = expected
    health = assess(load(name))
    if status is None:
        assert health is None
        return
    assert health is not None
    assert health.status is status, health.message
    assert message in health.message


def test_v1_hpa_with_unparseable_conditions_annotation_is_unknown() -> None:
    obj = load("hpa-v1-healthy")
    obj["metadata"]["annotations"][V1_CONDITIONS_ANNOTATION] = '[{"type": "AbleToScale"'
    health = assess(obj)
    assert health is not None
    assert health.status is HealthStatus.UNKNOWN
    assert V1_CONDITIONS_ANNOTATION in health.message


def test_deleting_object_is_progressing_even_without_a_health_notion() -> None:
    obj = load("configmap")
    obj["metadata"]["deletionTimestamp"] = "2025-03-16T10:00:05Z"
    obj["metadata"]["finalizers"] = ["example.com/cleanup"]
    assert assess(obj) == Health(HealthStatus.PROGRESSING, "pending deletion")


def test_stalled_wins_over_reconciling() -> None:
    obj = load("generic-reconciling")
    obj["status"]["conditions"].append(
        {
            "type": "Stalled",
            "status": "True",
            "reason": "BuildFailed",
            "message": "kustomization path not found",
        }
    )
    assert assess(obj) == Health(HealthStatus.DEGRADED, "BuildFailed: kustomization path not found")


def test_statefulset_without_replicas_defaults_to_one() -> None:
    obj = load("statefulset-healthy")
    del obj["spec"]["replicas"]
    obj["status"]["readyReplicas"] = 0
    assert assess(obj) == Health(HealthStatus.PROGRESSING, "waiting for 1 pods to be ready")


def test_run_once_pod_waiting_on_an_error_is_not_degraded_before_it_ends() -> None:
    crashloop = load("pod-crashloop")
    crashloop["spec"]["restartPolicy"] = "OnFailure"
    health = assess(crashloop)
    assert health is not None
    assert health.status is HealthStatus.PROGRESSING


@pytest.mark.parametrize(
    "api_version_kind",
    [
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("apps/v1", "ReplicaSet"),
        ("v1", "Pod"),
        ("batch/v1", "Job"),
        ("v1", "Service"),
        ("networking.k8s.io/v1", "Ingress"),
        ("v1", "PersistentVolumeClaim"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("apiregistration.k8s.io/v1", "APIService"),
        ("example.com/v1", "Widget"),
    ],
    ids=lambda avk: avk[1],
)
def test_malformed_fields_do_not_raise(api_version_kind: tuple[str, str]) -> None:
    api_version, kind = api_version_kind
    obj: Obj = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x", "generation": "2", "annotations": None},
        "spec": {"replicas": True, "updateStrategy": "RollingUpdate", "type": 7},
        "status": {
            "conditions": ["Ready", {"type": "Ready", "status": None}],
            "containerStatuses": {"web": {}},
            "loadBalancer": [],
            "observedGeneration": None,
            "phase": 3,
        },
    }
    health = assess(obj)
    assert health is None or isinstance(health, Health)


def test_aggregate_of_nothing_is_healthy() -> None:
    assert aggregate([]) == Health(HealthStatus.HEALTHY)


def test_aggregate_is_the_worst_with_its_message() -> None:
    healths = [
        Health(HealthStatus.HEALTHY),
        Health(HealthStatus.PROGRESSING, "waiting for 1 pods to be ready"),
        Health(HealthStatus.DEGRADED, 'container "web": CrashLoopBackOff'),
        Health(HealthStatus.SUSPENDED, "deployment is paused"),
    ]
    assert aggregate(healths) == Health(HealthStatus.DEGRADED, 'container "web": CrashLoopBackOff')


def test_aggregate_orders_by_severity() -> None:
    # Healthy < Suspended < Progressing < Unknown < Missing < Degraded
    ladder = [
        HealthStatus.HEALTHY,
        HealthStatus.SUSPENDED,
        HealthStatus.PROGRESSING,
        HealthStatus.UNKNOWN,
        HealthStatus.MISSING,
        HealthStatus.DEGRADED,
    ]
    for i, worse in enumerate(ladder):
        for better in ladder[:i]:
            pair = [Health(better, "b"), Health(worse, "w")]
            assert aggregate(pair) == Health(worse, "w")
            assert aggregate(reversed(pair)) == Health(worse, "w")


def test_aggregate_keeps_the_first_of_equals() -> None:
    first = Health(HealthStatus.PROGRESSING, "first")
    second = Health(HealthStatus.PROGRESSING, "second")
    assert aggregate(iter([first, second])) is first


def test_aggregate_over_fixtures() -> None:
    names = ["deployment-healthy", "svc-clusterip", "hpa-v2-progressing", "configmap"]
    healths = [h for h in (assess(load(n)) for n in names) if h is not None]
    assert aggregate(healths) == Health(HealthStatus.PROGRESSING, "waiting to autoscale")


def test_missing_names_the_object() -> None:
    key = ResourceKey("apps", "Deployment", "shop", "web")
    assert missing(key) == Health(
        HealthStatus.MISSING, "Deployment.apps shop/web is not in the cluster"
    )
    assert missing().status is HealthStatus.MISSING
    assert (
        aggregate([Health(HealthStatus.PROGRESSING), missing(key)]).status is HealthStatus.MISSING
    )
