"""The words of a pin: the ``Pinned`` condition's message, and the short marks of list/get."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tether.api.application import Pin

if TYPE_CHECKING:  # behind reads Git; the wording of a pin does not
    from tether.pin.behind import PinState, SourceBehind

_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


def short(revision: str) -> str:
    """A commit as people read it (7 hex digits); a chart version as it is."""
    return revision[:7] if _FULL_SHA.match(revision) else revision


def pin_message(name: str, pin: Pin, state: PinState | None) -> str:
    """What, who, when, why, and how far behind each source's target the pin is."""
    revs = ", ".join(short(r) for r in pin.revisions)
    text = f"pinned at {revs} by {pin.by or 'unknown'} at {pin.at or 'an unknown time'}"
    if pin.reason:
        text += f" ({pin.reason})"
    if state is None or state.at != pin.at or len(state.sources) != len(pin.revisions):
        parts = ["how far behind is not known yet"]
    elif len(state.sources) == 1:
        parts = [behind_text(state.sources[0])]
    else:
        parts = [f"source {i}: {behind_text(s)}" for i, s in enumerate(state.sources, 1)]
    return f"{text}; {'; '.join(parts)}; unpin with 'tether app unpin {name}'"


def behind_text(s: SourceBehind) -> str:
    """``3 commits behind main (newest 9f8e7d6 by Bob)``, ``up to date with main``, or, for
    a chart, the version its constraint picks now."""
    if s.note:
        return f"distance to {s.target} unknown: {s.note}"
    if s.chart:
        if s.head == s.revision:
            return f"chart {s.revision} is still the newest for {s.target!r}"
        return f"chart {s.head} is available for {s.target!r}"
    if s.behind == 0:
        return f"up to date with {s.target}"
    unit = "commit" if s.behind == 1 else "commits"
    by = f" by {s.newest_author}" if s.newest_author else ""
    return f"{s.behind} {unit} behind {s.target} (newest {short(s.head)}{by})"


def commits_behind(pin: Pin, status_pin: object) -> int | None:
    """Commits behind over every counted source, as ``status.pin`` last said for this very
    pin (None when it has not been counted yet, or for charts alone)."""
    if not isinstance(status_pin, dict) or status_pin.get("at") != pin.at:
        return None
    raw = status_pin.get("behind")
    counted = [b for b in raw if isinstance(b, int) and b >= 0] if isinstance(raw, list) else []
    return sum(counted) if counted else None


def list_mark(pin: Pin, status_pin: object) -> str:
    """The mark ``tether app list`` adds to the SYNC cell: ``pinned a1b2c3d, 3 behind``."""
    revs = ",".join(short(r) for r in pin.revisions)
    n = commits_behind(pin, status_pin)
    return f"pinned {revs}" if n is None else f"pinned {revs}, {n} behind"
