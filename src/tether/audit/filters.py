"""The WHERE clause of an audit query, checked and built once for both SQL backends (their
placeholders and namespace expression differ, the filters do not)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tether.audit.model import AuditQueryError, check_app, check_kinds, parse_since


@dataclass
class Where:
    """Conditions joined by AND, and their arguments in placeholder order."""

    placeholder: Callable[[int], str]
    """The n-th argument's placeholder (1-based): ``?`` for SQLite, ``$n`` for PostgreSQL."""
    namespace_expr: str
    conditions: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)
    empty: bool = False
    """True when the filters select nothing (an empty namespace list): skip the query."""

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return self.placeholder(len(self.args))

    def add(
        self,
        *,
        app: str | None,
        since: str | None,
        kinds: Sequence[str] | None,
        namespaces: Collection[str] | None = None,
    ) -> Where:
        if namespaces is not None:
            if not namespaces:
                self.empty = True
                return self
            marks = ", ".join(self.arg(ns) for ns in namespaces)
            self.conditions.append(f"{self.namespace_expr} IN ({marks})")
        if app:
            check_app(app)
            self.conditions.append(f"app = {self.arg(app)}")
        if since:
            self.conditions.append(f"time >= {self.arg(parse_since(since, datetime.now(UTC)))}")
        if kinds:
            check_kinds(kinds)
            self.conditions.append(f"kind IN ({', '.join(self.arg(k) for k in kinds)})")
        return self

    def after(self, time: str, rid: int) -> Where:
        """Records after (``time``, ``rid``) in export order (oldest first)."""
        t1, t2, r = self.arg(time), self.arg(time), self.arg(rid)
        self.conditions.append(f"(time > {t1} OR (time = {t2} AND id > {r}))")
        return self

    def sql(self) -> str:
        return " WHERE " + " AND ".join(self.conditions) if self.conditions else ""


def check_limit(limit: int) -> None:
    if limit < 1:
        raise AuditQueryError(f"invalid limit {limit}", hint="use a positive number")
