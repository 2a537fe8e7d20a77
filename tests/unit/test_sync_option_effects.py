"""Pure parts of what sync options do: the manifest RespectIgnoreDifferences applies, the
managers a forced apply took fields from, and which update errors Force=true may answer."""

from __future__ import annotations

from typing import Any

import pytest

from tether.diff import IgnoreRule
from tether.diff.respect import keep_ignored_fields
from tether.errors import KubeError
from tether.model import ResourceKey
from tether.sync.takeover import fields_taken_from
from tether.sync.write import is_immutable_error

pytestmark = pytest.mark.unit
KEY = ResourceKey("apps", "Deployment", "prod", "web")


def deployment(replicas: int | None, image: str = "nginx:1", **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"containers": [{"name": "w", "image": image}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod", **extra},
        "spec": spec,
    }


@pytest.fixture
def replicas_rule() -> IgnoreRule:
    return IgnoreRule.from_spec(
        {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}
    )


def test_ignored_field_takes_the_live_value(replicas_rule: IgnoreRule) -> None:
    desired = deployment(1, "nginx:2")
    out = keep_ignored_fields(KEY, desired, deployment(5), [replicas_rule])
    assert out["spec"]["replicas"] == 5
    assert out["spec"]["template"] == desired["spec"]["template"]  # the rest is Git's
    assert desired["spec"]["replicas"] == 1  # the manifest itself is not modified


def test_ignored_field_the_live_object_lacks_is_left_out(replicas_rule: IgnoreRule) -> None:
    out = keep_ignored_fields(KEY, deployment(3), deployment(None), [replicas_rule])
    assert "replicas" not in out["spec"]


def test_a_new_object_or_no_matching_rule_applies_gits_manifest(replicas_rule: IgnoreRule) -> None:
    desired = deployment(1)
    assert keep_ignored_fields(KEY, desired, None, [replicas_rule]) is desired
    other = ResourceKey("apps", "StatefulSet", "prod", "web")
    assert keep_ignored_fields(other, desired, deployment(4), [replicas_rule]) is desired


def test_jq_and_nested_maps_restore_only_what_was_ignored() -> None:
    rule = IgnoreRule.from_spec(
        {"group": "apps", "kind": "Deployment", "jqPathExpressions": [".metadata.labels.tier"]}
    )
    desired = deployment(1, labels={"app": "web", "tier": "git"})
    live = deployment(1, labels={"app": "web", "tier": "live", "extra": "x"})
    out = keep_ignored_fields(KEY, desired, live, [rule])
    assert out["metadata"]["labels"] == {"app": "web", "tier": "live"}


def managed(*entries: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {
            "managedFields": [
                {"manager": m, "operation": "Update", "fieldsV1": f} for m, f in entries
            ]
        }
    }


def test_managers_that_lost_fields_are_named() -> None:
    spec = {"f:spec": {"f:replicas": {}, "f:paused": {}}}
    before = managed(
        ("kubectl-edit", spec), ("tether", {"f:data": {}}), ("hpa", {"f:spec": {"f:x": {}}})
    )
    after = managed(
        ("kubectl-edit", {"f:spec": {"f:paused": {}}}),
        ("tether", {"f:data": {}, "f:spec": {"f:replicas": {}}}),
        ("hpa", {"f:spec": {"f:x": {}}}),
    )
    assert fields_taken_from(before, after) == ["kubectl-edit"]
    gone = managed(("tether", {"f:spec": {"f:replicas": {}}}))
    assert fields_taken_from(before, gone) == ["hpa", "kubectl-edit"]
    grown = managed(("kubectl-edit", {"f:spec": {"f:replicas": {}, "f:paused": {}, "f:y": {}}}))
    assert fields_taken_from(before, grown) == ["hpa"]


@pytest.mark.parametrize(
    ("status", "message", "immutable"),
    [
        (
            422,
            'spec.clusterIP: Invalid value: "10.96.0.9": field is immutable',
            True,
        ),
        (
            422,
            'Job.batch "j" is invalid: spec.template: Invalid value: ...: field is immutable',
            True,
        ),
        (422, "spec: Forbidden: updates to statefulset spec for fields other than ...", True),
        (422, "spec.replicas: Invalid value: -1: must be greater than or equal to 0", False),
        (409, "field is immutable", False),
    ],
)
def test_which_errors_force_may_answer(status: int, message: str, immutable: bool) -> None:
    assert is_immutable_error(KubeError(message, status=status)) is immutable
