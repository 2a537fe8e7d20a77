"""The audit trail as the controller's HTTP API serves it (``GET /api/v1/audit``).

``records_json`` takes the query parameters as they arrive (strings, possibly empty, ``kind``
repeated or comma-separated) and returns the JSON body: a list of records, newest first, each
with the keys of ``AuditRecord.to_dict``. Bad parameters raise ``AuditQueryError``, which the
route answers with 400 and the error's message and hint.

"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from tether.audit.model import DEFAULT_LIMIT, MAX_LIMIT, AuditQueryError, AuditStore


def split_kinds(kinds: str | Sequence[str] | None) -> list[str]:
    """``["sync,drift", "prune"]`` or ``"sync,drift"`` → ``["sync", "drift", "prune"]``.

    The CLI sends ``kind=sync,drift`` because the Kubernetes service proxy path passes one
    value per key; a browser or curl may repeat ``kind=`` instead. Both mean the same.
    """
    if kinds is None:
        return []
    items = [kinds] if isinstance(kinds, str) else list(kinds)
    return [k.strip() for item in items for k in item.split(",") if k.strip()]


def parse_limit(limit: int | str | None) -> int:
    """The ``limit`` parameter: absent or empty means ``DEFAULT_LIMIT``; 1 to ``MAX_LIMIT``."""
    if limit is None or limit == "":
        return DEFAULT_LIMIT
    try:
        n = int(limit)
    except ValueError:
        raise AuditQueryError(
            f"invalid limit {limit!r}", hint=f"use a number from 1 to {MAX_LIMIT}"
        ) from None
    if not 1 <= n <= MAX_LIMIT:
        raise AuditQueryError(f"invalid limit {n}", hint=f"use a number from 1 to {MAX_LIMIT}")
    return n


async def records_json(
    store: AuditStore,
    app: str | None = None,
    since: str | None = None,
    kinds: str | Sequence[str] | None = None,
    limit: int | str | None = None,
    namespaces: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """The records matching the query, newest first, as JSON-ready dicts.

    ``app`` is ``<namespace>/<name>``; ``since`` RFC 3339 or a duration back from the
    controller's clock (``1h``); empty strings mean the parameter is absent. ``namespaces``
    restricts the answer to the namespaces the caller may read (None: every one).
    """
    records = await store.query(
        app=app or None,
        since=since or None,
        kinds=split_kinds(kinds) or None,
        limit=parse_limit(limit),
        namespaces=namespaces,
    )
    return [r.to_dict() for r in records]


class StoreReader:
    """The HTTP route's view of a store (``tether.server.http.AuditReader``)."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store

    async def query(
        self, params: dict[str, str], namespaces: Collection[str] | None
    ) -> list[dict[str, Any]]:
        return await records_json(
            self.store,
            params.get("app"),
            params.get("since"),
            params.get("kind"),
            params.get("limit"),
            namespaces,
        )

    async def namespaces(self) -> list[str]:
        return await self.store.namespaces()
