"""Blame's pure stages on YAML fixtures: an object as field paths (list items by the merge
keys the server recorded), attribution of each field to the commit whose render last
changed it, who wrote each live field (managedFields), and the drift timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.audit import AuditRecord
from tether.blame.attribute import Step, attribute
from tether.blame.drift import timeline
from tether.blame.fields import REDACTED, flatten, live_fields, matches, shown_value
from tether.blame.live import Write, field_owners, live_writer, writers_of
from tether.blame.target import find_key, parse_target
from tether.diff.merge_keys import shape_of
from tether.errors import InvalidSpec
from tether.model import ResourceKey

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "blame"
CONTAINER = "spec.template.spec.containers[name=web]"


def load(name: str) -> Any:
    return yaml.safe_load((FIXTURES / name).read_text())


def test_flatten_names_list_items_by_the_servers_merge_keys() -> None:
    live = load("deployment-live.yaml")
    fields = flatten(load("deployment-render.yaml"), shape_of(live))
    assert fields == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata.name": "web",
        "metadata.labels.app": "web",
        "spec.replicas": 2,
        "spec.selector.matchLabels.app": "web",
        "spec.template.metadata.labels.app": "web",
        f"{CONTAINER}.name": "web",
        f"{CONTAINER}.image": "nginx:1.27",
        f"{CONTAINER}.args": ["--port", "8080"],
        f"{CONTAINER}.ports[containerPort=8080].containerPort": 8080,
    }


def test_flatten_without_a_live_object_names_items_by_index() -> None:
    fields = flatten(load("deployment-render.yaml"))
    assert fields["spec.template.spec.containers[0].image"] == "nginx:1.27"


def test_live_fields_are_those_the_render_sets_matched_by_key() -> None:
    live = load("deployment-live.yaml")
    render = load("deployment-render.yaml")
    values = live_fields(live, render, shape_of(live))
    # The sidecar comes first in the live list and is not Git's: matched by name, not index.
    assert values[f"{CONTAINER}.image"] == "nginx:1.27"
    assert values["spec.replicas"] == 5
    assert "spec.template.spec.containers[name=sidecar].image" not in values
    assert "metadata.labels.team" not in values


def test_managed_fields_give_each_field_its_writers() -> None:
    owners = field_owners(load("deployment-live.yaml"))
    tether = Write("tether", "Apply", "2026-11-27T10:00:00Z")
    someone = Write("someone", "Update", "2026-11-27T11:30:00Z")
    assert owners["spec.replicas"] == [someone]
    assert owners[f"{CONTAINER}.image"] == [tether]
    assert owners[f"{CONTAINER}.ports[containerPort=8080,protocol=TCP].containerPort"] == [tether]
    # The render leaves protocol to its default, so its path names the port by containerPort.
    assert owners[f"{CONTAINER}.ports[containerPort=8080].containerPort"] == [tether]
    assert owners["metadata.labels.team"] == [
        Write("kubectl-edit", "Update", "2026-11-27T11:45:00Z")
    ]
    # "." only says an item exists; the status subresource is not tether's business.
    assert CONTAINER not in owners
    assert not any(p.startswith("status") for p in owners)
    # A field owned whole (the selector) owns what lies under it.
    assert writers_of(owners, "spec.selector.matchLabels.app") == [tether]
    assert live_writer(writers_of(owners, "spec.replicas")) == someone
    assert live_writer([tether, someone]) == someone, "another writer explains a difference"
    assert live_writer([tether]) == tether
    assert live_writer([]) is None


def test_attribution_walks_back_to_the_commit_that_set_each_value() -> None:
    doc = load("history.yaml")
    steps = [Step(s["commit"], s["fields"]) for s in doc["steps"]]
    found = attribute(steps)
    assert {p: (a.commit, a.at_or_before) for p, a in found.items()} == {
        p: (w["commit"], w["atOrBefore"]) for p, w in doc["want"].items()
    }


def test_a_value_unchanged_over_the_whole_history_is_at_or_before_its_oldest_commit() -> None:
    steps = [Step(0, {"a": 1}), Step(1, {"a": 1}), Step(2, None), Step(3, {"a": 1})]
    assert attribute(steps)["a"].commit == 3
    assert attribute(steps)["a"].at_or_before
    assert attribute(steps)["a"].origin, "no change of it was seen"
    # ... unless the walk reached the branch's first commit: then that commit set it.
    assert not attribute(steps, complete=True)["a"].at_or_before


def test_secret_values_are_redacted_for_display_only() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "stringData": {"password": "s3cr3t"}}
    fields = flatten(secret)
    # Compared as stored (stringData folded into data), shown masked.
    assert fields == {"apiVersion": "v1", "kind": "Secret", "data.password": "czNjcjN0"}
    assert shown_value(secret, "data.password", "czNjcjN0") == REDACTED
    assert shown_value(secret, "kind", "Secret") == "Secret"
    widget = {"apiVersion": "example.com/v1", "kind": "Secret"}
    assert shown_value(widget, "data.password", "x") == "x", "only the core Secret is masked"


def test_field_prefix_matches_whole_segments() -> None:
    assert matches("spec.template.spec.containers[name=web].image", "spec.template")
    assert matches("spec.template.spec.containers[name=web].image", "spec.template.spec.containers")
    assert not matches("spec.templates", "spec.template")
    assert matches("anything", "")


def test_target_is_found_by_kind_namespace_and_name() -> None:
    keys = [
        ResourceKey("apps", "Deployment", "shop", "web"),
        ResourceKey("apps", "Deployment", "stage", "web"),
        ResourceKey("", "ConfigMap", "shop", "web"),
    ]
    assert find_key(parse_target("deployment/shop/web"), keys, "a") == keys[0]
    assert find_key(parse_target("deployment.apps/stage/web"), keys, "a") == keys[1]
    assert find_key(parse_target("ConfigMap/web"), keys, "a") == keys[2]
    with pytest.raises(InvalidSpec, match="several objects") as e:
        find_key(parse_target("deployment/web"), keys, "a")
    assert "KIND/NAMESPACE/NAME" in e.value.hint
    with pytest.raises(InvalidSpec, match="renders no deployment/api") as e:
        find_key(parse_target("deployment/api"), keys, "a")
    assert "Deployment/shop/web" in e.value.hint
    with pytest.raises(InvalidSpec, match="does not name an object"):
        parse_target("web")


def test_drift_timeline_says_who_and_whether_it_was_corrected() -> None:
    records = [AuditRecord.from_dict(r) for r in load("drift-records.yaml")]
    entries = timeline(list(reversed(records)))  # the store answers newest first
    rows = [(e.time, e.object_text, e.fields, e.manager, e.operation, e.outcome) for e in entries]
    assert rows == [
        (
            "2026-11-27T11:40:00.000Z",
            "Deployment/shop/web",
            [],
            "",
            "Delete",
            "self-heal stopped 2026-11-27T11:41:00.000Z: still drifted",
        ),
        (
            "2026-11-27T11:30:01.000Z",
            "Deployment/shop/web",
            ["spec.replicas"],
            "someone",
            "Update",
            "corrected 2026-11-27T11:30:02.000Z (self-heal)",
        ),
        (
            "2026-11-27T11:30:01.000Z",
            "ConfigMap/shop/settings",
            ["data.color"],
            "kubectl-edit",
            "Update",
            "not corrected",
        ),
    ]
    assert entries[1].to_dict()["changedAt"] == "2026-11-27T11:30:00Z"
    assert entries[2].to_dict()["corrected"] is None


def test_a_write_through_the_scale_subresource_counts_and_status_does_not() -> None:
    live = {
        "metadata": {
            "managedFields": [
                {
                    "manager": "kubectl",
                    "operation": "Update",
                    "time": "2026-11-27T12:00:00Z",
                    "subresource": "scale",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}},
                },
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "time": "2026-11-27T12:00:01Z",
                    "subresource": "status",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}},
                },
            ]
        }
    }
    assert field_owners(live) == {
        "spec.replicas": [Write("kubectl", "Update", "2026-11-27T12:00:00Z")]
    }
