"""How ``tether app sync`` prints an outcome: a PHASE and WAVE column when the sync had hooks
or several waves, a hook's phase beside its result, and who ran the sync."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from tether.cli import operation_cmds
from tether.model import ResourceKey
from tether.service.results import SyncOutcome
from tether.sync.state import TaskRecord

pytestmark = pytest.mark.unit


def printed(monkeypatch: pytest.MonkeyPatch, outcome: SyncOutcome) -> list[str]:
    buf = io.StringIO()
    monkeypatch.setattr(operation_cmds, "out", Console(file=buf, width=200, color_system=None))
    operation_cmds.print_outcome(outcome)
    return buf.getvalue().splitlines()


def test_waves_and_hooks_get_their_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    job = TaskRecord(
        ResourceKey("batch", "Job", "demo", "db-migrate"),
        "PreSync",
        0,
        "created",
        hook_type="PreSync",
        hook_phase="Succeeded",
    )
    web = TaskRecord(ResourceKey("apps", "Deployment", "demo", "web"), "Sync", 1, "configured")
    same = TaskRecord(ResourceKey("", "ConfigMap", "demo", "cfg"), "Sync", 0, "unchanged")
    outcome = SyncOutcome(
        "Succeeded",
        "changed 2 object(s)",
        "f7980e022f0000",
        run_by="ctl-7",
        by_controller=True,
        runner="run by controller ctl-7",
        records=[job, web, same],
        sync_status="Synced",
        health_status="Healthy",
        waited_for_health=True,
    )
    lines = printed(monkeypatch, outcome)
    assert lines[0].split() == ["KIND", "NAMESPACE", "NAME", "PHASE", "WAVE", "RESULT", "MESSAGE"]
    assert lines[1].split() == [
        "Job",
        "demo",
        "db-migrate",
        "PreSync",
        "0",
        "created",
        "(Succeeded)",
    ]
    assert lines[2].split() == ["Deployment", "demo", "web", "Sync", "1", "configured"]
    assert not any("cfg" in ln for ln in lines), "unchanged objects are not listed"
    assert lines[3:] == [
        "Succeeded: changed 2 object(s) (revision f7980e022f)",
        "run by controller ctl-7",
        "Sync: Synced   Health: Healthy",
    ]


def test_one_wave_and_no_hooks_keeps_the_short_table(monkeypatch: pytest.MonkeyPatch) -> None:
    cm = TaskRecord(ResourceKey("", "ConfigMap", "demo", "cfg"), "Sync", 0, "created")
    outcome = SyncOutcome(
        "Succeeded",
        "changed 1 object(s)",
        "abc",
        runner="run by this command: no controller is running for namespace apps",
        records=[cm],
    )
    lines = printed(monkeypatch, outcome)
    assert lines[0].split() == ["KIND", "NAMESPACE", "NAME", "RESULT", "MESSAGE"]
    assert "run by this command: no controller is running for namespace apps" in lines
