"""spec.dependsOn: parsing, cycles, each dependency's readiness, and the controller's gate."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.api.application import Application
from tether.api.depends_on import DependencyRef, parse_depends_on
from tether.cli.application_file import check_document
from tether.compare import Comparison
from tether.controller.dependencies import (
    DependencyGate,
    DependencyNotReady,
    Pin,
    behind,
    cycle_text,
    edges_in,
    find_cycle,
    judge,
    state_of,
)
from tether.errors import InvalidSpec
from tether.model import Obj

pytestmark = pytest.mark.unit
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dependencies" / "apps.yaml"


@pytest.fixture
def apps() -> dict[tuple[str, str], Obj]:
    """The fixture's Applications by (namespace, name)."""
    docs = [d for d in yaml.safe_load_all(FIXTURE.read_text()) if d]
    return {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in docs}


def app_of(apps: dict[tuple[str, str], Obj], name: str, ns: str = "apps") -> Application:
    return Application.from_obj(apps[(ns, name)])


def ready(obj: Obj, revision: str = "1" * 40) -> Obj:
    """``obj`` as it is once compared, Synced and Healthy at ``revision``."""
    out = copy.deepcopy(obj)
    out["status"] = {
        "observedGeneration": out["metadata"]["generation"],
        "sync": {"status": "Synced", "revision": revision},
        "health": {"status": "Healthy"},
        "operationState": {"phase": "Succeeded"},
    }
    return out


# ---- parsing ---------------------------------------------------------------------------------


def test_depends_on_defaults_to_the_apps_namespace_and_counts_a_repeat_once(
    apps: dict[tuple[str, str], Obj],
) -> None:
    assert app_of(apps, "edge").depends_on == [
        DependencyRef("other", "infra"),
        DependencyRef("apps", "crds"),
    ]
    raw = [{"name": "a"}, {"name": "a", "namespace": "home"}, {"name": "b", "namespace": "x"}]
    assert parse_depends_on(raw, "home", "here") == [
        DependencyRef("home", "a"),
        DependencyRef("x", "b"),
    ]
    assert parse_depends_on(None, "home", "here") == []


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("db", "spec.dependsOn must be a list"),
        ([{"name": "db"}, "cache"], "spec.dependsOn[1] must be a mapping with a name"),
        ([{"namespace": "x"}], "spec.dependsOn[0] must be a mapping with a name"),
        ([{"name": "db", "namespace": 3}], "spec.dependsOn[0] must be a mapping with a name"),
    ],
)
def test_a_malformed_depends_on_is_an_invalid_spec_naming_the_entry(raw: Any, words: str) -> None:
    with pytest.raises(InvalidSpec) as e:
        parse_depends_on(raw, "home", "Application home/web")
    assert str(e.value).startswith(f"Application home/web: {words}")
    assert "dependsOn: [{name:" in e.value.hint


# ---- cycles ----------------------------------------------------------------------------------


def test_a_cycle_is_found_from_each_app_on_it_and_printed_from_there(
    apps: dict[tuple[str, str], Obj],
) -> None:
    edges = edges_in(apps.get)
    ping = find_cycle(("apps", "ping"), edges)
    pong = find_cycle(("apps", "pong"), edges)
    assert ping is not None and pong is not None
    assert cycle_text(ping, "apps") == "ping -> pong -> ping"
    assert cycle_text(pong, "apps") == "pong -> ping -> pong"
    selfdep = find_cycle(("apps", "self"), edges)
    assert selfdep is not None and cycle_text(selfdep, "apps") == "self -> self"


def test_no_cycle_for_a_chain_nor_for_an_app_that_only_leads_into_one(
    apps: dict[tuple[str, str], Obj],
) -> None:
    edges = edges_in(apps.get)
    assert find_cycle(("apps", "web"), edges) is None
    assert find_cycle(("apps", "front"), edges) is None  # front -> ping, ping is on the cycle
    assert find_cycle(("apps", "edge"), edges) is None


def test_a_cycle_across_namespaces_names_the_other_namespace() -> None:
    cycle = [("apps", "a"), ("other", "b"), ("apps", "a")]
    assert cycle_text(cycle, "apps") == "a -> other/b -> a"


# ---- one dependency's readiness --------------------------------------------------------------


def test_states_of_a_dependency(apps: dict[tuple[str, str], Obj]) -> None:
    assert state_of(None) == "not found"
    assert state_of(apps[("apps", "ping")]) == "not compared yet"
    assert state_of(apps[("apps", "db")]) == "sync OutOfSync, health Progressing"
    assert state_of(apps[("other", "infra")]) == "sync Synced, health Healthy; a sync is running"
    assert state_of(apps[("apps", "crds")]) == ""
    edited = copy.deepcopy(apps[("apps", "crds")])
    edited["metadata"]["generation"] = 2
    assert state_of(edited) == (
        "sync Synced, health Healthy; its spec changed and was not compared since"
    )
    marked = copy.deepcopy(apps[("apps", "crds")])
    marked["metadata"]["annotations"] = {"tether.dev/deleting": "now"}
    assert state_of(marked) == "being deleted"


def test_a_dependency_on_the_same_branch_must_have_reached_the_commit_to_sync(
    apps: dict[tuple[str, str], Obj],
) -> None:
    crds = apps[("apps", "crds")]
    # web's repository is spelled with .git: still the same repository and branch.
    newer = [Pin("https://git.example/shop", "main", "3" * 40)]
    assert behind(crds, newer) == f"at {'1' * 10}, not yet at {'3' * 10}"
    assert state_of(crds, newer) == f"Synced and Healthy at {'1' * 10}, not yet at {'3' * 10}"
    assert state_of(crds, [Pin("https://git.example/shop", "main", "1" * 40)]) == ""
    # Another branch, or another repository, says nothing about where crds is.
    assert state_of(crds, [Pin("https://git.example/shop", "dev", "3" * 40)]) == ""
    assert state_of(crds, [Pin("https://git.example/edge", "main", "3" * 40)]) == ""


# ---- the verdict -----------------------------------------------------------------------------


def test_the_verdict_names_each_dependency_waited_for_and_its_state(
    apps: dict[tuple[str, str], Obj],
) -> None:
    verdict = judge(app_of(apps, "edge"), apps.get)
    assert not verdict.may_sync
    [cond] = verdict.conditions()
    assert cond.type == "DependencyNotReady"
    assert cond.message == (
        "waiting for dependency other/infra (sync Synced, health Healthy; a sync is running): "
        "this app syncs once every dependency is Synced and Healthy"
    )
    web = judge(app_of(apps, "web"), apps.get)
    assert web.waiting_message().startswith(
        "waiting for dependency db (sync OutOfSync, health Progressing)"
    )
    error = web.error()
    assert isinstance(error, DependencyNotReady) and error.condition_type == "DependencyNotReady"
    assert error.hint == "sync db first or wait for it; --ignore-dependencies syncs anyway"


def test_several_dependencies_waited_for_are_all_named(apps: dict[tuple[str, str], Obj]) -> None:
    del apps[("other", "infra")]
    apps[("apps", "crds")]["status"]["health"]["status"] = "Degraded"
    verdict = judge(app_of(apps, "edge"), apps.get, not_found=lambda d: "not found: look")
    assert verdict.waiting_message().startswith(
        "waiting for 2 dependencies other/infra (not found: look), "
        "crds (sync Synced, health Degraded): "
    )


def test_ready_dependencies_let_the_app_sync(apps: dict[tuple[str, str], Obj]) -> None:
    apps[("apps", "db")] = ready(apps[("apps", "db")])
    verdict = judge(app_of(apps, "web"), apps.get)
    assert verdict.may_sync and verdict.conditions() == [] and verdict.error() is None
    nodeps = judge(app_of(apps, "crds"), apps.get)
    assert nodeps.may_sync


def test_a_cycle_is_invalid_spec_on_every_app_in_it_even_when_all_are_ready(
    apps: dict[tuple[str, str], Obj],
) -> None:
    for name in ("ping", "pong"):
        apps[("apps", name)] = ready(apps[("apps", name)])
    for name, printed in (("ping", "ping -> pong -> ping"), ("pong", "pong -> ping -> pong")):
        verdict = judge(app_of(apps, name), apps.get)
        assert not verdict.may_sync
        [cond] = verdict.conditions()
        assert cond.type == "InvalidSpec"
        assert cond.message == (
            f"spec.dependsOn forms a cycle: {printed}; no Application in it syncs until one "
            "of these dependencies is removed"
        )
        error = verdict.error()
        assert isinstance(error, InvalidSpec) and printed in str(error)


# ---- the controller's gate -------------------------------------------------------------------


def test_the_gate_wakes_dependents_when_what_they_wait_for_changes(
    apps: dict[tuple[str, str], Obj],
) -> None:
    gate = DependencyGate(apps, ["apps", "other"])
    db = apps[("apps", "db")]
    assert gate.changed(("apps", "db"), db) == [("apps", "web")]
    assert gate.changed(("apps", "db"), copy.deepcopy(db)) == []  # nothing they judge by
    noise = copy.deepcopy(db)
    noise["status"]["reconciledAt"] = "2026-11-27T17:00:00Z"
    assert gate.changed(("apps", "db"), noise) == []
    assert gate.changed(("apps", "db"), ready(db)) == [("apps", "web")]
    assert sorted(gate.changed(("apps", "crds"), None)) == [
        ("apps", "db"),
        ("apps", "edge"),
        ("apps", "pong"),
    ]
    assert gate.changed(("apps", "web"), apps[("apps", "web")]) == []  # nobody depends on web


def test_the_gate_holds_a_wanted_sync_and_always_reports_a_cycle(
    apps: dict[tuple[str, str], Obj],
) -> None:
    gate = DependencyGate(apps, ["apps"])
    web = app_of(apps, "web")
    idle = Comparison(app=web, desired=None)
    assert gate.hold(web, idle, wants_sync=False) is True
    assert idle.conditions == []  # nothing to sync: nothing waits
    wanting = Comparison(app=web, desired=None)
    assert gate.hold(web, wanting, wants_sync=True) is True
    assert [c.type for c in wanting.conditions] == ["DependencyNotReady"]
    ping = app_of(apps, "ping")
    cmp = Comparison(app=ping, desired=None)
    assert gate.hold(ping, cmp, wants_sync=False) is True
    assert [c.type for c in cmp.conditions] == ["InvalidSpec"]
    edge = app_of(apps, "edge")
    cmp = Comparison(app=edge, desired=None)
    del apps[("other", "infra")]
    assert gate.hold(edge, cmp, wants_sync=True) is True
    assert "other/infra (not found: the controller watches only apps)" in cmp.conditions[0].message
    apps[("apps", "db")] = ready(apps[("apps", "db")])
    cmp = Comparison(app=web, desired=None)
    assert gate.hold(web, cmp, wants_sync=True) is False and cmp.conditions == []


# ---- the Application file ------------------------------------------------------------------


def test_an_application_file_with_depends_on_is_accepted_and_an_unknown_key_refused() -> None:
    doc = yaml.safe_load(FIXTURE.read_text().split("---")[0])
    checked = check_document(copy.deepcopy(doc), "web.yaml", "apps")
    assert checked["spec"]["dependsOn"] == [{"name": "db"}]
    doc["spec"]["dependsOn"] = [{"name": "db", "readyExpr": "true"}]
    with pytest.raises(InvalidSpec) as e:
        check_document(doc, "web.yaml", "apps")
    assert "spec.dependsOn[0].readyExpr is not supported by tether" in str(e.value)
