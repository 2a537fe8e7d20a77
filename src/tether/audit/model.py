"""The audit trail's records and contract: ``AuditRecord``, its kinds, times and errors, and
the ``AuditStore`` protocol every backend (SQLite, PostgreSQL) implements.

Records are never changed once written; only retention (``expire``) removes the oldest, through
one path each backend guards. Times are RFC 3339 in UTC with milliseconds
(``2026-11-26T04:31:38.123Z``). Every time is normalised to that form when it is written and
when it is queried, so comparing them as text (which the indexes do) orders them correctly.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
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
    "refresh",
    "terminate",
)
"""What a record reports: a sync, detected drift, a self-heal correction, a prune, a health
change, a field another manager keeps changing back (fighting), automated syncs of a
revision given up after ``retry.limit`` (retries-exhausted), or an Application deleted by
the controller with (or without) its objects (delete), a rollback written to Git and synced
(rollback), an app held at a revision or released (pin, unpin), and a refresh asked for or
an operation stopped through the HTTP API (refresh, terminate)."""

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
EXPORT_BATCH = 1000
"""Records an export reads per query."""
MIN_RETENTION = timedelta(days=1)
"""Records younger than this are never removed, whatever the retention asks: the databases
refuse it too, so a mistaken window (or a hand-written statement) cannot empty the trail."""


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
    """Where records go, for every backend. All methods are coroutines: a backend that blocks
    (SQLite) runs off the event loop itself."""

    location: str
    """Where the store is, safe for logs and messages: a path, or a URL without password."""

    async def append(self, rec: AuditRecord) -> int:
        """Stores ``rec`` durably and returns its id; ``rec.id`` is ignored.

        ``time`` is normalised to RFC 3339 UTC with milliseconds; an empty time means now.
        Raises AuditQueryError for an unknown kind or a malformed time or app, AuditError when
        the store cannot write.
        """
        ...

    async def query(
        self,
        *,
        app: str | None = None,
        since: str | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = DEFAULT_LIMIT,
        namespaces: Collection[str] | None = None,
    ) -> list[AuditRecord]:
        """Records matching every given filter, newest first (by time, then id), at most
        ``limit``.

        ``since`` is RFC 3339 or a duration back from now (``30m``, ``1h``, ``2d``); ``kinds``
        None or empty means every kind; ``namespaces`` None means every namespace, empty none.
        """
        ...

    def export(
        self,
        *,
        app: str | None = None,
        since: str | None = None,
        kinds: Sequence[str] | None = None,
        batch: int = EXPORT_BATCH,
    ) -> AsyncIterator[AuditRecord]:
        """Every matching record, oldest first, read ``batch`` at a time (any size of trail
        in bounded memory)."""
        ...

    async def namespaces(self) -> list[str]:
        """The namespaces of the apps the trail holds records of, sorted."""
        ...

    async def check_writable(self) -> None:
        """Raises AuditError unless a record could be written now (nothing is written)."""
        ...

    async def expire(self, before: str) -> int:
        """Removes the records older than ``before`` (RFC 3339) through the backend's one
        sanctioned path and returns how many. A ``before`` less than ``MIN_RETENTION`` ago is
        refused (AuditQueryError), by the database as well as here."""
        ...

    async def close(self) -> None: ...


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


def check_expire_before(before: str, now: datetime | None = None) -> str:
    """``before`` normalised; AuditQueryError when it is less than ``MIN_RETENTION`` ago."""
    cutoff = normalize_time(before)
    latest = format_time((now or datetime.now(UTC)) - MIN_RETENTION)
    if cutoff > latest:
        raise AuditQueryError(
            f"refusing to remove audit records from {cutoff} on: records younger than "
            f"{MIN_RETENTION.days} day are kept",
            hint="use a retention of 1d or more",
        )
    return cutoff


def parse_retention(text: str) -> timedelta:
    """``--audit-retention``: a duration such as ``90d``, ``12w`` or ``36h``; at least 1 day."""
    t = text.strip()
    if not _DURATION.match(t):
        raise AuditQueryError(
            f"invalid retention {text!r}", hint="use a duration such as 90d, 12w or 2160h"
        )
    window = timedelta(seconds=sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(t)))
    if window < MIN_RETENTION:
        raise AuditQueryError(
            f"retention {text!r} is shorter than 1 day", hint="use a retention of 1d or more"
        )
    return window


def check_kinds(kinds: Sequence[str]) -> None:
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
