"""``open_store``: the one place a path or URL becomes an ``AuditStore`` (SQLite or
PostgreSQL), for the controller and the CLI alike."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from tether.audit.model import AuditError, AuditStore

AUDIT_URL_ENV = "TETHER_AUDIT_URL"
"""The environment variable holding the PostgreSQL URL, so a Deployment takes the password
from a Secret rather than from its arguments."""
PG_SCHEMES = ("postgresql", "postgres")


def is_postgres(url_or_path: str | Path) -> bool:
    return isinstance(url_or_path, str) and url_or_path.split("://", 1)[0] in PG_SCHEMES


def safe_url(url: str) -> str:
    """``url`` without its password (for logs, messages and ``location``)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "postgresql://(malformed URL)"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


async def open_store(url_or_path: str | Path, *, readonly: bool = False) -> AuditStore:
    """A ``postgresql://`` URL opens a PostgreSQL store (migrating it unless ``readonly``);
    anything else is the path of a SQLite file (which must exist when ``readonly``)."""
    if is_postgres(url_or_path):
        from tether.audit.postgres import PostgresAuditStore

        return await PostgresAuditStore.open(str(url_or_path), readonly=readonly)
    text = str(url_or_path)
    if "://" in text:
        raise AuditError(
            f"unsupported audit store URL scheme {text.split('://', 1)[0]!r}",
            hint="use postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or a SQLite file path",
        )
    from tether.audit.sqlite import SqliteStore

    path = Path(text)
    if not readonly:
        path.parent.mkdir(parents=True, exist_ok=True)
    return await SqliteStore.open(path, readonly=readonly)
