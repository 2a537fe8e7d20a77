"""A commit as a rollback names it: its sha, subject, author, time and which of the paths
asked about it changed; and a push the remote refused. Plain data, read by
``tether.source.git_write`` from a repository and by ``tether --server`` from the API's answer,
so it loads no Git library.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tether.errors import TetherError


@dataclass(frozen=True)
class Person:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.email else self.name


@dataclass(frozen=True)
class CommitSummary:
    """One commit between two shas, as a message or a refusal names it."""

    sha: str
    subject: str
    author: Person
    time: datetime
    paths: tuple[str, ...] = ()
    """The files it changed (against its first parent)."""
    only_ours: bool = True
    """Every file it changed is under the paths asked about."""
    touches: bool = True
    """It changed something under the paths asked about."""

    @property
    def short(self) -> str:
        return self.sha[:10]


class PushRejected(TetherError):
    """The remote refused the push because the branch moved (not a fast-forward)."""
