"""How a hook instance's state reads as Running, Succeeded or Failed (``hook_run.outcome``)."""

from __future__ import annotations

from typing import Any

import pytest

from tether.sync.hook_run import outcome
from tether.sync.state import HOOK_FAILED, HOOK_RUNNING, HOOK_SUCCEEDED

pytestmark = pytest.mark.unit


def job(*conditions: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {},
        "status": {"conditions": list(conditions), **status},
    }


def test_a_complete_job_succeeded() -> None:
    phase, _ = outcome(job({"type": "Complete", "status": "True"}))
    assert phase == HOOK_SUCCEEDED


def test_a_failed_job_failed_with_its_reason() -> None:
    cond = {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "late"}
    phase, message = outcome(job(cond))
    assert phase == HOOK_FAILED
    assert "DeadlineExceeded" in message and "late" in message


def test_a_job_without_an_end_runs() -> None:
    assert outcome(job(active=1))[0] == HOOK_RUNNING


def test_a_suspended_job_still_runs() -> None:
    obj = job()
    obj["spec"]["suspend"] = True
    assert outcome(obj)[0] == HOOK_RUNNING


def pod(phase: str, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "status": {"phase": phase, **status},
    }


def test_pods_by_phase() -> None:
    assert outcome(pod("Succeeded"))[0] == HOOK_SUCCEEDED
    assert outcome(pod("Running"))[0] == HOOK_RUNNING
    assert outcome(pod("Pending"))[0] == HOOK_RUNNING
    term = {"terminated": {"exitCode": 3, "reason": "Error"}}
    phase, message = outcome(pod("Failed", containerStatuses=[{"name": "c", "state": term}]))
    assert phase == HOOK_FAILED
    assert message == "container c exited with code 3: Error"


def test_a_kind_without_health_succeeds_at_once() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}
    assert outcome(cm)[0] == HOOK_SUCCEEDED


def test_a_degraded_object_failed() -> None:
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "generation": 1},
        "spec": {"replicas": 1},
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": "too slow",
                }
            ],
        },
    }
    phase, message = outcome(deploy)
    assert phase == HOOK_FAILED
    assert "too slow" in message or "ProgressDeadlineExceeded" in message
