"""``tether audit export`` (the trail as JSON lines, streamed) and ``tether audit migrate``
(a PostgreSQL store's schema, run with the owner's role)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO

import click

from tether.audit import KINDS, open_store
from tether.audit.model import AuditStore
from tether.audit.open import AUDIT_URL_ENV, is_postgres, safe_url
from tether.cli.common import EXIT_OK, err, run
from tether.errors import TetherError

LOCAL_AUDIT_DB = Path.home() / ".local" / "share" / "tether" / "audit.db"


async def export_lines(
    store: AuditStore,
    out: IO[str],
    *,
    app: str | None = None,
    since: str | None = None,
    kinds: tuple[str, ...] = (),
) -> int:
    """Writes every matching record, oldest first, one JSON object a line; returns how many."""
    n = 0
    async for rec in store.export(app=app, since=since, kinds=kinds or None):
        out.write(json.dumps(rec.to_dict(), separators=(",", ":"), ensure_ascii=False) + "\n")
        n += 1
    out.flush()
    return n


def _where(db: Path | None, url: str | None) -> str | Path:
    if db is not None and url:
        raise TetherError("give --db or --url, not both")
    if db is not None:
        if not db.is_file():
            raise TetherError(
                f"audit database {db} does not exist or is not a file",
                hint="give the path of the controller's audit database file",
            )
        return db
    if url:
        if not is_postgres(url):
            raise TetherError("--url must be a postgresql:// URL", hint="for SQLite use --db")
        return url
    if LOCAL_AUDIT_DB.is_file():
        return LOCAL_AUDIT_DB
    raise TetherError(
        "no audit store given",
        hint=f"use --db PATH (the controller's SQLite file) or --url postgresql://… "
        f"(or ${AUDIT_URL_ENV})",
    )


def register_export(audit: click.Group) -> None:
    @audit.command("export")
    @click.option("--app", "app_name", default=None, metavar="NAMESPACE/NAME")
    @click.option("--since", default=None, metavar="T", help="RFC 3339, or a duration (90d).")
    @click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS))
    @click.option("--db", type=click.Path(path_type=Path), default=None, help="SQLite file.")
    @click.option("--url", envvar=AUDIT_URL_ENV, default=None, help="PostgreSQL URL.")
    @click.option("-n", "--namespace", default="tether-system", show_default=True)
    def export(
        app_name: str | None,
        since: str | None,
        kinds: tuple[str, ...],
        db: Path | None,
        url: str | None,
        namespace: str,
    ) -> None:
        """Write audit records as JSON lines on stdout, oldest first, streaming (any size).

        Each line has the keys of 'tether audit -o json'. Reads the store directly,
        read-only: --db PATH, --url postgresql://… ($TETHER_AUDIT_URL), or the local
        controller's default file.
        """
        app = None if not app_name else app_name if "/" in app_name else f"{namespace}/{app_name}"

        async def go() -> int:
            store = await open_store(_where(db, url), readonly=True)
            try:
                n = await export_lines(store, sys.stdout, app=app, since=since, kinds=kinds)
            finally:
                await store.close()
            err.print(f"[dim]exported {n} record(s) from {store.location}[/dim]")
            return EXIT_OK

        run(go())


def register_migrate(audit: click.Group) -> None:
    @audit.command("migrate")
    @click.option("--url", envvar=AUDIT_URL_ENV, required=True, help="PostgreSQL URL.")
    def migrate(url: str) -> None:
        """Create or upgrade a PostgreSQL audit store's schema (run with the owner's role).

        The controller does the same at start when its role may; with a least-privilege role
        (INSERT and SELECT only) run this once per upgrade instead.
        """
        if not is_postgres(url):
            raise click.BadParameter("must be a postgresql:// URL", param_hint="--url")

        async def go() -> int:
            store = await open_store(url)
            await store.close()
            err.print(f"audit store {safe_url(url)} is at the current schema")
            return EXIT_OK

        run(go())
