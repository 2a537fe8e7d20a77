"""``tether audit`` and ``tether app history`` run as the installed ``tether`` command against
a real SQLite file; against the controller's real HTTP API in
tests/integration/test_audit_access.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.audit import (
    AuditRecord,
    SqliteAuditStore,
    format_time,
)
from tether.cli.audit_cmds import qualified_app, record_summary
from tether.service.history import history_from_records, history_from_status

pytestmark = pytest.mark.unit

KEYS = [
    "id",
    "time",
    "app",
    "kind",
    "revision",
    "author",
    "message",
    "trigger",
    "result",
    "objects",
    "details",
    "user",
]
HISTORY_KEYS = ["id", "deployedAt", "revision", "result", "trigger", "author", "message", "source"]

TETHER = str(Path(sys.executable).with_name("tether"))


def tether(*args: str) -> subprocess.CompletedProcess[str]:
    # A wide terminal, so table rows are not wrapped and can be checked line by line.
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
    env.pop("KUBECONFIG", None)
    return subprocess.run([TETHER, *args], capture_output=True, text=True, env=env, timeout=120)


def ago(**delta: float) -> str:
    return format_time(datetime.now(UTC) - timedelta(**delta))


def rec(app: str, kind: str, time: str, **kw: Any) -> AuditRecord:
    return AuditRecord(id=None, time=time, app=app, kind=kind, **kw)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    with SqliteAuditStore(path) as s:
        for r in (
            rec(
                "ns/a",
                "sync",
                ago(hours=3),
                revision="0123456789abcdef0123",
                author="Old Author <old@example.com>",
                message="an old sync",
                trigger="poll",
                result="Succeeded",
            ),
            rec(
                "ns/a",
                "sync",
                ago(minutes=40),
                revision="c0ffee0000111122223333",
                author="Ann Lee <ann@example.com>",
                message="[ci skip] raise replicas",
                trigger="webhook",
                result="Succeeded",
                details={"source": {"repoURL": "https://git/x", "path": "app"}},
            ),
            rec(
                "ns/a",
                "correction",
                ago(minutes=32),
                revision="c0ffee0000111122223333",
                author="Ann Lee <ann@example.com>",
                message="[ci skip] raise replicas",
                trigger="self-heal",
                result="Succeeded",
                objects=[
                    {
                        "group": "apps",
                        "kind": "Deployment",
                        "namespace": "shop",
                        "name": "web",
                        "action": "configured",
                        "fields": ["spec.replicas"],
                    }
                ],
            ),
            rec(
                "ns/a",
                "drift",
                ago(minutes=20),
                revision="c0ffee0000111122223333",
                message="1 object drifted",
                trigger="refresh",
                objects=[
                    {
                        "group": "apps",
                        "kind": "Deployment",
                        "namespace": "shop",
                        "name": "web",
                        "fields": ["spec.replicas"],
                        "manager": "kubectl-edit",
                    }
                ],
            ),
            rec("ns/b", "sync", ago(minutes=10), message="other app", result="Failed"),
            rec(
                "ns/a",
                "prune",
                ago(minutes=5),
                revision="c0ffee0000111122223333",
                trigger="auto",
                result="Succeeded",
                objects=[{"kind": "ConfigMap", "namespace": "shop", "name": "gone-cm"}],
            ),
        ):
            s.append(r)
    return path


# ---- tether audit -------------------------------------------------------------------------


def test_audit_json_lists_every_record_newest_first(db: Path) -> None:
    p = tether("audit", "--db", str(db), "-o", "json")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert [list(d) for d in got] == [KEYS] * 6
    assert [(d["app"], d["kind"]) for d in got] == [
        ("ns/a", "prune"),
        ("ns/b", "sync"),
        ("ns/a", "drift"),
        ("ns/a", "correction"),
        ("ns/a", "sync"),
        ("ns/a", "sync"),
    ]
    times = [d["time"] for d in got]
    assert times == sorted(times, reverse=True)
    assert got[2]["objects"][0]["manager"] == "kubectl-edit"
    assert got[4]["details"] == {"source": {"repoURL": "https://git/x", "path": "app"}}


def test_audit_table_for_one_app_since_an_hour(db: Path) -> None:
    p = tether("audit", "--db", str(db), "--app", "ns/a", "--since", "1h")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == [
        "TIME",
        "APP",
        "KIND",
        "REVISION",
        "TRIGGER",
        "RESULT",
        "AUTHOR",
        "MESSAGE",
    ]
    rows = lines[1:]
    assert [r.split()[2] for r in rows] == ["prune", "drift", "correction", "sync"]
    assert all(r.split()[1] == "ns/a" for r in rows)
    assert "ConfigMap shop/gone-cm" in rows[0]
    assert "1 object drifted — Deployment shop/web spec.replicas by kubectl-edit" in rows[1]
    assert rows[2].split()[4:6] == ["self-heal", "Succeeded"]
    # Markup-looking text is printed as it is; revisions are cut to 10 characters.
    assert "[ci skip] raise replicas" in rows[3]
    assert "c0ffee0000 " in rows[3] and "c0ffee00001" not in p.stdout
    assert "Ann Lee <ann@example.com>" in rows[3]
    assert "an old sync" not in p.stdout and "other app" not in p.stdout


def test_audit_kinds_and_app_in_the_namespace_flag(db: Path) -> None:
    p = tether("audit", "--db", str(db), "--app", "a", "-n", "ns", "--kind", "drift", "-o", "yaml")
    assert p.returncode == 0, p.stderr
    got = yaml.safe_load(p.stdout)
    assert [(d["app"], d["kind"]) for d in got] == [("ns/a", "drift")]
    p = tether("audit", "--db", str(db), "--kind", "sync", "--kind", "prune", "--limit", "2")
    assert p.returncode == 0, p.stderr
    assert [r.split()[2] for r in p.stdout.splitlines()[1:]] == ["prune", "sync"]
    assert "showing the newest 2 records" in p.stderr


def test_audit_with_nothing_matching_exits_0(db: Path) -> None:
    p = tether("audit", "--db", str(db), "--app", "ns/none", "-o", "json")
    assert (p.returncode, json.loads(p.stdout)) == (0, [])
    p = tether("audit", "--db", str(db), "--app", "ns/none")
    assert (p.returncode, p.stdout) == (0, "")
    assert "no audit records match" in p.stderr


def test_missing_db_exits_2_naming_the_file_and_the_other_sources(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "audit.db"
    p = tether("audit", "--db", str(missing), "-o", "json")
    assert p.returncode == 2
    assert p.stdout == ""
    assert f"error: audit database {missing} does not exist" in p.stderr
    assert "hint:" in p.stderr and "--server URL" in p.stderr
    assert not missing.exists()


def test_bad_inputs_exit_2_with_a_message(db: Path, tmp_path: Path) -> None:
    p = tether("audit", "--db", str(db), "--since", "yesterday")
    assert p.returncode == 2
    assert "invalid time 'yesterday'" in p.stderr and "1h" in p.stderr
    junk = tmp_path / "junk.db"
    junk.write_text("this is not sqlite\n" * 200)
    p = tether("audit", "--db", str(junk))
    assert p.returncode == 2
    assert f"{junk} is not a tether audit database" in p.stderr
    p = tether("audit", "--db", str(db), "--kind", "deploy")
    assert p.returncode == 2 and "'deploy' is not one of" in p.stderr


# ---- tether app history ---------------------------------------------------------------------


def test_app_history_from_the_audit_database(db: Path) -> None:
    p = tether("app", "history", "a", "-n", "ns", "--db", str(db), "-o", "json")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    # Syncs and self-heal corrections (also syncs), of ns/a only.
    assert [list(h) for h in got] == [HISTORY_KEYS] * 3
    assert [(h["trigger"], h["message"]) for h in got] == [
        ("self-heal", "[ci skip] raise replicas"),
        ("webhook", "[ci skip] raise replicas"),
        ("poll", "an old sync"),
    ]
    assert got[1]["source"] == {"repoURL": "https://git/x", "path": "app"}
    assert got[0]["source"] == got[2]["source"] == {}
    p = tether("app", "history", "a", "-n", "ns", "--db", str(db))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "DEPLOYED",
        "AT",
        "REVISION",
        "RESULT",
        "TRIGGER",
        "AUTHOR",
        "MESSAGE",
    ]
    assert len(lines) == 4
    assert lines[1].split()[2:5] == ["c0ffee0000", "Succeeded", "self-heal"]
    assert lines[2].split()[2:5] == ["c0ffee0000", "Succeeded", "webhook"]
    assert lines[3].split()[2:5] == ["0123456789", "Succeeded", "poll"]


def test_history_from_status_is_newest_first_in_stable_keys() -> None:
    obj = {
        "status": {
            "history": [
                {"id": 1, "revision": "aaa", "deployedAt": "2026-11-25T00:00:00Z"},
                {
                    "id": 2,
                    "revision": "bbb",
                    "deployedAt": "2026-11-26T00:00:00Z",
                    "result": "Failed",
                    "trigger": "manual",
                    "author": "A <a@x>",
                    "message": "m",
                    "source": {"repoURL": "u"},
                },
            ]
        }
    }
    rows = history_from_status(obj)
    assert [r["id"] for r in rows] == [2, 1]
    assert [list(r) for r in rows] == [HISTORY_KEYS] * 2
    assert rows[1] == {
        "id": 1,
        "deployedAt": "2026-11-25T00:00:00Z",
        "revision": "aaa",
        "result": "",
        "trigger": "",
        "author": "",
        "message": "",
        "source": {},
    }
    assert history_from_status({}) == []
    drift = AuditRecord(5, "t", "ns/a", "drift")
    fix = AuditRecord(6, "t2", "ns/a", "correction", trigger="self-heal")
    assert [h["id"] for h in history_from_records([fix, drift])] == [6]


def test_summaries_and_names() -> None:
    r = AuditRecord(
        1,
        "t",
        "ns/a",
        "prune",
        objects=[{"kind": "ConfigMap", "namespace": "s", "name": f"c{i}"} for i in range(5)]
        + [{"kind": "Namespace", "name": "cluster-wide", "action": "pruned"}],
    )
    assert record_summary(r) == "ConfigMap s/c0; ConfigMap s/c1; ConfigMap s/c2; +3 more"
    assert record_summary(AuditRecord(1, "t", "ns/a", "sync", message="m")) == "m"
    assert qualified_app("web", "tether-system") == "tether-system/web"
    assert qualified_app("apps/web", "tether-system") == "apps/web"


# ---- --server (against the real controller: tests/integration/test_audit_access.py) -------


def test_unreachable_server_exits_2_without_showing_credentials() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on the port any more: the connection is refused.
    p = tether("audit", "--server", f"http://admin:s3cret@127.0.0.1:{port}")
    assert p.returncode == 2
    assert f"cannot reach the tether server at http://***@127.0.0.1:{port}" in p.stderr
    assert "--db PATH" in p.stderr
    assert "s3cret" not in p.stderr and "admin" not in p.stderr
    p = tether("audit", "--server", "http://admin:s3cret@[::1")
    assert p.returncode == 2
    assert "is not an http(s) URL" in p.stderr and "s3cret" not in p.stderr
