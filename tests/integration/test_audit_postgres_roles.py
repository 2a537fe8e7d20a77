"""The least-privilege recipe of docs/audit.md, on the real server: an owner role migrates,
the writer tether runs as may only insert, read and expire through the owner's function;
nothing it can type rewrites or removes a recent record."""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from audit_stores import server_url
from tether.audit import AuditError, AuditRecord, format_time, open_store


@dataclass
class Roles:
    owner_url: str
    writer_url: str
    schema: str


def as_role(url: str, role: str, password: str, schema: str) -> str:
    parts = urllib.parse.urlsplit(url)
    netloc = f"{role}:{password}@{parts.hostname}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=f"search_path={schema}"))


@pytest.fixture
async def roles() -> AsyncIterator[Roles]:
    url = server_url()
    tag = secrets.token_hex(4)
    owner, writer, schema = f"own_{tag}", f"wr_{tag}", f"audit_{tag}"
    pw_owner, pw_writer = secrets.token_hex(12), secrets.token_hex(12)
    admin = await asyncpg.connect(url, timeout=5)
    try:
        await admin.execute(f"CREATE ROLE {owner} LOGIN PASSWORD '{pw_owner}'")
        await admin.execute(f"CREATE ROLE {writer} LOGIN PASSWORD '{pw_writer}'")
        await admin.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {owner}")
        await admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO {writer}")
        yield Roles(
            as_role(url, owner, pw_owner, schema), as_role(url, writer, pw_writer, schema), schema
        )
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.execute(f"DROP ROLE IF EXISTS {writer}")
        await admin.execute(f"DROP ROLE IF EXISTS {owner}")
        await admin.close()


async def test_writer_inserts_reads_expires_and_can_do_nothing_else(roles: Roles) -> None:
    writer = roles.writer_url.split("@")[0].split("//")[1].split(":")[0]
    # The writer cannot create the schema: it is told to run the migration as the owner.
    with pytest.raises(AuditError, match="tether audit migrate"):
        await open_store(roles.writer_url)
    owner_store = await open_store(roles.owner_url)
    await owner_store.close()
    owner = await asyncpg.connect(roles.owner_url)
    try:
        s = roles.schema
        await owner.execute(f"GRANT SELECT, INSERT ON {s}.audit_records TO {writer}")
        await owner.execute(f"GRANT SELECT ON {s}.tether_audit_schema TO {writer}")
        await owner.execute(f"GRANT EXECUTE ON FUNCTION {s}.tether_audit_expire(text) TO {writer}")
    finally:
        await owner.close()

    store = await open_store(roles.writer_url)
    try:
        old = format_time().replace(format_time()[:4], "2020", 1)
        await store.append(AuditRecord(id=None, time=old, app="ns/a", kind="sync", message="old"))
        await store.append(AuditRecord(id=None, time="", app="ns/a", kind="sync", message="new"))
        await store.check_writable()
        assert [r.message for r in await store.query()] == ["new", "old"]
        assert await store.expire("2021-01-01T00:00:00Z") == 1

        conn = await asyncpg.connect(roles.writer_url)
        try:
            for sql in (
                "UPDATE audit_records SET message = 'x'",
                "DELETE FROM audit_records",
                "TRUNCATE audit_records",
                "DROP TRIGGER audit_records_append_only ON audit_records",
            ):
                with pytest.raises(asyncpg.PostgresError) as info:
                    await conn.execute(sql)
                assert isinstance(info.value, asyncpg.InsufficientPrivilegeError), (
                    f"{sql}: {info.value}"
                )
            # The flag the retention function sets does not let the writer delete by hand.
            async with conn.transaction():
                await conn.execute("SELECT set_config('tether.expire_before', '2999', true)")
                with pytest.raises(asyncpg.PostgresError):
                    await conn.execute("DELETE FROM audit_records")
        finally:
            await conn.close()
        assert [r.message for r in await store.query()] == ["new"]
    finally:
        await store.close()
