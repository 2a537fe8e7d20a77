"""The shared vocabulary of the per-kind rules (Service, pod templates, workloads): a
:class:`Judge` that collects problems and deferrals, allow-lists of fields, and the small
number rules of ``k8s.io/apimachinery/pkg/util/validation`` (port numbers, IANA service names,
percentages).

A rule reports a problem only where every server version refuses the value; where versions
differ, or the rule is not written here, the object is deferred (a server dry-run decides).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tether.schema.check import show
from tether.schema.names import DNS1123_LABEL, DNS1123_SUBDOMAIN

_IANA_SVC_NAME = re.compile(r"^[-a-z0-9]+$")
_HAS_LETTER = re.compile(r"[a-z]")
_PERCENT = re.compile(r"^[0-9]+%$")


@dataclass
class Judge:
    """What the rules of one object found: problems (refused for certain) and the first reasons
    the server must judge it."""

    problems: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)

    def problem(self, path: str, what: str) -> None:
        self.problems.append(f"{path}: {what}")

    def defer(self, path: str, why: str) -> None:
        if len(self.deferred) < 5:
            self.deferred.append(f"{path}: {why}")

    def only(self, obj: dict[str, Any], allowed: frozenset[str], path: str) -> None:
        """Defers every field set in ``obj`` whose rules are not written here."""
        for key, value in obj.items():
            if value is not None and key not in allowed:
                self.defer(f"{path}.{key}", "a field whose rules are left to the server")

    def mapping(self, value: Any, path: str) -> dict[str, Any] | None:
        """``value`` as an object (``{}`` when unset); None (deferred) for another type,
        which the schema walk reports."""
        if value is None:
            return {}
        if isinstance(value, dict):
            return value
        self.defer(path, f"expected object, got {show(value)}")
        return None

    def items(self, value: Any, path: str) -> list[Any] | None:
        """``value`` as a list (``[]`` when unset); None (deferred) for another type."""
        if value is None:
            return []
        if isinstance(value, list):
            return value
        self.defer(path, f"expected array, got {show(value)}")
        return None

    def integer(self, value: Any, path: str) -> int | None:
        """``value`` as an int; None when unset or (deferred) not a plain integer."""
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        self.defer(path, f"{show(value)} is not a plain integer")
        return None

    def string(self, value: Any, path: str) -> str | None:
        """``value`` as a str; None when unset or (deferred) another type."""
        if value is None or isinstance(value, str):
            return value
        self.defer(path, f"expected string, got {show(value)}")
        return None

    def non_negative(self, value: Any, path: str) -> int | None:
        number = self.integer(value, path)
        if number is not None and number < 0:
            self.problem(path, f"must be greater than or equal to 0, is {number}")
        return number

    def one_of(self, value: Any, allowed: tuple[str, ...], path: str) -> str | None:
        """A string that must be one of ``allowed`` (unset and "" are defaulted)."""
        text = self.string(value, path)
        if text and text not in allowed:
            self.problem(path, f"{show(text)} is not one of {', '.join(allowed)}")
        return text


def port_number(value: int, path: str, judge: Judge) -> None:
    if not 1 <= value <= 65535:
        judge.problem(path, f"must be between 1 and 65535, is {value}")


def port_name_problem(name: str) -> str:
    """Why ``name`` is not an IANA service name (``http``, ``metrics-2``); empty if it is."""
    if not 1 <= len(name) <= 15:
        return "must be 1 to 15 characters long"
    if not _IANA_SVC_NAME.match(name):
        return "may hold only lower-case alphanumerics and '-'"
    if "--" in name or name.startswith("-") or name.endswith("-"):
        return "may not start or end with '-' or hold '--'"
    if not _HAS_LETTER.search(name):
        return "must hold at least one letter"
    return ""


def port_or_name(value: Any, path: str, judge: Judge) -> None:
    """An int-or-string port (a probe's or a Service's ``targetPort``): 1-65535 or an IANA
    service name."""
    if isinstance(value, bool):
        return  # the schema walk reports it
    if isinstance(value, int):
        port_number(value, path, judge)
    elif isinstance(value, str):
        why = port_name_problem(value)
        if why:
            judge.problem(path, f"{show(value)} is not a port name: {why}")
    else:
        judge.defer(path, f"{show(value)} is not a plain integer or string")


def int_or_percent(value: Any, path: str, judge: Judge) -> int | None:
    """``maxSurge``-like values: a non-negative int or ``N%``; the number (None: not known)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if value < 0:
            judge.problem(path, f"must be greater than or equal to 0, is {value}")
        return value
    if isinstance(value, str):
        if not _PERCENT.match(value):
            judge.problem(path, f"{show(value)} must be an integer or a percentage (e.g. '5%')")
            return None
        return int(value[:-1])  # only some fields are limited to 100%: their callers say so
    judge.defer(path, f"{show(value)} is not a plain integer or string")
    return None


def dns_label(value: str, path: str, judge: Judge) -> None:
    if len(value) > 63 or not DNS1123_LABEL.match(value):
        judge.problem(path, f"{show(value)} is not an RFC 1123 label (at most 63 characters)")


def dns_subdomain(value: str) -> bool:
    return len(value) <= 253 and bool(DNS1123_SUBDOMAIN.match(value))
