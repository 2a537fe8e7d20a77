"""What a caller may ask of the audit trail: out-of-range times are refused with a message
(never a server error), and a query is confined to the namespaces the caller may read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.audit import AuditQueryError, AuditRecord, SqliteAuditStore, records_json

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAuditStore]:
    with SqliteAuditStore(tmp_path / "audit.db") as s:
        for app in ("a/web", "ab/web", "b/db", "a/api"):
            s.append(AuditRecord(id=None, time="", app=app, kind="sync", message=app))
        yield s


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
def test_a_time_out_of_range_is_a_query_error_naming_it(
    store: SqliteAuditStore, since: str
) -> None:
    with pytest.raises(AuditQueryError) as info:
        records_json(store, since=since)
    assert "out of range" in str(info.value) and since in str(info.value)
    assert isinstance(info.value, ValueError)  # the HTTP route's 400


def test_a_duration_too_long_to_parse_is_a_query_error(store: SqliteAuditStore) -> None:
    with pytest.raises(AuditQueryError, match="out of range"):
        records_json(store, since="9" * 5000 + "s")


def test_a_query_is_confined_to_the_namespaces_given(store: SqliteAuditStore) -> None:
    def apps(**kw: object) -> list[str]:
        return sorted(r["app"] for r in records_json(store, **kw))  # type: ignore[arg-type]

    assert apps(namespaces=None) == ["a/api", "a/web", "ab/web", "b/db"]
    # "a" is not a prefix match: ab's records stay out.
    assert apps(namespaces=["a"]) == ["a/api", "a/web"]
    assert apps(namespaces=["a", "b"]) == ["a/api", "a/web", "b/db"]
    assert apps(namespaces=[]) == []
    assert apps(app="b/db", namespaces=["a"]) == []
    assert store.namespaces() == ["a", "ab", "b"]
