"""What a rollback plans and what it did, as data: the request, one ``RepoPlan`` per
repository (the restoring commit, the commits it rolls back, the git commands for doing it by
hand) and the ``RollbackResult``, each with the document the API answers and read back from
it. It loads neither Git nor the engine, so ``tether --server ... app rollback`` prints the
server's answer without them; ``tether.service.rollback`` does the work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tether.errors import TetherError
from tether.service.documents import outcome_of_document
from tether.service.identity import Identity, requester
from tether.service.results import SyncOutcome
from tether.service.rollback_text import manual_commands, revert_form
from tether.source.commits import CommitSummary, Person
from tether.source.credentials import RepoCredentials, redact

HISTORY_ID_DIGITS = 6
"""``--to`` of at most this many decimal digits is a history ID, not an abbreviated SHA."""

Progress = Callable[[str], None]
"""Told each step of a rollback as it happens (a line to print)."""


class Refused(TetherError):
    """The rollback was not done, for a reason a person must act on (pin, branch, source)."""


class BranchMoved(Refused):
    """The branch head is not the one the user saw: nothing was pushed."""

    def __init__(self, message: str, moved: list[CommitSummary], *, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.moved = moved


@dataclass
class RollbackRequest:
    name: str
    namespace: str
    to: str = ""
    """A commit-ish or a history ID; "" means ``steps`` back."""
    steps: int = 1
    message: str = ""
    """Replaces the first line of the message."""
    branch: str = ""
    """Push to this branch instead (for a pull request) and do not sync."""
    expect: str = ""
    """The head the user saw; default: the revision the status shows as synced."""
    author: Identity = field(default_factory=lambda: Identity("tether", "tether@tether.dev"))
    timeout: float = 120.0
    entry: dict[str, Any] | None = None
    """The history entry ``to`` names when it came from the audit trail (``revision``, and
    ``revisions`` for several sources); None: a history ID is looked up in the status."""
    prune: bool = False
    """Prune objects the restored revision no longer has even when the app's policy does
    not (default: as ``syncPolicy.automated.prune`` says)."""


@dataclass
class RepoPlan:
    """One commit on one branch of one repository (several sources may share it)."""

    url: str
    branch: str
    sources: list[int]
    head: str
    target: CommitSummary
    paths: list[str]
    between: list[CommitSummary]
    message: str
    tree: str
    changes: bool
    creds: RepoCredentials | None
    write: RepoCredentials | None
    paths_at_head: list[str] = field(default_factory=list)
    paths_at_target: list[str] = field(default_factory=list)
    new_sha: str = ""
    pushed_to: str = ""

    @property
    def rolled_back(self) -> list[CommitSummary]:
        return [c for c in self.between if c.touches]

    def commands(self, author: Identity, push_branch: str = "") -> str:
        return manual_commands(
            self.url,
            self.branch,
            self.target.sha,
            self.paths_at_head,
            self.paths_at_target,
            self.message,
            str(author),
            push_branch=push_branch,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "repoURL": redact(self.url),
            "branch": self.branch,
            "head": self.head,
            "target": self.target.sha,
            "paths": self.paths,
            "rolledBack": [
                {"sha": c.sha, "subject": c.subject, "author": str(c.author)}
                for c in self.rolled_back
            ],
            "revertForm": revert_form(self.between),
            "message": self.message,
            "commit": self.new_sha,
            "pushedTo": self.pushed_to,
            "sources": self.sources,
            "changes": self.changes,
            "targetCommit": _commit_dict(self.target),
            "between": [_commit_dict(c) for c in self.between],
            "pathsAtHead": self.paths_at_head,
            "pathsAtTarget": self.paths_at_target,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RepoPlan:
        """The plan ``to_dict`` described (URL redacted, no credentials, no tree): what
        printing a result needs, as ``tether --server`` reads the API's answer."""
        target = d.get("targetCommit")
        return cls(
            url=str(d.get("repoURL") or ""),
            branch=str(d.get("branch") or ""),
            sources=[int(i) for i in d.get("sources") or []],
            head=str(d.get("head") or ""),
            target=_commit_of(target if isinstance(target, dict) else {"sha": d.get("target")}),
            paths=[str(p) for p in d.get("paths") or []],
            between=[_commit_of(c) for c in d.get("between") or [] if isinstance(c, dict)],
            message=str(d.get("message") or ""),
            tree="",
            changes=bool(d.get("changes", True)),
            creds=None,
            write=None,
            paths_at_head=[str(p) for p in d.get("pathsAtHead") or []],
            paths_at_target=[str(p) for p in d.get("pathsAtTarget") or []],
            new_sha=str(d.get("commit") or ""),
            pushed_to=str(d.get("pushedTo") or ""),
        )


def _commit_dict(c: CommitSummary) -> dict[str, Any]:
    return {
        "sha": c.sha,
        "subject": c.subject,
        "author": str(c.author),
        "time": c.time.isoformat(),
        "onlyOurs": c.only_ours,
        "touches": c.touches,
    }


def _commit_of(d: dict[str, Any]) -> CommitSummary:
    try:
        when = datetime.fromisoformat(str(d.get("time") or ""))
    except ValueError:
        when = datetime.fromtimestamp(0, UTC)
    return CommitSummary(
        sha=str(d.get("sha") or ""),
        subject=str(d.get("subject") or ""),
        author=_person_of(str(d.get("author") or "")),
        time=when,
        only_ours=bool(d.get("onlyOurs", True)),
        touches=bool(d.get("touches", True)),
    )


def _person_of(text: str) -> Person:
    """``Name <email>`` (as ``str(Person)`` writes it) read back."""
    name, sep, rest = text.partition(" <")
    if sep and rest.endswith(">"):
        return Person(name, rest[:-1])
    return Person(text, "")


NOTHING, MANUAL, BRANCH, SYNCED = "nothing", "manual", "branch", "synced"


@dataclass
class RollbackResult:
    state: str
    """``nothing`` (already at the revision), ``manual`` (no write access: commands
    printed), ``branch`` (pushed to another branch for review) or ``synced``."""
    app: str
    repos: list[RepoPlan]
    notices: list[str] = field(default_factory=list)
    pull_requests: list[str] = field(default_factory=list)
    outcome: SyncOutcome | None = None
    author: Identity | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "app": self.app,
            "author": str(self.author) if self.author else "",
            "repositories": [{**r.to_dict(), "commands": self._commands(r)} for r in self.repos],
            "notices": self.notices,
            "pullRequests": self.pull_requests,
            "sync": self.outcome.to_dict() if self.outcome else None,
            "syncDetails": _details(self.outcome) if self.outcome else None,
        }

    def _commands(self, r: RepoPlan) -> str:
        """The git commands to run by hand when tether has no write access, else ``""``."""
        if self.state != MANUAL or not r.changes or self.author is None:
            return ""
        return r.commands(self.author)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RollbackResult:
        """The result ``to_dict`` described, as the API answers it: ``tether --server`` prints
        from it exactly what the direct command prints."""
        author = str(d.get("author") or "")
        sync = d.get("sync")
        return cls(
            state=str(d.get("state") or ""),
            app=str(d.get("app") or ""),
            repos=[RepoPlan.from_dict(r) for r in d.get("repositories") or []],
            notices=[str(n) for n in d.get("notices") or []],
            pull_requests=[str(u) for u in d.get("pullRequests") or []],
            outcome=_outcome_of(sync, d.get("syncDetails")) if isinstance(sync, dict) else None,
            author=requester(None, author) if author else None,
        )


def _details(o: SyncOutcome) -> dict[str, Any]:
    """What the sync document (``SyncOutcome.to_dict``) leaves out and printing shows: who
    ran it, the health message, whether health was waited for, and the notices."""
    return {
        "runner": o.runner,
        "healthMessage": o.health_message,
        "waitedForHealth": o.waited_for_health,
        "notices": o.notices,
    }


def _outcome_of(sync: dict[str, Any], details: Any) -> SyncOutcome:
    o = outcome_of_document(sync)
    more = details if isinstance(details, dict) else {}
    o.runner = str(more.get("runner") or "")
    o.health_message = str(more.get("healthMessage") or "")
    o.waited_for_health = bool(more.get("waitedForHealth"))
    o.notices = [str(n) for n in more.get("notices") or []]
    return o
