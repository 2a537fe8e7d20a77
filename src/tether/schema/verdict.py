"""The answer of a schema check: vouched for, invalid (its problems), or for the server."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """What the client-side check says of one object.

    ``vouched``: the schema passed and nothing else on the server judges the object, so a
    server dry-run would add nothing. ``problems``: the server would refuse the object, one line
    per problem (``spec.replicas: expected integer, got string "many"``). Neither: ``why_not``
    says why the server must judge it (a dry-run is sent).
    """

    vouched: bool
    problems: tuple[str, ...] = ()
    why_not: str = ""

    @property
    def invalid(self) -> bool:
        return bool(self.problems)


def vouch() -> Verdict:
    return Verdict(vouched=True)


def refuse(problems: list[str] | tuple[str, ...]) -> Verdict:
    return Verdict(vouched=False, problems=tuple(problems))


def defer(why_not: str) -> Verdict:
    return Verdict(vouched=False, why_not=why_not)
