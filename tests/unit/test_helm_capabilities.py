"""Objects of built-in APIs the cluster does not serve are refused at render, naming the file."""

from __future__ import annotations

import pytest

from tether.errors import RenderError
from tether.model import Manifest
from tether.render.helm_capabilities import check_served

pytestmark = pytest.mark.unit

BUILTIN = frozenset({"v1", "apps/v1", "autoscaling/v1", "autoscaling/v2", "batch/v1", "policy/v1"})
CLUSTER_1_20 = (
    "v1",
    "v1/ConfigMap",
    "apps/v1",
    "apps/v1/Deployment",
    "autoscaling/v1",
    "autoscaling/v2beta2",
    "autoscaling/v2beta2/HorizontalPodAutoscaler",
    "batch/v1",
    "batch/v1/Job",
    "batch/v1beta1",
    "batch/v1beta1/CronJob",
    "crontabs.example/v1",
)


def obj(api_version: str, kind: str, file: str = "c/templates/x.yaml") -> Manifest:
    return Manifest({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}, file)


def test_served_objects_and_custom_resources_pass() -> None:
    check_served(
        [
            obj("v1", "ConfigMap"),
            obj("apps/v1", "Deployment"),
            obj("autoscaling/v2beta2", "HorizontalPodAutoscaler"),
            obj("stable.example.com/v1", "CronTab"),
        ],
        CLUSTER_1_20,
        BUILTIN,
        "1.20.2",
    )


def test_a_version_helm_claims_but_the_cluster_lacks_is_refused() -> None:
    with pytest.raises(RenderError) as info:
        check_served(
            [obj("autoscaling/v2", "HorizontalPodAutoscaler", "c/templates/hpa.yaml")],
            CLUSTER_1_20,
            BUILTIN,
            "1.20.2",
        )
    assert info.value.file == "c/templates/hpa.yaml"
    assert "autoscaling/v2 HorizontalPodAutoscaler, which Kubernetes 1.20.2 does not serve" in str(
        info.value
    )
    assert "built-in list" in info.value.message


def test_a_kind_missing_from_a_served_version_is_refused() -> None:
    with pytest.raises(RenderError) as info:
        check_served([obj("batch/v1", "CronJob")], CLUSTER_1_20, BUILTIN, "1.20.2")
    assert "CronJob in batch/v1, which Kubernetes 1.20.2 does not serve" in info.value.message
    assert "built-in list" not in info.value.message


def test_nothing_is_checked_without_the_clusters_list() -> None:
    check_served([obj("autoscaling/v2", "HorizontalPodAutoscaler")], (), BUILTIN, "")


def test_kinds_are_only_checked_when_the_list_names_kinds() -> None:
    check_served([obj("batch/v1", "CronJob")], ("v1", "batch/v1"), BUILTIN, "1.20.2")
