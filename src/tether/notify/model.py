"""The notification value: what happened to which Application, as sinks receive it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tether.source.credentials import redact

EVENTS = frozenset(
    {"drift", "sync-failed", "health-degraded", "self-heal-fighting", "sync-succeeded"}
)
SEVERITIES = ("info", "warning", "error")
DEFAULT_SEVERITY = {
    "drift": "warning",
    "sync-failed": "error",
    "health-degraded": "error",
    "self-heal-fighting": "warning",
    "sync-succeeded": "info",
}
MAX_DIFF_CHARS = 20_000
"""A diff of a large app can run to megabytes; chat tools and webhook receivers reject bodies
far smaller, and the head of a diff is what a reader needs to decide where to look."""


def now_rfc3339() -> str:
    """The current time in UTC, to the second, the way Kubernetes writes timestamps."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    # The marker's length depends on the count it shows; size it for the worst case (all of
    # ``text`` omitted) so the result never exceeds ``limit``.
    reserve = len(f"\n… ({len(text)} more characters)")
    kept = max(limit - reserve, 0)
    return text[:kept] + f"\n… ({len(text) - kept} more characters)"


@dataclass(kw_only=True)
class Notification:
    """One event about one Application.

    ``diff`` must already be redacted by the caller (``tether.diff.redact``); it is only capped
    at ``MAX_DIFF_CHARS`` here. ``severity`` defaults from the event. ``objects`` lists the
    affected objects as ``{"group", "kind", "namespace", "name"}``.
    """

    event: str
    app: str
    namespace: str
    revision: str = ""
    message: str
    diff: str = ""
    field_manager: str = ""
    objects: list[dict[str, str]] = field(default_factory=list)
    time: str = field(default_factory=now_rfc3339)
    severity: str = ""

    def __post_init__(self) -> None:
        # A typo in an event name would silently bypass every sink's event filter: fail loudly
        # at the call site instead.
        if self.event not in EVENTS:
            raise ValueError(f"unknown notification event {self.event!r}")
        if not self.severity:
            self.severity = DEFAULT_SEVERITY[self.event]
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown notification severity {self.severity!r}")
        self.diff = truncate(self.diff, MAX_DIFF_CHARS)
        # A message may quote an error that quotes a repository URL with its token.
        self.message = redact(self.message)

    def to_json(self) -> dict[str, Any]:
        """The wire form: camelCase keys in a fixed order, so receivers and signatures are
        stable."""
        return {
            "event": self.event,
            "app": self.app,
            "namespace": self.namespace,
            "revision": self.revision,
            "message": self.message,
            "diff": self.diff,
            "fieldManager": self.field_manager,
            "objects": [
                {k: str(o.get(k, "")) for k in ("group", "kind", "namespace", "name")}
                for o in self.objects
            ],
            "time": self.time,
            "severity": self.severity,
        }
