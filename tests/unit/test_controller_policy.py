"""The controller's policy: which reason names a reconcile, retries, a terminated operation."""

from __future__ import annotations

from typing import Any

import pytest

from tether.api.application import Application, new_application
from tether.compare import Comparison
from tether.controller import policy
from tether.controller.state import AppState

pytestmark = pytest.mark.unit


def app_with(
    status: dict[str, Any] | None = None, retry: dict[str, Any] | None = None
) -> Application:
    obj = new_application(
        "web", "apps", repo_url="https://git.example/r.git", path=".", auto_sync=True
    )
    obj["metadata"]["generation"] = 3
    if retry is not None:
        obj["spec"]["syncPolicy"]["retry"] = retry
    if status is not None:
        obj["status"] = status
    return Application.from_obj(obj)


def test_the_most_telling_reason_names_the_reconcile() -> None:
    assert policy.main_reason({"live", "retry", "poll"}) == "poll"
    assert policy.main_reason({"webhook", "spec"}) == "webhook"
    assert policy.main_reason({"live", "operation"}) == "resync"


def test_retries_stop_at_the_limit_and_never_with_minus_one() -> None:
    limited = app_with(retry={"limit": 2, "backoff": {"duration": "5s", "factor": 2}})
    assert [policy.retry_delay(limited, n) for n in (1, 2, 3)] == [5.0, 10.0, None]
    endless = app_with(retry={"limit": -1})
    assert policy.retry_delay(endless, 50) is not None


def test_failures_count_per_revision_and_spec_and_a_success_forgets_them() -> None:
    app = app_with()
    cmp = Comparison(app, None)
    st = AppState()
    assert policy.count_outcome(app, cmp, st, ok=False) == 1
    assert policy.count_outcome(app, cmp, st, ok=False) == 2
    assert policy.count_outcome(app, cmp, st, ok=True) == 0
    assert st.attempts == {}


def test_a_terminated_operation_is_not_started_again_by_itself() -> None:
    stopped = {"phase": "Failed", "message": "terminated", "revision": "", "generation": 3}
    app = app_with({"operationState": stopped})
    assert policy.terminated(app, Comparison(app, None))
    failed = app_with({"operationState": {**stopped, "message": "apply failed"}})
    assert not policy.terminated(failed, Comparison(failed, None))
    respecced = app_with({"operationState": {**stopped, "generation": 2}})
    assert not policy.terminated(respecced, Comparison(respecced, None))
