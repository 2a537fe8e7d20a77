"""A Project's sync windows on top of an app's: each set judged apart, both must allow, and
every message names whose window holds the sync."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tether.api.application import Application, new_application
from tether.api.project import Project
from tether.controller.windows import SyncWindowClosed, check_manual_sync, evaluate, gate
from tether.project import windows_in_force

pytestmark = pytest.mark.unit

NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
"""A Wednesday: 09:00-17:00 windows are open, 22:00-06:00 ones closed."""
DAYTIME = {"schedule": "0 9 * * *", "duration": "8h"}
NIGHT = {"schedule": "0 22 * * *", "duration": "8h"}


def project(*windows: dict[str, Any]) -> Project:
    return Project.from_obj(
        {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "Project",
            "metadata": {"name": "team-a"},
            "spec": {"syncWindows": list(windows)},
        }
    )


def app(*windows: dict[str, Any]) -> Application:
    obj = new_application("web", "team-a", repo_url="https://x/y", path=".")
    obj["spec"]["syncWindows"] = list(windows)
    return Application.from_obj(obj)


def test_a_project_deny_window_holds_an_app_that_has_none() -> None:
    windows = windows_in_force(app(), project({"kind": "deny", **DAYTIME}))
    g = gate(windows, "web", "auto", "abc123", NOON)
    assert g.held and g.reason == "DenyWindowActive"
    assert "deny window 1 of project team-a ('0 9 * * *' for 8h, UTC) is active" in g.message
    verdict = evaluate(windows, NOON)
    assert verdict.to_status() is not None
    assert verdict.active[0].to_status(with_start=False)["scope"] == "project team-a"


def test_both_must_allow_an_allow_window_of_one_does_not_open_the_other() -> None:
    # The app's allow window is open; the project's is not: held, naming the project's.
    windows = windows_in_force(
        app({"kind": "allow", **DAYTIME}), project({"kind": "allow", **NIGHT})
    )
    verdict = evaluate(windows, NOON)
    assert not verdict.auto_allowed
    assert verdict.why().startswith(
        "no allow window is active (allow window 1 of project team-a ('0 22 * * *' for 8h, UTC))"
    )
    assert "allow window 1 ('0 9" not in verdict.why()
    # Both open: allowed.
    both = windows_in_force(
        app({"kind": "allow", **DAYTIME}), project({"kind": "allow", **DAYTIME})
    )
    assert evaluate(both, NOON).auto_allowed


def test_an_app_deny_window_is_not_opened_by_a_project_allow_window() -> None:
    windows = windows_in_force(
        app({"kind": "deny", **DAYTIME}), project({"kind": "allow", **DAYTIME})
    )
    verdict = evaluate(windows, NOON)
    assert not verdict.auto_allowed
    assert verdict.why().startswith("deny window 1 ('0 9 * * *' for 8h, UTC) is active")


def test_a_manual_sync_needs_manual_sync_on_the_windows_of_every_scope_that_denies() -> None:
    windows = windows_in_force(
        app({"kind": "deny", "manualSync": True, **DAYTIME}),
        project({"kind": "deny", **DAYTIME}),
    )
    with pytest.raises(SyncWindowClosed) as caught:
        check_manual_sync("web", windows, NOON, force=False)
    message = caught.value.message
    assert message.endswith(
        "manualSync is not set on deny window 1 of project team-a ('0 9 * * *' for 8h, UTC)"
    )
    assert "syncing although" in check_manual_sync("web", windows, NOON, force=True)
    lenient = windows_in_force(
        app({"kind": "deny", "manualSync": True, **DAYTIME}),
        project({"kind": "deny", "manualSync": True, **DAYTIME}),
    )
    assert check_manual_sync("web", lenient, NOON, force=False) == ""


def test_without_a_project_the_windows_are_the_apps_own() -> None:
    own = app({"kind": "deny", **DAYTIME})
    assert windows_in_force(own, None) == own.sync_windows
    assert evaluate(windows_in_force(own, project()), NOON).why().startswith("deny window 1 (")
