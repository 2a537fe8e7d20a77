"""What a caller may ask of the audit trail: out-of-range times are refused with a message
(never a server error), and a query is confined to the namespaces the caller may read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tether.audit import AuditQueryError, AuditRecord, SqliteStore, records_json

pytestmark = pytest.mark.unit


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "audit.db")
    for app in ("a/web", "ab/web", "b/db", "a/api"):
        await s.append(AuditRecord(id=None, time="", app=app, kind="sync", message=app))
    yield s
    await s.close()


@pytest.mark.parametrize(
    "since",
    [
        "99999999999h",
        "1000000000w",
        "9" * 30 + "s",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
    ],
)
async def test_a_time_out_of_range_is_a_query_error_naming_it(
    store: SqliteStore, since: str
) -> None:
    with pytest.raises(AuditQueryError) as info:
        await records_json(store, since=since)
    assert "out of range" in str(info.value) and since in str(info.value)
    assert isinstance(info.value, ValueError)  # the HTTP route's 400


async def test_a_duration_too_long_to_parse_is_a_query_error(store: SqliteStore) -> None:
    with pytest.raises(AuditQueryError, match="out of range"):
        await records_json(store, since="9" * 5000 + "s")


async def test_a_query_is_confined_to_the_namespaces_given(store: SqliteStore) -> None:
    async def apps(app: str | None = None, namespaces: list[str] | None = None) -> list[str]:
        return sorted(r["app"] for r in await records_json(store, app=app, namespaces=namespaces))

    assert await apps(namespaces=None) == ["a/api", "a/web", "ab/web", "b/db"]
    # "a" is not a prefix match: ab's records stay out.
    assert await apps(namespaces=["a"]) == ["a/api", "a/web"]
    assert await apps(namespaces=["a", "b"]) == ["a/api", "a/web", "b/db"]
    assert await apps(namespaces=[]) == []
    assert await apps(app="b/db", namespaces=["a"]) == []
    assert await store.namespaces() == ["a", "ab", "b"]
