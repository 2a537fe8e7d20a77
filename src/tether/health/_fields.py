"""Forgiving readers for the loosely typed fields of a live object that health rules look at."""

from __future__ import annotations

from typing import Any, TypeGuard

from tether.model import Obj


def mapping(obj: Any, *path: str) -> dict[str, Any]:
    """The dict at ``path``, or an empty dict when any step is absent or not a dict."""
    current = obj
    for step in path:
        if not isinstance(current, dict):
            return {}
        current = current.get(step)
    return current if isinstance(current, dict) else {}


def optional_int(fields: dict[str, Any], key: str) -> int | None:
    value = fields.get(key)
    # bool is an int subclass; a stray true must not read as 1.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def integer(fields: dict[str, Any], key: str, default: int = 0) -> int:
    value = optional_int(fields, key)
    return default if value is None else value


def text(fields: dict[str, Any], key: str) -> str:
    value = fields.get(key)
    return value if isinstance(value, str) else ""


def entries(fields: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The dict items of the list at ``key``; anything else there is skipped."""
    value = fields.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def conditions(obj: Obj) -> list[dict[str, Any]]:
    return entries(mapping(obj, "status"), "conditions")


def condition(obj: Obj, type_: str) -> dict[str, Any] | None:
    return find_condition(conditions(obj), type_)


def find_condition(items: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in items if c.get("type") == type_), None)


def is_true(cond: dict[str, Any] | None) -> TypeGuard[dict[str, Any]]:
    return cond is not None and cond.get("status") == "True"


def reason_message(cond: dict[str, Any]) -> str:
    """``Reason: message``, or whichever of the two the condition has."""
    reason, message = text(cond, "reason"), text(cond, "message")
    if reason and message:
        return f"{reason}: {message}"
    return message or reason


def generation_observed(obj: Obj) -> bool:
    """Whether the controller has seen the current spec; no observedGeneration means not yet."""
    generation = integer(mapping(obj, "metadata"), "generation")
    return generation <= integer(mapping(obj, "status"), "observedGeneration")
