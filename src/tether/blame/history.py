"""Which revisions blame looks at: the revision each source of the app was synced to, and
the first-parent commits of a Git source's tracked branch from there back.

First parents only: a merge commit is one step of the branch (a feature merged in is blamed
on the merge, the commit that brought it to the branch the app tracks), as the controller
saw it arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

import pygit2

from tether.api.application import Application
from tether.errors import SourceError
from tether.source import GitCache
from tether.source.credentials import redact


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    """``Name <email>``."""
    date: str
    """RFC 3339, UTC."""
    message: str
    """The first line."""

    @property
    def short(self) -> str:
        return self.sha[:10]

    def to_dict(self) -> dict[str, str]:
        return {"sha": self.sha, "author": self.author, "date": self.date, "message": self.message}


def synced_revisions(app: Application) -> list[str]:
    """The revision each source (spec order) was last synced to, from the status; ``""``
    for a source the status does not name (never synced)."""
    sync = app.status.get("sync") or {}
    revisions = [str(r) for r in sync.get("revisions") or []]
    if len(revisions) == len(app.sources):
        return revisions
    first = str(sync.get("revision") or "")
    out = [""] * len(app.sources)
    if first:
        index = next((i for i, s in enumerate(app.sources) if s.renders), 0)
        out[index] = first
    return out


def commit_of(git: GitCache, url: str, sha: str) -> Commit:
    info = git.commit_info(url, sha)
    author = f"{info.author_name} <{info.author_email}>" if info.author_email else info.author_name
    date = info.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Commit(info.sha, author, date, (info.message.strip().splitlines() or [""])[0])


def first_parents(git: GitCache, url: str, head: str, depth: int) -> tuple[list[Commit], bool]:
    """``head`` and its first parents, newest first, at most ``depth`` commits, and whether
    the oldest of them is the branch's first commit (it has no parent). ``head`` must be in
    the cache."""
    repo = pygit2.Repository(str(git.repo_path(url)))
    out: list[Commit] = []
    sha: str | None = head
    while sha is not None and len(out) < depth:
        c = repo.get(sha)
        if not isinstance(c, pygit2.Commit):
            raise SourceError(
                f"commit {sha[:12]} of {redact(url)} is not in the cache",
                hint="the history was cut short (a shallow fetch?); fetch the branch again",
            )
        out.append(commit_of(git, url, sha))
        parents = c.parent_ids
        sha = str(parents[0]) if parents else None
    return out, sha is None
