"""The leader's retention pass: removes what is older than the window, logs and counts it;
the window is parsed and bounded (at least a day)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tether import metrics
from tether.audit import AuditQueryError, AuditRecord, SqliteStore, format_time, parse_retention
from tether.controller.audit_sink import expire_once

pytestmark = pytest.mark.unit


def expired() -> float:
    return metrics.REGISTRY.get_sample_value("tether_audit_records_expired_total") or 0.0


async def test_a_pass_removes_old_records_logs_and_counts_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteStore(tmp_path / "audit.db")
    try:
        for days in (200, 120, 10, 0):
            when = format_time(datetime.now(UTC) - timedelta(days=days))
            await store.append(
                AuditRecord(id=None, time=when, app="ns/a", kind="sync", message=f"{days}d")
            )
        before = expired()
        with caplog.at_level(logging.INFO, logger="tether.controller"):
            assert await expire_once(store, parse_retention("90d")) == 2
        assert expired() == before + 2
        assert any("audit retention removed 2 record(s)" in r.getMessage() for r in caplog.records)
        assert [r.message for r in await store.query()] == ["0d", "10d"]
    finally:
        await store.close()


def test_retention_windows() -> None:
    assert parse_retention("90d") == timedelta(days=90)
    assert parse_retention("1w2d") == timedelta(days=9)
    assert parse_retention("36h") == timedelta(hours=36)
    for bad in ("12h", "forever", "", "-3d"):
        with pytest.raises(AuditQueryError):
            parse_retention(bad)
