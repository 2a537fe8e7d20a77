"""The SQLite audit store: one file, for one controller with a persistent volume.

``SqliteAuditStore`` is the blocking implementation (WAL, ``synchronous=FULL``, one
connection per thread, triggers refusing UPDATE and DELETE); ``SqliteStore`` is the
``AuditStore`` the controller and the CLI use, running each call in a thread.

Retention deletes through one path: the DELETE trigger refuses any row not older than the
cutoff held in ``audit_retention``, which is set only inside ``expire``'s transaction and
reset before it commits, and which a trigger refuses to set less than ``MIN_RETENTION`` ago.
A hand-written ``DELETE`` of a recent record is refused like any other.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import threading
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tether.audit.filters import Where, check_limit
from tether.audit.model import (
    DEFAULT_LIMIT,
    EXPORT_BATCH,
    KINDS,
    AuditError,
    AuditRecord,
    check_app,
    check_expire_before,
    check_kinds,
    format_time,
    normalize_time,
    parse_since,
)

BUSY_TIMEOUT = 30.0
"""Seconds a write waits for another process holding the database's write lock."""

# Each migration is a list of statements run in one transaction; index i is schema version
# i + 1. Statements are kept apart because executescript() would commit half-way.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE audit_records (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time TEXT NOT NULL,
            app TEXT NOT NULL,
            kind TEXT NOT NULL,
            revision TEXT NOT NULL DEFAULT '',
            author TEXT NOT NULL DEFAULT '',
            message TEXT NOT NULL DEFAULT '',
            "trigger" TEXT NOT NULL DEFAULT '',
            result TEXT NOT NULL DEFAULT '',
            objects TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(objects)),
            details TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details))
        )
        """,
        "CREATE INDEX audit_records_app_time ON audit_records (app, time)",
        "CREATE INDEX audit_records_time ON audit_records (time)",
        # The trail is evidence: even a hand-written statement cannot rewrite it.
        """
        CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
        BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END
        """,
        """
        CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
        BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END
        """,
    ),
    # 2: who asked (manual syncs, rollbacks, pins, deletions).
    ("""ALTER TABLE audit_records ADD COLUMN "user" TEXT NOT NULL DEFAULT ''""",),
    # 3: retention, the one way a record is removed (see the module docstring).
    (
        "CREATE TABLE audit_retention ("
        "id INTEGER PRIMARY KEY CHECK (id = 1), cutoff TEXT NOT NULL DEFAULT '')",
        "INSERT INTO audit_retention (id, cutoff) VALUES (1, '')",
        """
        CREATE TRIGGER audit_retention_window BEFORE UPDATE ON audit_retention
        WHEN NEW.cutoff > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')
        BEGIN SELECT RAISE(ABORT, 'audit records younger than 1 day are kept'); END
        """,
        """
        CREATE TRIGGER audit_retention_no_delete BEFORE DELETE ON audit_retention
        BEGIN SELECT RAISE(ABORT, 'the audit retention row is required'); END
        """,
        "DROP TRIGGER audit_records_no_delete",
        """
        CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
        WHEN OLD.time >= (SELECT cutoff FROM audit_retention WHERE id = 1)
        BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END
        """,
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)

_COLUMNS = (
    'id, time, app, kind, revision, author, message, "trigger", result, objects, details, "user"'
)
# An app is "<namespace>/<name>" (append checks it), so the namespace is what precedes "/".
_NAMESPACE = "substr(app, 1, instr(app, '/') - 1)"


class SqliteAuditStore:
    """An ``AuditStore`` in one SQLite file, safe to use from several threads.

    Each thread gets its own connection, so readers never wait for each other and, in WAL
    mode, never wait for the writer. Appends from this process take a lock first, so threads
    queue in order instead of polling SQLite's busy handler; other processes are kept out by
    ``BEGIN IMMEDIATE`` and the busy timeout.

    ``synchronous=FULL`` makes ``append`` return only once the record is on disk: a record it
    acknowledged survives the process being killed, or the machine losing power, right after.

    With ``readonly=True`` the file must exist and is never written (for inspecting a copy, or
    the controller's file while it runs).
    """

    def __init__(
        self, path: Path, *, readonly: bool = False, busy_timeout: float = BUSY_TIMEOUT
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        conn = self._conn()
        if readonly:
            self._check_version(conn)
        else:
            self._migrate(conn)

    # ---- connections --------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        try:
            if self.readonly:
                conn = sqlite3.connect(
                    self.path.resolve().as_uri() + "?mode=ro",
                    uri=True,
                    timeout=self.busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
            else:
                # isolation_level=None: transactions are begun explicitly, never implicitly.
                conn = sqlite3.connect(
                    self.path,
                    timeout=self.busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    conn.close()
                    raise AuditError(
                        f"audit database {self.path}: cannot use WAL journal mode (got {mode})",
                        hint="put the audit database on a local filesystem",
                    )
                # Per connection, not stored in the file: every connection must set it.
                conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as e:
            raise AuditError(f"cannot open audit database {self.path}: {e}") from e
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise AuditError(f"audit database {self.path} is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            # Kept so close() reaches connections made by other threads (e.g. to_thread's).
            with self._conns_lock:
                if self._closed:
                    conn.close()
                    raise AuditError(f"audit database {self.path} is closed")
                self._conns.append(conn)
            self._local.conn = conn
        return conn

    def _check_version(self, conn: sqlite3.Connection) -> int:
        try:
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        except sqlite3.DatabaseError as e:
            raise AuditError(
                f"{self.path} is not a tether audit database: {e}",
                hint="point at the audit.db file the controller writes",
            ) from e
        version = int(row[0] or 0)
        if version > SCHEMA_VERSION:
            raise AuditError(
                f"audit database {self.path} has schema version {version}; this tether "
                f"understands up to {SCHEMA_VERSION}",
                hint="use a newer tether",
            )
        return version

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # Under BEGIN IMMEDIATE, two processes opening a new file do not both migrate it.
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS schema_version ("
                        "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
                    )
                    current = self._check_version(conn)
                    for version in range(current + 1, SCHEMA_VERSION + 1):
                        for stmt in _MIGRATIONS[version - 1]:
                            conn.execute(stmt)
                        conn.execute(
                            "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                            (version, format_time()),
                        )
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise AuditError(f"cannot prepare audit database {self.path}: {e}") from e

    @property
    def schema_version(self) -> int:
        return self._check_version(self._conn())

    # ---- the AuditStore API -------------------------------------------------------------
    def append(self, rec: AuditRecord) -> int:
        """Writes ``rec`` (its ``id`` is ignored) and returns the id it was given.

        ``time`` is normalised to RFC 3339 UTC with milliseconds; an empty time means now.
        Raises AuditQueryError for an unknown kind or a malformed time or app.
        """
        if self.readonly:
            raise AuditError(f"audit database {self.path} is open read-only")
        check_kinds([rec.kind])
        check_app(rec.app)
        when = normalize_time(rec.time) if rec.time else format_time()
        row = (
            when,
            rec.app,
            rec.kind,
            rec.revision,
            rec.author,
            rec.message,
            rec.trigger,
            rec.result,
            json.dumps(rec.objects, sort_keys=True, separators=(",", ":")),
            json.dumps(rec.details, sort_keys=True, separators=(",", ":")),
            rec.user,
        )
        conn = self._conn()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    cur = conn.execute(
                        f"INSERT INTO audit_records ({_COLUMNS}) "
                        "VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise AuditError(f"cannot append to audit database {self.path}: {e}") from e
        rid = cur.lastrowid
        assert rid is not None  # an INSERT into a rowid table always sets it
        return rid

    def query(
        self,
        *,
        app: str | None = None,
        since: str | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = DEFAULT_LIMIT,
        namespaces: Collection[str] | None = None,
    ) -> list[AuditRecord]:
        """Records matching every given filter, newest first (by time, then id)."""
        check_limit(limit)
        w = _where().add(app=app, since=since, kinds=kinds, namespaces=namespaces)
        if w.empty:
            return []
        sql = f"SELECT {_COLUMNS} FROM audit_records{w.sql()} ORDER BY time DESC, id DESC LIMIT ?"
        args = [*w.args, limit]
        try:
            rows = self._conn().execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise AuditError(f"cannot read audit database {self.path}: {e}") from e
        return [_record(r) for r in rows]

    def check_writable(self) -> None:
        """Raises AuditError unless a record could be written now (nothing is written).

        Takes the write lock and inserts a row, then rolls back: a database that is locked,
        read-only or gone fails here the way ``append`` would.
        """
        if self.readonly:
            raise AuditError(f"audit database {self.path} is open read-only")
        conn = self._conn()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(
                        "INSERT INTO audit_records (time, app, kind) VALUES (?, ?, ?)",
                        (format_time(), "probe/probe", KINDS[0]),
                    )
                finally:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
            except sqlite3.Error as e:
                raise AuditError(f"cannot write to audit database {self.path}: {e}") from e

    def page(
        self,
        *,
        app: str | None = None,
        since: str | None = None,
        kinds: Sequence[str] | None = None,
        after: tuple[str, int] | None = None,
        limit: int = EXPORT_BATCH,
    ) -> list[AuditRecord]:
        """Up to ``limit`` matching records after ``after`` (time, id), oldest first: one
        step of an export."""
        w = _where().add(app=app, since=since, kinds=kinds)
        if after is not None:
            w.after(*after)
        sql = f"SELECT {_COLUMNS} FROM audit_records{w.sql()} ORDER BY time, id LIMIT ?"
        try:
            rows = self._conn().execute(sql, [*w.args, limit]).fetchall()
        except sqlite3.Error as e:
            raise AuditError(f"cannot read audit database {self.path}: {e}") from e
        return [_record(r) for r in rows]

    def expire(self, before: str) -> int:
        """Removes the records older than ``before``; returns how many (see the module
        docstring for how the database keeps every other DELETE out)."""
        if self.readonly:
            raise AuditError(f"audit database {self.path} is open read-only")
        cutoff = check_expire_before(before)
        conn = self._conn()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute("UPDATE audit_retention SET cutoff = ? WHERE id = 1", (cutoff,))
                    n = conn.execute("DELETE FROM audit_records WHERE time < ?", (cutoff,)).rowcount
                    conn.execute("UPDATE audit_retention SET cutoff = '' WHERE id = 1")
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise AuditError(f"cannot expire records of audit database {self.path}: {e}") from e
        return int(n)

    def namespaces(self) -> list[str]:
        try:
            rows = self._conn().execute(f"SELECT DISTINCT {_NAMESPACE} FROM audit_records")
            return sorted(str(r[0]) for r in rows.fetchall())
        except sqlite3.Error as e:
            raise AuditError(f"cannot read audit database {self.path}: {e}") from e

    def close(self) -> None:
        """Closes every thread's connection; the store cannot be used afterwards.

        Waits for a write in progress in another thread: closing a connection under a
        running statement crashes the sqlite3 module."""
        with self._write_lock, self._conns_lock:
            self._closed = True
            conns, self._conns = self._conns, []
            for conn in conns:
                conn.close()

    def __enter__(self) -> SqliteAuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _where() -> Where:
    return Where(placeholder=lambda _n: "?", namespace_expr=_NAMESPACE)


def _record(r: Sequence[Any]) -> AuditRecord:
    return AuditRecord(
        id=r[0],
        time=r[1],
        app=r[2],
        kind=r[3],
        revision=r[4],
        author=r[5],
        message=r[6],
        trigger=r[7],
        result=r[8],
        objects=json.loads(r[9]),
        details=json.loads(r[10]),
        user=r[11],
    )


class SqliteStore:
    """The ``AuditStore`` over a ``SqliteAuditStore``: every call runs in a thread."""

    def __init__(
        self, path: Path, *, readonly: bool = False, busy_timeout: float = BUSY_TIMEOUT
    ) -> None:
        self.sync = SqliteAuditStore(path, readonly=readonly, busy_timeout=busy_timeout)
        self.location = str(path)

    @classmethod
    async def open(cls, path: Path, *, readonly: bool = False) -> SqliteStore:
        return await asyncio.to_thread(cls, path, readonly=readonly)

    async def append(self, rec: AuditRecord) -> int:
        return await asyncio.to_thread(self.sync.append, rec)

    async def query(
        self,
        *,
        app: str | None = None,
        since: str | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = DEFAULT_LIMIT,
        namespaces: Collection[str] | None = None,
    ) -> list[AuditRecord]:
        return await asyncio.to_thread(
            lambda: self.sync.query(
                app=app, since=since, kinds=kinds, limit=limit, namespaces=namespaces
            )
        )

    async def export(
        self,
        *,
        app: str | None = None,
        since: str | None = None,
        kinds: Sequence[str] | None = None,
        batch: int = EXPORT_BATCH,
    ) -> AsyncIterator[AuditRecord]:
        # A duration is counted back once, from the start: later pages use the same window.
        start = normalize_time_or_duration(since)
        after: tuple[str, int] | None = None
        while True:
            page = await asyncio.to_thread(
                functools.partial(
                    self.sync.page, app=app, since=start, kinds=kinds, after=after, limit=batch
                )
            )
            for rec in page:
                yield rec
            if len(page) < batch:
                return
            last = page[-1]
            assert last.id is not None
            after = (last.time, last.id)

    async def namespaces(self) -> list[str]:
        return await asyncio.to_thread(self.sync.namespaces)

    async def check_writable(self) -> None:
        await asyncio.to_thread(self.sync.check_writable)

    async def expire(self, before: str) -> int:
        return await asyncio.to_thread(self.sync.expire, before)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)


def normalize_time_or_duration(since: str | None) -> str | None:
    """``since`` as an absolute time in the store's form (a duration counted back from now)."""
    return parse_since(since, datetime.now(UTC)) if since else None
