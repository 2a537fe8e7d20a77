"""How far each source's branch has moved past a pinned revision (``status.pin``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pygit2

from tether.api.application import Application
from tether.api.source import Source
from tether.engine import Engine
from tether.errors import TetherError
from tether.source.history import count_between

NOT_COUNTED = -1
"""``behind`` of a source whose distance is not a number of commits (a chart version, or a
branch that could not be read)."""


@dataclass(frozen=True)
class SourceBehind:
    """One source of a pinned app: the revision held, and where its target is now."""

    revision: str
    """The pinned commit (Git) or chart version (Helm repository)."""
    target: str
    """What the source follows: its targetRevision (a branch, HEAD, a chart constraint)."""
    head: str = ""
    """What ``target`` resolves to now ("" when it could not be read)."""
    behind: int = NOT_COUNTED
    """First-parent commits on ``target`` since ``revision``; NOT_COUNTED for a chart."""
    newest_author: str = ""
    chart: bool = False
    note: str = ""
    """Why ``behind`` is not counted (an error reading the branch)."""


@dataclass(frozen=True)
class PinState:
    """What the controller found about a pin: written as ``status.pin``."""

    at: str
    """``spec.pin.at`` of the pin described: a new pin is told apart from an old one by it."""
    sources: tuple[SourceBehind, ...]

    @property
    def commits_behind(self) -> int:
        """Commits behind, over every Git source counted (the metric's value)."""
        return sum(s.behind for s in self.sources if s.behind > 0)

    def to_status(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "revisions": [s.revision for s in self.sources],
            "behind": [s.behind for s in self.sources],
            "branchHeads": [s.head for s in self.sources],
        }


async def observe(engine: Engine, app: Application) -> PinState | None:
    """Each source of the pinned ``app`` against its target as Git (or the chart
    repository) has it now: the refs the last poll or webhook read, so a branch that moved
    is seen at the next reconcile. None when ``app`` is not pinned."""
    pin = app.pin
    if pin is None:
        return None
    found = [
        await _observe_source(engine, app, s, pin.revisions[i]) for i, s in enumerate(app.sources)
    ]
    return PinState(at=pin.at, sources=tuple(found))


async def _observe_source(engine: Engine, app: Application, s: Source, pinned: str) -> SourceBehind:
    target = s.target_revision or "HEAD"
    if s.is_helm_repository:
        return await _observe_chart(engine, app, s, pinned)
    try:
        creds = await engine.credentials_for(app, s.repo_url)
        head = await engine.git.resolve(s.repo_url, target, creds)
        await engine.git.fetch(s.repo_url, creds, [pinned, head])
        path = engine.git.repo_path(s.repo_url)
        n = await asyncio.to_thread(count_between, path, pinned, head)
        info = engine.git.commit_info(s.repo_url, head)
    except TetherError as e:
        return SourceBehind(pinned, target, note=e.message)
    except (pygit2.GitError, OSError, KeyError, ValueError) as e:
        # Only the count is lost: the pin holds, and the message says the distance is unknown.
        return SourceBehind(pinned, target, note=f"{type(e).__name__}: {e}")
    return SourceBehind(pinned, target, head, n, info.author_name)


async def _observe_chart(engine: Engine, app: Application, s: Source, pinned: str) -> SourceBehind:
    from tether.source.helm_repo import resolve_chart

    target = s.target_revision or "*"
    try:
        creds = await engine.credentials_for(app, s.repo_url, chart=True)
        head = await resolve_chart(s, creds, engine.desired.runner)
    except TetherError as e:
        return SourceBehind(pinned, target, chart=True, note=e.message)
    return SourceBehind(pinned, target, head, chart=True)
