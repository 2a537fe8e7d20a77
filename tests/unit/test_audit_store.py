"""The audit store: filters and order, JSON round trip, durability across SIGKILL, threads,
append-only, schema versions, and the HTTP API's helper."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tether.audit import (
    KINDS,
    MAX_LIMIT,
    SCHEMA_VERSION,
    AuditError,
    AuditQueryError,
    AuditRecord,
    SqliteAuditStore,
    SqliteStore,
    format_time,
    normalize_time,
    parse_since,
    records_json,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAuditStore]:
    s = SqliteAuditStore(tmp_path / "audit.db")
    yield s
    s.close()


def rec(app: str, kind: str, time: str, **kw: Any) -> AuditRecord:
    return AuditRecord(id=None, time=time, app=app, kind=kind, **kw)


def ago(**delta: float) -> str:
    return format_time(datetime.now(UTC) - timedelta(**delta))


# ---- query ------------------------------------------------------------------------------


def test_query_returns_newest_first_by_time_then_id(store: SqliteAuditStore) -> None:
    ids = {
        "middle": store.append(rec("ns/a", "sync", "2026-11-26T04:00:00.000Z", message="middle")),
        "old": store.append(rec("ns/a", "sync", "2026-11-25T04:00:00.000Z", message="old")),
        "new": store.append(rec("ns/b", "drift", "2026-11-27T04:00:00.000Z", message="new")),
        "tie1": store.append(rec("ns/a", "prune", "2026-11-26T04:00:00.000Z", message="tie1")),
    }
    assert list(ids.values()) == sorted(ids.values())
    got = [r.message for r in store.query()]
    # Same time: the later append (higher id) is the newer record.
    assert got == ["new", "tie1", "middle", "old"]
    assert [r.id for r in store.query()] == [ids["new"], ids["tie1"], ids["middle"], ids["old"]]


def test_ids_are_assigned_in_append_order_and_rec_id_is_ignored(store: SqliteAuditStore) -> None:
    first = store.append(AuditRecord(id=999, time=ago(minutes=1), app="ns/a", kind="sync"))
    second = store.append(rec("ns/a", "sync", ago(minutes=1)))
    assert second == first + 1
    assert {r.id for r in store.query()} == {first, second}


def test_query_by_app(store: SqliteAuditStore) -> None:
    store.append(rec("ns/a", "sync", ago(minutes=3), message="a1"))
    store.append(rec("ns/b", "sync", ago(minutes=2), message="b1"))
    store.append(rec("other/a", "sync", ago(minutes=2), message="other-a"))
    store.append(rec("ns/a", "drift", ago(minutes=1), message="a2"))
    assert [r.message for r in store.query(app="ns/a")] == ["a2", "a1"]
    assert [r.message for r in store.query(app="ns/b")] == ["b1"]
    assert store.query(app="ns/none") == []
    with pytest.raises(AuditQueryError, match="namespace"):
        store.query(app="a")


def test_query_since_absolute_includes_the_boundary_and_any_offset(
    store: SqliteAuditStore,
) -> None:
    store.append(rec("ns/a", "sync", "2026-11-26T03:59:59.999Z", message="before"))
    store.append(rec("ns/a", "sync", "2026-11-26T04:00:00.000Z", message="at"))
    store.append(rec("ns/a", "sync", "2026-11-26T04:00:00.001Z", message="after"))
    assert [r.message for r in store.query(since="2026-11-26T04:00:00Z")] == ["after", "at"]
    # The same instant written in another offset selects the same records.
    assert [r.message for r in store.query(since="2026-11-26T06:00:00+02:00")] == ["after", "at"]
    with pytest.raises(AuditQueryError, match="invalid time 'yesterday'"):
        store.query(since="yesterday")


def test_query_since_relative(store: SqliteAuditStore) -> None:
    store.append(rec("ns/a", "sync", ago(hours=3), message="3h"))
    store.append(rec("ns/a", "sync", ago(minutes=90), message="90m"))
    store.append(rec("ns/a", "sync", ago(minutes=10), message="10m"))
    store.append(rec("ns/a", "sync", ago(days=3), message="3d"))
    assert [r.message for r in store.query(since="30m")] == ["10m"]
    assert [r.message for r in store.query(since="1h")] == ["10m"]
    assert [r.message for r in store.query(since="2h")] == ["10m", "90m"]
    assert [r.message for r in store.query(since="1h45m")] == ["10m", "90m"]
    assert [r.message for r in store.query(since="2d")] == ["10m", "90m", "3h"]
    assert [r.message for r in store.query(since="1w")] == ["10m", "90m", "3h", "3d"]


def test_parse_since() -> None:
    now = datetime(2026, 11, 26, 4, 31, 38, 123456, tzinfo=UTC)
    assert parse_since("30m", now) == "2026-11-26T04:01:38.123Z"
    assert parse_since("1h", now) == "2026-11-26T03:31:38.123Z"
    assert parse_since("2d", now) == "2026-11-24T04:31:38.123Z"
    assert parse_since("90s", now) == "2026-11-26T04:30:08.123Z"
    assert parse_since("1h30m", now) == "2026-11-26T03:01:38.123Z"
    assert parse_since("1w", now) == "2026-11-19T04:31:38.123Z"
    assert parse_since("2026-11-26T04:31:38Z", now) == "2026-11-26T04:31:38.000Z"
    assert parse_since("2026-11-26t05:31:38.5+01:00", now) == "2026-11-26T04:31:38.500Z"
    for bad in ("", "1x", "-1h", "h", "soon", "2026-13-01T00:00:00Z"):
        with pytest.raises(AuditQueryError):
            parse_since(bad, now)


def test_times_are_stored_in_one_form(store: SqliteAuditStore) -> None:
    assert normalize_time("2026-11-26T06:31:38+02:00") == "2026-11-26T04:31:38.000Z"
    assert normalize_time("2026-11-26T04:31:38.123456Z") == "2026-11-26T04:31:38.123Z"
    store.append(rec("ns/a", "sync", "2026-11-26T06:31:38.5+02:00"))
    before = format_time()
    store.append(rec("ns/a", "drift", ""))  # empty: stamped by the store
    after = format_time()
    drift, sync = store.query()
    assert sync.time == "2026-11-26T04:31:38.500Z"
    assert before <= drift.time <= after
    with pytest.raises(AuditQueryError):
        store.append(rec("ns/a", "sync", "last tuesday"))


def test_query_by_kinds(store: SqliteAuditStore) -> None:
    for i, kind in enumerate(KINDS):
        store.append(rec("ns/a", kind, f"2026-11-26T04:00:{i:02d}.000Z"))
    assert [r.kind for r in store.query(kinds=["sync"])] == ["sync"]
    assert [r.kind for r in store.query(kinds=("prune", "drift"))] == ["prune", "drift"]
    assert [r.kind for r in store.query(kinds=[])] == list(reversed(KINDS))
    assert len(store.query(kinds=None)) == len(KINDS)
    with pytest.raises(AuditQueryError, match="'deploy'"):
        store.query(kinds=["sync", "deploy"])
    with pytest.raises(AuditQueryError, match="kinds are sync, drift"):
        store.append(rec("ns/a", "deploy", ago(seconds=1)))


def test_query_limit_keeps_the_newest(store: SqliteAuditStore) -> None:
    for i in range(20):
        store.append(rec("ns/a", "sync", f"2026-11-26T04:00:{i:02d}.000Z", message=str(i)))
    assert [r.message for r in store.query(limit=3)] == ["19", "18", "17"]
    assert len(store.query(limit=1000)) == 20
    assert [r.message for r in store.query(app="ns/a", kinds=["sync"], limit=1)] == ["19"]
    with pytest.raises(AuditQueryError):
        store.query(limit=0)


def test_filters_combine(store: SqliteAuditStore) -> None:
    store.append(rec("ns/a", "sync", ago(minutes=5), message="hit"))
    store.append(rec("ns/a", "drift", ago(minutes=5), message="wrong kind"))
    store.append(rec("ns/b", "sync", ago(minutes=5), message="wrong app"))
    store.append(rec("ns/a", "sync", ago(hours=5), message="too old"))
    got = store.query(app="ns/a", since="1h", kinds=["sync"])
    assert [r.message for r in got] == ["hit"]


# ---- records ----------------------------------------------------------------------------


FULL = AuditRecord(
    id=None,
    time="2026-11-26T04:31:38.123Z",
    app="shop/web",
    kind="correction",
    revision="4f1c9d2e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d",
    author="Ann Lee <ann@example.com>",
    message="Undo live edit of spec.replicas — «naïve» 🚀",
    trigger="self-heal",
    result="Succeeded",
    objects=[
        {
            "group": "apps",
            "kind": "Deployment",
            "namespace": "shop",
            "name": "web",
            "action": "configured",
            "fields": ["spec.replicas", "spec.template.spec.containers[name=web].image"],
            "manager": "kubectl-edit",
            "operation": "Update",
        },
        {"group": "", "kind": "ConfigMap", "namespace": "shop", "name": "cfg", "action": "x"},
    ],
    details={
        "diff": "--- live\n+++ git\n-  replicas: 5\n+  replicas: 2\n",
        "nested": {"list": [1, 2.5, None, True], "empty": {}},
    },
)


def test_record_survives_the_store_unchanged(store: SqliteAuditStore) -> None:
    rid = store.append(FULL)
    (got,) = store.query()
    assert got.id == rid
    assert got.to_dict() == {**FULL.to_dict(), "id": rid}


def test_to_dict_from_dict_round_trip_through_json() -> None:
    d = FULL.to_dict()
    assert list(d) == [
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
    assert AuditRecord.from_dict(json.loads(json.dumps(d))) == FULL
    minimal = AuditRecord.from_dict({"id": 3, "time": "t", "app": "ns/a", "kind": "sync"})
    assert minimal == AuditRecord(3, "t", "ns/a", "sync")
    assert minimal.objects == [] and minimal.details == {}
    with pytest.raises(ValueError, match="objects"):
        AuditRecord.from_dict({**d, "objects": {"kind": "Deployment"}})
    with pytest.raises(ValueError, match="message"):
        AuditRecord.from_dict({**d, "message": 42})
    with pytest.raises(ValueError, match="id"):
        AuditRecord.from_dict({**d, "id": "7"})


def test_to_dict_does_not_share_objects_with_the_record() -> None:
    d = FULL.to_dict()
    d["objects"][0]["name"] = "changed"
    assert FULL.objects[0]["name"] == "web"


# ---- durability -------------------------------------------------------------------------

CHILD = """
import sys, threading
from pathlib import Path
from tether.audit import AuditRecord, SqliteAuditStore

store = SqliteAuditStore(Path(sys.argv[1]))
count, tag = int(sys.argv[2]), sys.argv[3]
i = 0
while count == 0 or i < count:
    rid = store.append(AuditRecord(
        None, "", "ns/durable", "sync", revision=f"{tag}-{i}",
        message="x" * 2000, objects=[{"kind": "Deployment", "name": f"d{i}"}],
    ))
    print(rid, flush=True)
    i += 1
threading.Event().wait()  # stay alive until the test kills us
"""


def run_child(db: Path, count: int, tag: str, kill_after: int) -> list[int]:
    """Starts a process appending ``count`` records (0: without end), reads ``kill_after`` ids
    it acknowledged, SIGKILLs it at once, and returns those ids."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(count), tag],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[int] = []
    try:
        assert proc.stdout is not None
        while len(acked) < kill_after:
            line = proc.stdout.readline()
            assert line, f"child exited early: {proc.stderr.read() if proc.stderr else ''}"
            acked.append(int(line))
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == -signal.SIGKILL
    return acked


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_acknowledged_records_survive_sigkill_right_after_append(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    acked: list[int] = []
    for round_ in range(4):
        # The child appends, prints each id, then sleeps; it is killed once the last is read.
        acked += run_child(db, count=5, tag=f"r{round_}", kill_after=5)
        assert (tmp_path / "audit.db-wal").exists()  # killed before any clean checkpoint
        assert integrity(db) == "ok"
        with SqliteAuditStore(db) as s:
            found = {r.id: r for r in s.query(app="ns/durable", limit=MAX_LIMIT)}
        assert set(acked) <= set(found)
        assert len(found) == len(acked) == 5 * (round_ + 1)
    with SqliteAuditStore(db) as s:
        revisions = {r.revision for r in s.query(limit=MAX_LIMIT)}
    assert revisions == {f"r{r}-{i}" for r in range(4) for i in range(5)}


def test_sigkill_while_appending_loses_no_acknowledged_record(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    # Killed mid-stream: the child is inside another append when the signal lands.
    acked = run_child(db, count=0, tag="stream", kill_after=60)
    assert integrity(db) == "ok"
    with SqliteAuditStore(db) as s:
        found = {r.id for r in s.query(limit=MAX_LIMIT)}
        # Still writable after recovery, and ids continue past everything written before.
        next_id = s.append(rec("ns/after", "sync", ""))
    assert set(acked) <= found
    assert next_id > max(found)


def test_database_uses_wal(store: SqliteAuditStore) -> None:
    store.append(rec("ns/a", "sync", ""))
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


# ---- threads ----------------------------------------------------------------------------


def test_concurrent_appends_from_eight_threads_lose_nothing(store: SqliteAuditStore) -> None:
    threads, per_thread = 8, 100
    start = threading.Barrier(threads + 1)
    ids: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    seen_while_writing: list[int] = []

    def writer(t: int) -> None:
        try:
            start.wait()
            ids[t] = [
                store.append(rec(f"ns/t{t}", "sync", "", revision=f"{t}-{i}"))
                for i in range(per_thread)
            ]
        except BaseException as e:
            errors.append(e)

    def reader() -> None:
        try:
            start.wait()
            while len(ids) < threads and not errors:
                seen_while_writing.append(len(store.query(limit=MAX_LIMIT)))
        except BaseException as e:
            errors.append(e)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    workers.append(threading.Thread(target=reader))
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors
    all_ids = [i for t in range(threads) for i in ids[t]]
    assert len(set(all_ids)) == threads * per_thread
    got = store.query(limit=MAX_LIMIT)
    assert {r.id for r in got} == set(all_ids)
    for t in range(threads):
        mine = store.query(app=f"ns/t{t}", limit=MAX_LIMIT)
        assert {r.revision for r in mine} == {f"{t}-{i}" for i in range(per_thread)}
    # Readers saw counts that only grew: each read is one consistent snapshot.
    assert seen_while_writing == sorted(seen_while_writing)


# ---- append-only, schema, read-only -------------------------------------------------------


def test_store_has_no_update_or_delete_api() -> None:
    public = {n for n in dir(SqliteAuditStore) if not n.startswith("_")}
    assert public == {
        "append",
        "query",
        "namespaces",
        "check_writable",
        "close",
        "schema_version",
        "page",
        "expire",
    }
    # expire is retention's one path (the database refuses recent records, see
    # test_audit_backends); nothing else removes or changes a record.
    for word in ("update", "delete", "remove", "put", "set", "clear", "truncate", "prune"):
        assert not any(word in n.lower() for n in public)


def test_table_refuses_update_and_delete_statements(store: SqliteAuditStore) -> None:
    store.append(rec("ns/a", "sync", "", message="original"))
    conn = sqlite3.connect(store.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit_records SET message = 'rewritten'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit_records")
    finally:
        conn.close()
    assert [r.message for r in store.query()] == ["original"]


def test_reopening_keeps_records_and_schema_version(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with SqliteAuditStore(db) as s:
        assert s.schema_version == SCHEMA_VERSION == 3
        s.append(rec("ns/a", "sync", "", message="kept"))
    with SqliteAuditStore(db) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert [r.message for r in s.query()] == ["kept"]
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT version FROM schema_version").fetchall()
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    finally:
        conn.close()
    assert rows == [(1,), (2,), (3,)]
    assert {"audit_records_app_time", "audit_records_time"} <= indexes


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    SqliteAuditStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_version VALUES (99, '2030-01-01T00:00:00.000Z')")
    conn.commit()
    conn.close()
    with pytest.raises(AuditError, match="schema version 99"):
        SqliteAuditStore(db)
    with pytest.raises(AuditError, match="schema version 99"):
        SqliteAuditStore(db, readonly=True)


def test_readonly_store_reads_and_never_writes(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with SqliteAuditStore(db) as s:
        s.append(rec("ns/a", "sync", "", message="one"))
    with SqliteAuditStore(db, readonly=True) as ro:
        assert [r.message for r in ro.query()] == ["one"]
        with pytest.raises(AuditError, match="read-only"):
            ro.append(rec("ns/a", "sync", ""))
    with pytest.raises(AuditError):
        SqliteAuditStore(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()
    junk = tmp_path / "junk.db"
    junk.write_text("not a database at all, just text " * 100)
    with pytest.raises(AuditError, match="not a tether audit database"):
        SqliteAuditStore(junk, readonly=True)


def test_closed_store_refuses_use(tmp_path: Path) -> None:
    s = SqliteAuditStore(tmp_path / "audit.db")
    s.close()
    with pytest.raises(AuditError, match="closed"):
        s.query()
    with pytest.raises(AuditError, match="closed"):
        s.append(rec("ns/a", "sync", ""))


# ---- the HTTP API helper ------------------------------------------------------------------


async def test_records_json_takes_query_parameters_as_they_arrive(
    store: SqliteAuditStore,
) -> None:
    served = SqliteStore(store.path)
    store.append(rec("ns/a", "sync", ago(minutes=30), message="sync"))
    store.append(rec("ns/a", "drift", ago(minutes=20), message="drift"))
    store.append(rec("ns/a", "prune", ago(minutes=10), message="prune"))
    store.append(rec("ns/b", "sync", ago(minutes=5), message="b"))
    store.append(rec("ns/a", "sync", ago(hours=2), message="old"))

    async def messages(**kw: Any) -> list[str]:
        return [d["message"] for d in await records_json(served, **kw)]

    assert await messages() == ["b", "prune", "drift", "sync", "old"]
    assert await messages(app="", since="", kinds=[], limit="") == [
        "b",
        "prune",
        "drift",
        "sync",
        "old",
    ]
    assert await messages(app="ns/a", since="1h") == ["prune", "drift", "sync"]
    assert await messages(kinds="sync,drift", app="ns/a") == ["drift", "sync", "old"]
    assert await messages(kinds=["sync", "prune"], since="1h") == ["b", "prune", "sync"]
    assert await messages(kinds=["sync,prune", "drift"], limit="2") == ["b", "prune"]
    out = await records_json(served, limit=1)
    assert json.loads(json.dumps(out)) == out
    assert list(out[0]) == list(FULL.to_dict())
    for bad in ({"limit": "many"}, {"limit": "0"}, {"limit": str(MAX_LIMIT + 1)}):
        with pytest.raises(AuditQueryError, match="limit"):
            await records_json(served, **bad)
    with pytest.raises(AuditQueryError, match="kind"):
        await records_json(served, kinds="sync,nope")
    with pytest.raises(AuditQueryError, match="time"):
        await records_json(served, since="1 hour")
    # The controller's route answers a ValueError with 400 and its text, hint included.
    with pytest.raises(ValueError) as bad_app:
        await records_json(served, app="web")
    assert str(bad_app.value) == (
        "invalid app 'web' (an app is named <namespace>/<name>, e.g. tether-system/web)"
    )
    await served.close()
