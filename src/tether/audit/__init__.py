"""The audit trail: an append-only record of every sync, drift, correction and prune."""

from tether.audit.api import parse_limit, records_json, split_kinds
from tether.audit.store import (
    DEFAULT_LIMIT,
    KINDS,
    MAX_LIMIT,
    SCHEMA_VERSION,
    AuditError,
    AuditQueryError,
    AuditRecord,
    AuditStore,
    SqliteAuditStore,
    format_time,
    normalize_time,
    parse_since,
)

__all__ = [
    "DEFAULT_LIMIT",
    "KINDS",
    "MAX_LIMIT",
    "SCHEMA_VERSION",
    "AuditError",
    "AuditQueryError",
    "AuditRecord",
    "AuditStore",
    "SqliteAuditStore",
    "format_time",
    "normalize_time",
    "parse_limit",
    "parse_since",
    "records_json",
    "split_kinds",
]
