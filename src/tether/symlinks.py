"""Resolving a path inside a repository through its symlinks, as the kernel would.

Used where a tree is read from git (to fetch what links point at) and where it is rendered (to
refuse links that leave the repository or loop), so both agree on where every link leads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

MAX_HOPS = 40
"""Links followed for one path at most: the bound Linux puts on a lookup before ELOOP."""


@dataclass
class Resolved:
    path: str = ""
    """The path with every link along it replaced by its target; "" is the repository root."""
    problem: str = ""
    """"" when resolved; "escapes" (a ``..`` above the root or an absolute target) or "loop"."""
    link: str = ""
    """The last link followed, the one that escapes when ``problem`` says so."""
    target: str = ""
    """That link's target as stored."""
    hops: list[str] = field(default_factory=list)
    """Every link followed, in order."""


def resolve(path: str, link_at: Callable[[str], str | None]) -> Resolved:
    """``path`` (repository-relative, ``/``-separated) resolved through its links.

    ``link_at(prefix)`` gives the target of the link at ``prefix``, or None when it is not a
    link; it may raise (for a missing entry), and that propagates.
    """
    pending = path.split("/")[::-1]
    done: list[str] = []
    out = Resolved()
    states: set[tuple[str, tuple[str, ...]]] = set()
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not done:
                out.problem = "escapes"
                return out
            done.pop()
            continue
        done.append(part)
        here = "/".join(done)
        target = link_at(here)
        if target is None:
            continue
        out.link, out.target = here, target
        out.hops.append(here)
        state = (here, tuple(pending))
        if state in states or len(out.hops) > MAX_HOPS:
            out.problem = "loop"
            return out
        states.add(state)
        if target.startswith("/"):
            out.problem = "escapes"
            return out
        done.pop()
        pending.extend(target.split("/")[::-1])
    out.path = "/".join(done)
    return out
