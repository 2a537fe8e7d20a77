"""How ``tether app wait`` judges an Application from its status, and what it says is still
not so; how a sync's outcome reads as JSON."""

from __future__ import annotations

from typing import Any

import pytest

from tether.model import ResourceKey
from tether.service.results import SyncOutcome
from tether.service.view import missing, view_of_status
from tether.sync.state import TaskRecord

pytestmark = pytest.mark.unit


def app_obj(status: dict[str, Any], operation: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "web", "namespace": "apps"}, "status": status}
    if operation is not None:
        obj["operation"] = operation
    return obj


SYNCED_HEALTHY = {
    "sync": {"status": "Synced"},
    "health": {"status": "Healthy"},
    "resources": [
        {"group": "", "kind": "ConfigMap", "namespace": "d", "name": "a", "status": "Synced"},
    ],
    "operationState": {"phase": "Succeeded", "message": "changed 1 object(s)"},
}


def test_synced_healthy_and_idle_is_reached() -> None:
    view = view_of_status(app_obj(SYNCED_HEALTHY))
    assert missing(view, health=True, sync=True) == []
    assert view.result().operation_phase == "Succeeded"


def test_names_the_objects_that_hold_sync_and_health_back() -> None:
    status = {
        "sync": {"status": "OutOfSync"},
        "health": {"status": "Progressing", "message": "waiting for rollout"},
        "resources": [
            {"kind": "ConfigMap", "namespace": "d", "name": "b", "status": "OutOfSync"},
            {
                "group": "apps",
                "kind": "Deployment",
                "namespace": "d",
                "name": "web",
                "status": "Synced",
                "health": {"status": "Progressing", "message": "0 of 1 ready"},
            },
        ],
    }
    left = missing(view_of_status(app_obj(status)), health=True, sync=True)
    assert left == [
        "sync is OutOfSync: ConfigMap d/b (OutOfSync)",
        "health is Progressing (waiting for rollout): "
        "Deployment.apps d/web (Progressing: 0 of 1 ready)",
    ]
    # Only what was asked for is judged.
    assert missing(view_of_status(app_obj(status)), health=False, sync=True) == [left[0]]


def test_a_running_or_requested_operation_is_always_waited_for() -> None:
    running = {**SYNCED_HEALTHY, "operationState": {"phase": "Running", "message": "wave 2"}}
    assert missing(view_of_status(app_obj(running)), health=False, sync=False) == [
        "an operation is Running (wave 2)"
    ]
    pending = app_obj(SYNCED_HEALTHY, operation={"id": "abc", "sync": {}})
    assert missing(view_of_status(pending), health=False, sync=False) == [
        "a requested sync has not started yet"
    ]


def test_many_objects_are_counted_past_five() -> None:
    rows = [
        {"kind": "ConfigMap", "namespace": "d", "name": f"c{i}", "status": "Missing"}
        for i in range(8)
    ]
    status = {"sync": {"status": "OutOfSync"}, "health": {"status": "Healthy"}, "resources": rows}
    (line,) = missing(view_of_status(app_obj(status)), health=False, sync=True)
    assert line.endswith("ConfigMap d/c4 (Missing) and 3 more")


def test_outcome_as_json_keeps_action_and_adds_phase_and_wave() -> None:
    key = ResourceKey("apps", "Deployment", "d", "web")
    out = SyncOutcome(
        "Succeeded",
        "changed 1 object(s)",
        "abc123",
        run_by="ctl-1",
        by_controller=True,
        records=[TaskRecord(key, "Sync", 2, "configured", status="Synced")],
    ).to_dict()
    assert (out["runBy"], out["byController"], out["phase"]) == ("ctl-1", True, "Succeeded")
    (rec,) = out["resources"]
    assert (rec["kind"], rec["name"], rec["action"], rec["syncPhase"], rec["wave"]) == (
        "Deployment",
        "web",
        "configured",
        "Sync",
        2,
    )
