"""The append-only audit trail: one record per sync, drift, correction, prune and health event.

``AuditStore`` is the small interface the controller writes through, so that a server database
can replace SQLite later; ``SqliteAuditStore`` is the implementation for one controller with a
persistent volume. Records are never changed or removed once written: the store has no API for
it, and the table refuses UPDATE and DELETE statements.

Times are RFC 3339 in UTC with milliseconds (``2026-11-26T04:31:38.123Z``). Every time is
normalised to that form when it is written and when it is queried, so comparing them as text
(which the indexes do) orders them correctly.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from tether.errors import TetherError

KINDS = (
    "sync",
    "drift",
    "correction",
    "prune",
    "health",
    "fighting",
    "retries-exhausted",
    "delete",
    "rollback",
    "pin",
    "unpin",
)
"""What a record reports: a sync, detected drift, a self-heal correction, a prune, a health
change, a field another manager keeps changing back (fighting), automated syncs of a
revision given up after ``retry.limit`` (retries-exhausted), or an Application deleted by
the controller with (or without) its objects (delete), a rollback written to Git and synced
(rollback), and an app held at a revision or released (pin, unpin)."""

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
BUSY_TIMEOUT = 30.0
"""Seconds a write waits for another process holding the database's write lock."""


class AuditError(TetherError):
    """The audit trail could not be opened, read or written."""

    reason = "AuditError"


class AuditQueryError(AuditError, ValueError):
    """A query asked for something malformed: a bad time, kind, app or limit.

    Also a ValueError: the controller's HTTP route answers those with 400 and ``str(e)``.
    """

    reason = "InvalidAuditQuery"


@dataclass
class AuditRecord:
    """One event. ``id`` is None until the store assigns it; ``app`` is ``<namespace>/<name>``.

    ``objects`` lists the objects concerned, e.g. ``{"group", "kind", "namespace", "name",
    "action", "fields": [...], "manager", "operation"}``; ``details`` is free form (e.g. a diff
    text). Neither may hold a Secret value: callers redact before appending.
    """

    id: int | None
    time: str
    app: str
    kind: str
    revision: str = ""
    author: str = ""
    message: str = ""
    trigger: str = ""
    result: str = ""
    objects: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    user: str = ""
    """Who asked, for what a person asked for (a manual sync, a rollback, a pin, a
    deletion); empty for what the controller did on its own."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict whose keys are always the same, in field order."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AuditRecord:
        """The inverse of ``to_dict``; missing optional keys take their defaults.

        Raises ValueError when a key has the wrong type, so a malformed answer from a server
        is reported rather than printed half-read.
        """
        rid = d.get("id")
        if rid is not None and (not isinstance(rid, int) or isinstance(rid, bool)):
            raise ValueError(f"audit record id {rid!r} is not an integer")
        strings: dict[str, str] = {}
        for key in (
            "time",
            "app",
            "kind",
            "revision",
            "author",
            "message",
            "trigger",
            "result",
            "user",
        ):
            value = d.get(key, "")
            if not isinstance(value, str):
                raise ValueError(f"audit record {key} {value!r} is not a string")
            strings[key] = value
        objects = d.get("objects") or []
        details = d.get("details") or {}
        if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
            raise ValueError("audit record objects is not a list of objects")
        if not isinstance(details, dict):
            raise ValueError("audit record details is not an object")
        return cls(id=rid, objects=objects, details=details, **strings)


class AuditStore(Protocol):
    """Where records go. Small on purpose: append, query newest first, close."""

    def append(self, rec: AuditRecord) -> int:
        """Stores ``rec`` durably and returns its id; ``rec.id`` is ignored."""
        ...

    def query(
        self,
        *,
        app: str | None = None,
        since: str | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = DEFAULT_LIMIT,
        namespaces: Collection[str] | None = None,
    ) -> list[AuditRecord]:
        """Records matching every given filter, newest first, at most ``limit``.

        ``since`` is RFC 3339 or a duration back from now (``30m``, ``1h``, ``2d``); ``kinds``
        None or empty means every kind; ``namespaces`` None means every namespace, empty none.
        """
        ...

    def namespaces(self) -> list[str]:
        """The namespaces of the apps the trail holds records of, sorted."""
        ...

    def close(self) -> None: ...


# ---- times -------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+)([smhdw])")
_DURATION = re.compile(r"^(?:\d+[smhdw])+$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def format_time(dt: datetime | None = None) -> str:
    """``dt`` (default: now) as RFC 3339 UTC with milliseconds, the form the store keeps."""
    dt = datetime.now(UTC) if dt is None else dt
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def normalize_time(text: str) -> str:
    """An RFC 3339 time (any offset, any precision) in the store's form.

    A time without an offset is taken as UTC. Raises AuditQueryError when ``text`` is not a
    time.
    """
    try:
        # fromisoformat accepts "Z" from 3.11 on; RFC 3339 also allows a lower-case t and z.
        dt = datetime.fromisoformat(text.strip().replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise AuditQueryError(
            f"invalid time {text!r}",
            hint="use RFC 3339 such as 2026-11-26T04:31:38Z, or a duration such as 30m, 1h, 2d",
        ) from None
    try:
        return format_time(dt)
    except OverflowError:
        # 9999-12-31T23:59:59-01:00 is a valid RFC 3339 time past the last UTC datetime.
        raise AuditQueryError(
            f"time {text!r} is out of range", hint="use a time between the years 1 and 9999"
        ) from None


def parse_since(text: str, now: datetime) -> str:
    """The start of a query window: RFC 3339, or a duration before ``now`` (``90s``, ``30m``,
    ``1h``, ``2d``, ``1w``, or combined such as ``1h30m``), in the store's time form."""
    t = text.strip()
    if _DURATION.match(t):
        try:
            seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(t))
            return format_time(now - timedelta(seconds=seconds))
        except (OverflowError, ValueError):
            # The window would start before the year 1: no record is that old, but saying
            # so beats silently widening the query.
            raise AuditQueryError(
                f"duration {text!r} is out of range",
                hint="use a shorter duration, or an RFC 3339 time",
            ) from None
    return normalize_time(t)


# ---- SQLite ------------------------------------------------------------------------------

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
        _check_kinds([rec.kind])
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
        where: list[str] = []
        args: list[Any] = []
        if namespaces is not None:
            if not namespaces:
                return []
            where.append(f"{_NAMESPACE} IN ({', '.join('?' * len(namespaces))})")
            args.extend(namespaces)
        if app:
            check_app(app)
            where.append("app = ?")
            args.append(app)
        if since:
            where.append("time >= ?")
            args.append(parse_since(since, datetime.now(UTC)))
        if kinds:
            _check_kinds(kinds)
            where.append(f"kind IN ({', '.join('?' * len(kinds))})")
            args.extend(kinds)
        if limit < 1:
            raise AuditQueryError(f"invalid limit {limit}", hint="use a positive number")
        sql = f"SELECT {_COLUMNS} FROM audit_records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY time DESC, id DESC LIMIT ?"
        args.append(limit)
        try:
            rows = self._conn().execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise AuditError(f"cannot read audit database {self.path}: {e}") from e
        return [
            AuditRecord(
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
            for r in rows
        ]

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


def _check_kinds(kinds: Sequence[str]) -> None:
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise AuditQueryError(
            f"unknown audit record kind {', '.join(map(repr, bad))}",
            hint="kinds are " + ", ".join(KINDS),
        )


def check_app(app: str) -> None:
    """Raises AuditQueryError unless ``app`` is ``<namespace>/<name>``."""
    ns, _, name = app.partition("/")
    if not ns or not name or "/" in name:
        raise AuditQueryError(
            f"invalid app {app!r}",
            hint="an app is named <namespace>/<name>, e.g. tether-system/web",
        )
