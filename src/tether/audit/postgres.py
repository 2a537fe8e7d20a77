"""The PostgreSQL audit store (asyncpg pool): the same records and queries as SQLite, shared by
every replica of the controller.

The database enforces append-only: triggers refuse UPDATE, TRUNCATE and any DELETE except the
one retention path, ``tether_audit_expire(before)``, a SECURITY DEFINER function owned by the
schema's owner that refuses a cutoff less than ``MIN_RETENTION`` ago. The DELETE trigger lets a
row go only while that function runs (a transaction-local setting, checked together with
``current_user`` being the table's owner, so the writing role cannot fake it).

Migrations run at open under a transaction-level advisory lock, so two controllers starting
on an empty database do not race; the version table ``tether_audit_schema`` refuses a schema
newer than this code understands. See docs/audit.md for the least-privilege roles.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

import asyncpg

from tether.audit.filters import Where, check_limit
from tether.audit.model import (
    DEFAULT_LIMIT,
    EXPORT_BATCH,
    KINDS,
    AuditError,
    AuditQueryError,
    AuditRecord,
    check_app,
    check_expire_before,
    check_kinds,
    format_time,
    normalize_time,
)
from tether.audit.open import safe_url
from tether.audit.sqlite import normalize_time_or_duration

MIGRATION_LOCK = 0x7E7E_A0D1
"""The advisory lock key migrations hold (any constant shared by every tether)."""
CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 15.0

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE audit_records (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            time TEXT NOT NULL CHECK (time ~ '^[0-9-]{10}T[0-9:]{8}[.][0-9]{3}Z$'),
            app TEXT NOT NULL,
            kind TEXT NOT NULL,
            revision TEXT NOT NULL DEFAULT '',
            author TEXT NOT NULL DEFAULT '',
            message TEXT NOT NULL DEFAULT '',
            "trigger" TEXT NOT NULL DEFAULT '',
            result TEXT NOT NULL DEFAULT '',
            objects JSONB NOT NULL DEFAULT '[]',
            details JSONB NOT NULL DEFAULT '{}',
            "user" TEXT NOT NULL DEFAULT ''
        )
        """,
        "CREATE INDEX audit_records_app_time ON audit_records (app, time)",
        "CREATE INDEX audit_records_time ON audit_records (time, id)",
        """
        CREATE FUNCTION tether_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE'
               AND current_setting('tether.expire_before', true) IS NOT NULL
               AND current_setting('tether.expire_before', true) <> ''
               AND OLD.time < current_setting('tether.expire_before', true)
               AND current_user = (SELECT tableowner FROM pg_tables
                                   WHERE schemaname = TG_TABLE_SCHEMA
                                     AND tablename = TG_TABLE_NAME) THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION 'audit records are append-only (% refused)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """,
        """
        CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
        FOR EACH ROW EXECUTE FUNCTION tether_audit_guard()
        """,
        """
        CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
        FOR EACH STATEMENT EXECUTE FUNCTION tether_audit_guard()
        """,
        """
        CREATE FUNCTION tether_audit_expire(before TEXT) RETURNS BIGINT
        LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        DECLARE n BIGINT;
        BEGIN
            IF before > to_char((now() - interval '1 day') AT TIME ZONE 'UTC',
                                'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') THEN
                RAISE EXCEPTION 'audit records younger than 1 day are kept'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            PERFORM set_config('tether.expire_before', before, true);
            DELETE FROM audit_records WHERE time < before;
            GET DIAGNOSTICS n = ROW_COUNT;
            PERFORM set_config('tether.expire_before', '', true);
            RETURN n;
        END $$
        """,
        "REVOKE ALL ON FUNCTION tether_audit_expire(TEXT) FROM PUBLIC",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)
_COLUMNS = (
    'id, time, app, kind, revision, author, message, "trigger", result, objects, details, "user"'
)
_NAMESPACE = "split_part(app, '/', 1)"


def _failure(what: str, where: str, e: BaseException) -> AuditError:
    """An asyncpg or socket error as an AuditError naming the store (never the password)."""
    text = str(e) or type(e).__name__
    hint = "check that the PostgreSQL server is up and the URL's host, port and credentials"
    if what in ("append to", "write to"):
        hint += "; records are retried, then logged and counted in tether_audit_records_lost_total"
    if isinstance(e, asyncpg.InsufficientPrivilegeError):
        hint = "the role needs INSERT and SELECT on audit_records (see docs/audit.md)"
    return AuditError(f"cannot {what} audit store {where}: {text}", hint=hint)


_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class PostgresAuditStore:
    """An ``AuditStore`` in a PostgreSQL database; open with ``await PostgresAuditStore.open``."""

    def __init__(self, pool: asyncpg.Pool, location: str, readonly: bool) -> None:
        self.pool = pool
        self.location = location
        self.readonly = readonly

    @classmethod
    async def open(
        cls, url: str, *, readonly: bool = False, min_size: int = 1, max_size: int = 8
    ) -> PostgresAuditStore:
        where = safe_url(url)
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=min_size,
                max_size=max_size,
                timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT,
            )
        except _ERRORS as e:
            raise _failure("open", where, e) from e
        except ValueError as e:  # a malformed URL; its text may quote the URL
            raise AuditError(
                f"invalid PostgreSQL URL {where}",
                hint="use postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
            ) from e
        store = cls(pool, where, readonly)
        try:
            if readonly:
                await store._check_version()
            else:
                await store._migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    # ---- schema -------------------------------------------------------------------------
    async def _check_version(self, conn: Any = None) -> int:
        db = conn or self.pool
        try:
            exists = await db.fetchval("SELECT to_regclass('tether_audit_schema') IS NOT NULL")
            version = (
                int(await db.fetchval("SELECT coalesce(max(version), 0) FROM tether_audit_schema"))
                if exists
                else -1
            )
        except _ERRORS as e:
            raise _failure("read", self.location, e) from e
        if version > SCHEMA_VERSION:
            raise AuditError(
                f"audit store {self.location} has schema version {version}; this tether "
                f"understands up to {SCHEMA_VERSION}",
                hint="use a newer tether (a newer one migrated this database)",
            )
        if version < 0 and self.readonly:
            raise AuditError(
                f"{self.location} holds no tether audit trail (no tether_audit_schema table)",
                hint="point at the database the controller writes",
            )
        return version

    @property
    async def schema_version(self) -> int:
        return await self._check_version()

    async def _migrate(self) -> None:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                # Held to the end of the transaction: a second controller waits, then sees
                # the schema the first one made.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                current = await self._check_version(conn)
                if current == SCHEMA_VERSION:
                    return
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS tether_audit_schema ("
                    "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
                )
                for version in range(max(current, 0) + 1, SCHEMA_VERSION + 1):
                    for stmt in _MIGRATIONS[version - 1]:
                        await conn.execute(stmt)
                    await conn.execute(
                        "INSERT INTO tether_audit_schema (version, applied_at) VALUES ($1, $2)",
                        version,
                        format_time(),
                    )
        except AuditError:
            raise
        except asyncpg.InsufficientPrivilegeError as e:
            raise AuditError(
                f"cannot migrate audit store {self.location} to schema version "
                f"{SCHEMA_VERSION}: {e}",
                hint="run 'tether audit migrate --url OWNER_URL' with the schema owner's role "
                "once (see docs/audit.md), then start the controller again",
            ) from e
        except _ERRORS as e:
            raise _failure("prepare", self.location, e) from e

    # ---- the AuditStore API -------------------------------------------------------------
    def _writing(self) -> None:
        if self.readonly:
            raise AuditError(f"audit store {self.location} is open read-only")

    async def append(self, rec: AuditRecord) -> int:
        self._writing()
        check_kinds([rec.kind])
        check_app(rec.app)
        when = normalize_time(rec.time) if rec.time else format_time()
        try:
            rid = await self.pool.fetchval(
                f"INSERT INTO audit_records ({_COLUMNS.removeprefix('id, ')}) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11) RETURNING id",
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
        except _ERRORS as e:
            raise _failure("append to", self.location, e) from e
        return int(rid)

    async def query(
        self,
        *,
        app: str | None = None,
        since: str | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = DEFAULT_LIMIT,
        namespaces: Collection[str] | None = None,
    ) -> list[AuditRecord]:
        check_limit(limit)
        w = _where().add(app=app, since=since, kinds=kinds, namespaces=namespaces)
        if w.empty:
            return []
        lim = w.arg(limit)
        sql = (
            f"SELECT {_COLUMNS} FROM audit_records{w.sql()} ORDER BY time DESC, id DESC LIMIT {lim}"
        )
        return await self._fetch(sql, w.args)

    async def export(
        self,
        *,
        app: str | None = None,
        since: str | None = None,
        kinds: Sequence[str] | None = None,
        batch: int = EXPORT_BATCH,
    ) -> AsyncIterator[AuditRecord]:
        start = normalize_time_or_duration(since)
        after: tuple[str, int] | None = None
        while True:
            w = _where().add(app=app, since=start, kinds=kinds)
            if after is not None:
                w.after(*after)
            lim = w.arg(batch)
            sql = f"SELECT {_COLUMNS} FROM audit_records{w.sql()} ORDER BY time, id LIMIT {lim}"
            page = await self._fetch(sql, w.args)
            for rec in page:
                yield rec
            if len(page) < batch:
                return
            last = page[-1]
            assert last.id is not None
            after = (last.time, last.id)

    async def _fetch(self, sql: str, args: Sequence[Any]) -> list[AuditRecord]:
        try:
            rows = await self.pool.fetch(sql, *args)
        except _ERRORS as e:
            raise _failure("read", self.location, e) from e
        return [
            AuditRecord(
                id=int(r["id"]),
                time=r["time"],
                app=r["app"],
                kind=r["kind"],
                revision=r["revision"],
                author=r["author"],
                message=r["message"],
                trigger=r["trigger"],
                result=r["result"],
                objects=json.loads(r["objects"]),
                details=json.loads(r["details"]),
                user=r["user"],
            )
            for r in rows
        ]

    async def namespaces(self) -> list[str]:
        try:
            rows = await self.pool.fetch(f"SELECT DISTINCT {_NAMESPACE} AS ns FROM audit_records")
        except _ERRORS as e:
            raise _failure("read", self.location, e) from e
        return sorted(str(r["ns"]) for r in rows)

    async def check_writable(self) -> None:
        """Inserts a probe row in a transaction that is rolled back: a server that is down,
        a read-only replica or a role without INSERT fails here the way ``append`` would."""
        self._writing()
        try:
            async with self.pool.acquire() as conn:
                tr = conn.transaction()
                await tr.start()
                try:
                    await conn.execute(
                        "INSERT INTO audit_records (time, app, kind) VALUES ($1, $2, $3)",
                        format_time(),
                        "probe/probe",
                        KINDS[0],
                    )
                finally:
                    await tr.rollback()
        except _ERRORS as e:
            raise _failure("write to", self.location, e) from e

    async def expire(self, before: str) -> int:
        self._writing()
        cutoff = check_expire_before(before)
        try:
            n = await self.pool.fetchval("SELECT tether_audit_expire($1)", cutoff)
        except asyncpg.InvalidParameterValueError as e:
            raise AuditQueryError(f"audit store {self.location}: {e}") from e
        except _ERRORS as e:
            raise _failure("expire records of", self.location, e) from e
        return int(n)

    async def close(self) -> None:
        """Closes the pool; connections a dead server leaves hanging are cut after 10 s."""
        try:
            await asyncio.wait_for(self.pool.close(), timeout=10)
        except TimeoutError:
            self.pool.terminate()


def _where() -> Where:
    return Where(placeholder=lambda n: f"${n}", namespace_expr=_NAMESPACE)
