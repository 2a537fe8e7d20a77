"""Attribution, pure: given the app's renders along its history (newest first), the commit
whose render last changed each field to its current value.

A field's value at the newest commit looked at is its current value. Walking back, the
commit that changed it is the last one (going back) still showing that value, whose next
older render shows another value or none. A field that kept its value down to the oldest
commit looked at is attributed to that commit "at or before" (history depth reached). A
commit whose render failed is passed over: it says nothing about any field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_ABSENT = object()


@dataclass(frozen=True)
class Step:
    """One point of history: ``commit`` is an index into the caller's list of commits (with
    several sources, a source and a commit), ``fields`` the object's fields at it (None: the
    render failed there; ``{}``: the object was not rendered)."""

    commit: int
    fields: dict[str, Any] | None


@dataclass(frozen=True)
class Attribution:
    commit: int
    """The step's ``commit`` that set the current value."""
    at_or_before: bool
    """The value was the same at the oldest commit looked at: set there or earlier."""
    origin: bool = False
    """The value was already there at the oldest commit looked at (``at_or_before``, or the
    branch's first commit): no change to it was seen, so with several sources another
    source's change explains it better."""


def attribute(steps: Sequence[Step], *, complete: bool = False) -> dict[str, Attribution]:
    """``{path: attribution}`` for every field of the newest rendered step. ``steps`` go
    from newest to oldest; the first must have rendered. ``complete``: the oldest step is
    the branch's first commit, so a value it shows was set there, not "at or before"."""
    rendered = [s for s in steps if s.fields is not None]
    if not rendered:
        return {}
    current = rendered[0].fields or {}
    out: dict[str, Attribution] = {}
    for path, value in current.items():
        last = rendered[0]
        changed = False
        for older in rendered[1:]:
            assert older.fields is not None
            if older.fields.get(path, _ABSENT) != value:
                changed = True
                break
            last = older
        out[path] = Attribution(
            last.commit, at_or_before=not changed and not complete, origin=not changed
        )
    return out
