"""The audit trail: an append-only record of every sync, drift, correction, prune, rollback,
pin and deletion, in SQLite (one controller) or PostgreSQL (several replicas)."""

from tether.audit.api import parse_limit, records_json, split_kinds
from tether.audit.model import (
    DEFAULT_LIMIT,
    KINDS,
    MAX_LIMIT,
    MIN_RETENTION,
    AuditError,
    AuditQueryError,
    AuditRecord,
    AuditStore,
    format_time,
    normalize_time,
    parse_retention,
    parse_since,
)
from tether.audit.open import AUDIT_URL_ENV, open_store
from tether.audit.sqlite import SCHEMA_VERSION, SqliteAuditStore, SqliteStore

__all__ = [
    "AUDIT_URL_ENV",
    "DEFAULT_LIMIT",
    "KINDS",
    "MAX_LIMIT",
    "MIN_RETENTION",
    "SCHEMA_VERSION",
    "AuditError",
    "AuditQueryError",
    "AuditRecord",
    "AuditStore",
    "SqliteAuditStore",
    "SqliteStore",
    "format_time",
    "normalize_time",
    "open_store",
    "parse_limit",
    "parse_retention",
    "parse_since",
    "records_json",
    "split_kinds",
]
