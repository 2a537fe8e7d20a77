"""The audit store contract, run against both backends (SQLite; PostgreSQL on the test bed's
server): filters and order, round trip, namespaces, append-only enforced by the database,
retention through its one path, streaming export, schema versions, read-only opening."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from audit_stores import BACKENDS, opened, store_location
from tether.audit import (
    AuditError,
    AuditQueryError,
    AuditRecord,
    AuditStore,
    format_time,
    open_store,
    records_json,
)
from tether.audit import postgres as pgstore
from tether.audit import sqlite as sqlitestore

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


@pytest.fixture
async def store(backend: str, tmp_path: Path) -> AsyncIterator[AuditStore]:
    async with opened(backend, tmp_path) as s:
        yield s


def rec(app: str, kind: str, time: str, **kw: Any) -> AuditRecord:
    return AuditRecord(id=None, time=time, app=app, kind=kind, **kw)


def ago(**delta: float) -> str:
    return format_time(datetime.now(UTC) - timedelta(**delta))


async def raw(where: str | Path, sql: str) -> None:
    """Runs ``sql`` by hand, as a person with the database would (not through the store)."""
    if isinstance(where, Path):
        conn = sqlite3.connect(where)
        try:
            conn.execute(sql)
            conn.commit()
        finally:
            conn.close()
        return
    c = await asyncpg.connect(where)
    try:
        await c.execute(sql)
    finally:
        await c.close()


async def test_query_newest_first_filters_and_limit(store: AuditStore) -> None:
    ids = {
        "middle": await store.append(rec("ns/a", "sync", "2026-11-26T04:00:00Z", message="m")),
        "old": await store.append(rec("ns/a", "sync", "2026-11-25T04:00:00.000Z", message="o")),
        "new": await store.append(rec("other/b", "drift", "2026-11-27T05:00:00+01:00")),
        "tie": await store.append(rec("ns/a", "prune", "2026-11-26T04:00:00.000Z")),
    }
    assert len(set(ids.values())) == 4 and ids["old"] > ids["middle"]
    got = await store.query()
    assert [r.id for r in got] == [ids["new"], ids["tie"], ids["middle"], ids["old"]]
    assert got[0].time == "2026-11-27T04:00:00.000Z"
    assert [r.id for r in await store.query(app="ns/a", kinds=["sync"])] == [
        ids["middle"],
        ids["old"],
    ]
    since = await store.query(since="2026-11-26T04:00:00Z")
    assert {r.id for r in since} == {ids["new"], ids["tie"], ids["middle"]}
    assert [r.id for r in await store.query(limit=2)] == [ids["new"], ids["tie"]]
    assert [r.id for r in await store.query(namespaces=["other"])] == [ids["new"]]
    assert await store.query(namespaces=[]) == []
    assert await store.namespaces() == ["ns", "other"]


async def test_query_since_a_duration(store: AuditStore) -> None:
    await store.append(rec("ns/a", "sync", ago(hours=3), message="old"))
    await store.append(rec("ns/a", "sync", ago(minutes=5), message="recent"))
    assert [r.message for r in await store.query(since="1h")] == ["recent"]


async def test_bad_queries_and_records_are_refused(store: AuditStore) -> None:
    with pytest.raises(AuditQueryError, match="unknown audit record kind"):
        await store.query(kinds=["nonsense"])
    with pytest.raises(AuditQueryError, match="invalid app"):
        await store.query(app="no-namespace")
    with pytest.raises(AuditQueryError, match="invalid time"):
        await store.query(since="yesterday")
    with pytest.raises(AuditQueryError):
        await store.append(rec("ns/a", "nonsense", ""))
    assert await store.query() == []


async def test_record_round_trips_unchanged(store: AuditStore) -> None:
    original = rec(
        "shop/web",
        "rollback",
        "2026-11-26T04:31:38.123Z",
        revision="0123456789abcdef0123456789abcdef01234567",
        author="Ana <ana@example.com>",
        message="revert: é, 日本, 'quotes' and \"double\"",
        trigger="rollback",
        result="Succeeded",
        objects=[{"kind": "Deployment", "name": "web", "fields": ["spec.replicas"], "n": 3}],
        details={"diff": "- a\n+ b", "nested": {"list": [1, None, True]}},
        user="ana@laptop",
    )
    rid = await store.append(original)
    (got,) = await store.query()
    assert got.to_dict() == {**original.to_dict(), "id": rid}


async def test_records_json_serves_the_http_parameters(store: AuditStore) -> None:
    await store.append(rec("ns/a", "sync", ago(minutes=30), message="sync"))
    await store.append(rec("ns/a", "drift", ago(minutes=20), message="drift"))
    body = await records_json(store, app="ns/a", since="1h", kinds="sync,drift", limit="1")
    assert [d["message"] for d in body] == ["drift"]


async def test_database_refuses_update_and_delete_by_hand(backend: str, tmp_path: Path) -> None:
    async with store_location(backend, tmp_path) as where:
        store = await open_store(where)
        try:
            await store.append(rec("ns/a", "sync", ago(days=400), message="old"))
            await store.append(rec("ns/a", "sync", "", message="recent"))
            errors: tuple[type[BaseException], ...] = (sqlite3.DatabaseError, asyncpg.PostgresError)
            for sql in (
                "UPDATE audit_records SET message = 'rewritten'",
                "DELETE FROM audit_records",
                "DELETE FROM audit_records WHERE message = 'old'",
            ):
                with pytest.raises(errors, match="append-only"):
                    await raw(where, sql)
            if backend == "postgres":
                with pytest.raises(asyncpg.PostgresError, match="append-only"):
                    await raw(where, "TRUNCATE audit_records")
                # The transaction-local flag alone does not open the door: only the owner's
                # expire function may delete.
                with pytest.raises(asyncpg.PostgresError, match="younger than 1 day"):
                    await raw(where, f"SELECT tether_audit_expire('{ago(hours=1)}')")
            else:
                with pytest.raises(sqlite3.DatabaseError, match="younger than 1 day"):
                    await raw(where, f"UPDATE audit_retention SET cutoff = '{ago(hours=1)}'")
            assert [r.message for r in await store.query()] == ["recent", "old"]
        finally:
            await store.close()


async def test_expire_removes_only_records_older_than_the_cutoff(store: AuditStore) -> None:
    await store.append(rec("ns/a", "sync", ago(days=100), message="100d"))
    await store.append(rec("ns/a", "sync", ago(days=91), message="91d"))
    await store.append(rec("ns/a", "sync", ago(days=89), message="89d"))
    await store.append(rec("ns/a", "sync", "", message="now"))
    assert await store.expire(ago(days=90)) == 2
    assert [r.message for r in await store.query()] == ["now", "89d"]
    assert await store.expire(ago(days=90)) == 0
    with pytest.raises(AuditQueryError, match="younger than 1 day"):
        await store.expire(ago(hours=2))
    assert len(await store.query()) == 2
    # Appending still works after a retention pass (the path was closed again).
    await store.append(rec("ns/a", "sync", "", message="after"))
    assert len(await store.query()) == 3


async def test_export_streams_every_record_oldest_first_in_pages(store: AuditStore) -> None:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(25):
        # Pairs share a time: paging must not lose or repeat ties.
        when = format_time(base + timedelta(minutes=i // 2))
        await store.append(rec("ns/a" if i % 3 else "ns/b", "sync", when, message=str(i)))
    got = [r async for r in store.export(batch=4)]
    assert [r.message for r in got] == [str(i) for i in range(25)]
    only_b = [r.message async for r in store.export(app="ns/b", batch=3)]
    assert only_b == [str(i) for i in range(0, 25, 3)]
    since = [r async for r in store.export(since=format_time(base + timedelta(minutes=10)))]
    assert [r.message for r in since] == ["20", "21", "22", "23", "24"]


async def test_check_writable_writes_nothing(store: AuditStore) -> None:
    await store.check_writable()
    assert await store.query() == []


async def test_reopening_keeps_records_newer_schema_refused_readonly_reads(
    backend: str, tmp_path: Path
) -> None:
    async with store_location(backend, tmp_path) as where:
        s = await open_store(where)
        await s.append(rec("ns/a", "sync", "", message="kept"))
        await s.close()
        ro = await open_store(where, readonly=True)
        try:
            assert [r.message for r in await ro.query()] == ["kept"]
            with pytest.raises(AuditError, match="read-only"):
                await ro.append(rec("ns/a", "sync", ""))
            with pytest.raises(AuditError, match="read-only"):
                await ro.expire(ago(days=30))
        finally:
            await ro.close()
        table = "schema_version" if backend == "sqlite" else "tether_audit_schema"
        await raw(where, f"INSERT INTO {table} VALUES (99, '2030-01-01T00:00:00.000Z')")
        for readonly in (False, True):
            with pytest.raises(AuditError, match="schema version 99"):
                await open_store(where, readonly=readonly)


async def test_two_stores_opening_one_new_database_at_once_both_work(
    backend: str, tmp_path: Path
) -> None:
    async with store_location(backend, tmp_path) as where:
        stores = await asyncio.gather(*(open_store(where) for _ in range(4)))
        try:
            await asyncio.gather(
                *(s.append(rec("ns/a", "sync", "", message=str(i))) for i, s in enumerate(stores))
            )
            assert len(await stores[0].query()) == 4
        finally:
            for s in stores:
                await s.close()


def test_schema_versions_are_known(backend: str) -> None:
    assert sqlitestore.SCHEMA_VERSION == 3
    assert pgstore.SCHEMA_VERSION == 1
