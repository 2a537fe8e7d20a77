"""Audit stores for tests, one per backend: SQLite in a temporary file, PostgreSQL in a fresh
schema of the test bed's server (``devcluster/postgres.py``, started by ``make cluster``).

A PostgreSQL test without the server fails with how to start it: it is never skipped.
"""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from devcluster import postgres as pg

from tether.audit import AuditStore, open_store

BACKENDS = [
    pytest.param("sqlite", marks=pytest.mark.unit, id="sqlite"),
    pytest.param("postgres", marks=pytest.mark.integration, id="postgres"),
]


def server_url() -> str:
    """The test bed server's URL; fails the test (with the fix) when it does not run."""
    try:
        url = pg.url()
    except pg.PostgresError as e:
        pytest.fail(f"PostgreSQL test server: {e}", pytrace=False)
    return url


def with_schema(url: str, schema: str) -> str:
    """``url`` whose sessions use ``schema`` (asyncpg passes unknown query keys as settings)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(query=f"search_path={schema}"))


@asynccontextmanager
async def pg_schema() -> AsyncIterator[str]:
    """A fresh, empty schema; yields a URL using it and drops the schema afterwards."""
    url = server_url()
    schema = "t_" + secrets.token_hex(6)
    try:
        admin = await asyncpg.connect(url, timeout=5)
    except (OSError, asyncpg.PostgresError) as e:
        pytest.fail(
            f"PostgreSQL test server at {pg.URL_FILE} does not answer ({e}): run 'make cluster' "
            "or python -m devcluster.postgres up",
            pytrace=False,
        )
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
    finally:
        await admin.close()
    try:
        yield with_schema(url, schema)
    finally:
        # A new session: a test may have restarted the server under the first one.
        admin = await asyncpg.connect(url, timeout=5)
        try:
            await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await admin.close()


@asynccontextmanager
async def store_location(backend: str, tmp_path: Path) -> AsyncIterator[str | Path]:
    """Where a new store of ``backend`` lives (a file path or a URL), for opening it again."""
    if backend == "sqlite":
        yield tmp_path / "audit.db"
        return
    async with pg_schema() as url:
        yield url


@asynccontextmanager
async def opened(backend: str, tmp_path: Path) -> AsyncIterator[AuditStore]:
    async with store_location(backend, tmp_path) as where:
        store = await open_store(where)
        try:
            yield store
        finally:
            await store.close()
