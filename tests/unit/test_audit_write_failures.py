"""An audit record the store cannot write is retried, then logged whole and counted; while the
store cannot write, the controller's readiness says so. The failure is real: another SQLite
connection holds the database's write lock."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tether import metrics
from tether.audit import AuditRecord, SqliteStore
from tether.backoff import Backoff
from tether.controller.audit_sink import StoreAudit

pytestmark = pytest.mark.unit
NO_WAIT = Backoff(base=0.0, cap=0.0)


def lost(kind: str) -> float:
    value = metrics.REGISTRY.get_sample_value("tether_audit_records_lost_total", {"kind": kind})
    return value or 0.0


def record(message: str, kind: str = "sync") -> AuditRecord:
    return AuditRecord(
        id=None,
        time="",
        app="shop/web",
        kind=kind,
        revision="0123456789abcdef",
        message=message,
        result="Succeeded",
        objects=[{"kind": "ConfigMap", "name": "web", "action": "configured"}],
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """Created and migrated; a write waits 50 ms for a lock before it fails."""
    store = SqliteStore(tmp_path / "audit.db", busy_timeout=0.05)
    yield store
    await store.close()


@pytest.fixture
def lock(store: SqliteStore) -> Iterator[sqlite3.Connection]:
    """Another connection holding the write lock, as a second process writing would."""
    conn = sqlite3.connect(store.sync.path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    yield conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.close()


async def test_a_record_that_cannot_be_written_is_logged_whole_and_counted(
    store: SqliteStore, lock: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    audit = StoreAudit(store, attempts=3, backoff=NO_WAIT)
    before = lost("sync")

    with caplog.at_level(logging.ERROR, logger="tether.controller"):
        await audit.append(record("deploy 42"))

    assert lost("sync") == before + 1
    (line,) = [r for r in caplog.records if "audit record lost" in r.getMessage()]
    text = line.getMessage()
    assert "after 3 attempt(s)" in text and "database is locked" in text
    logged = json.loads(text.split("the record: ", 1)[1])
    assert logged["message"] == "deploy 42" and logged["app"] == "shop/web"
    assert logged["objects"] == [{"kind": "ConfigMap", "name": "web", "action": "configured"}]
    assert line.exc_info is None, "one line, not a traceback"
    assert not audit.writable()
    await audit.stop()


@dataclass(frozen=True)
class ReleasingBackoff(Backoff):
    """Lets the lock go while waiting before the second attempt: a transient failure."""

    release: Callable[[], object] = lambda: None

    def delay(self, attempt: int, rand: Callable[[], float] = lambda: 0.0) -> float:
        self.release()
        return 0.0


async def test_a_write_that_fails_once_is_retried_and_kept(
    store: SqliteStore, lock: sqlite3.Connection
) -> None:
    audit = StoreAudit(
        store, attempts=3, backoff=ReleasingBackoff(release=lambda: lock.execute("ROLLBACK"))
    )
    before = lost("sync")

    await audit.append(record("deploy 43"))

    assert [r.message for r in await store.query()] == ["deploy 43"]
    assert lost("sync") == before
    assert audit.writable()


async def test_readiness_fails_while_the_store_cannot_write_and_recovers_with_it(
    store: SqliteStore, lock: sqlite3.Connection
) -> None:
    audit = StoreAudit(store, attempts=1, backoff=NO_WAIT, probe_interval=0.0)
    await audit.append(record("lost while locked"))
    assert not audit.writable()

    # Still locked: the re-check the probe starts fails too.
    assert not audit.writable()
    assert audit._probe is not None
    await audit._probe
    assert audit.failure is not None and "database is locked" in audit.failure

    lock.execute("ROLLBACK")
    assert not audit.writable()  # reports the last known state, and re-checks
    assert audit._probe is not None
    await audit._probe
    assert audit.writable()

    await audit.append(record("written after recovery"))
    assert [r.message for r in await store.query()] == ["written after recovery"]
    await audit.stop()


async def test_a_malformed_record_is_not_retried_and_does_not_fail_readiness(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    audit = StoreAudit(store, attempts=3, backoff=NO_WAIT)
    before = lost("nonsense")

    with caplog.at_level(logging.ERROR, logger="tether.controller"):
        await audit.append(record("odd", kind="nonsense"))

    assert lost("nonsense") == before + 1
    assert any("after 1 attempt(s)" in r.getMessage() for r in caplog.records)
    assert audit.writable()
