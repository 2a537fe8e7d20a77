"""Rollback by Git: write a commit on the tracked branch that restores an app's paths to an
older revision, push it (compare-and-swap against the head the user saw), then sync it.

Because the branch head then *is* the restoring commit, auto-sync stays on and never brings
the bad version back. Which paths: for each Git source, the repository paths its renderer
reads (``Renderer.inputs``) at the revision and at the head, plus the ``$ref`` value files
other sources read from it. Without write access (a repository Secret with ``write: "true"``
or a ``repository-write`` Secret) nothing is changed: the plan carries the git commands and
the message to use by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pygit2

from tether.api.application import Application
from tether.api.source import Source
from tether.engine import Engine
from tether.errors import TetherError
from tether.kube.secrets import decode_secret_data
from tether.render.helm import ref_inputs
from tether.render.registry import detect, renderer_for, repo_path
from tether.service.applications import ApplicationService, refuse_running
from tether.service.identity import Identity
from tether.service.results import SyncOutcome, SyncRequest
from tether.service.rollback_text import (
    manual_commands,
    pull_request_url,
    revert_form,
    rollback_message,
)
from tether.source import RepoCredentials
from tether.source.credentials import (
    WRITE_SECRET_SELECTOR,
    entries_from_secrets,
    match_write_credentials,
    normalize_url,
    redact,
)
from tether.source.git_write import (
    CommitSummary,
    Person,
    PushRejected,
    commits_between,
    open_repo,
    push,
    remote_refs,
    restore_tree,
    summary_of,
    tree_of,
    write_commit,
)
from tether.source.view import GitTreeView
from tether.status import has_several_sources

COMMITTER = Person("tether", "tether@tether.dev")
HISTORY_ID_DIGITS = 6
"""``--to`` of at most this many decimal digits is a history ID, not an abbreviated SHA."""

Progress = Callable[[str], None]


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
        }


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
            "repositories": [r.to_dict() for r in self.repos],
            "notices": self.notices,
            "pullRequests": self.pull_requests,
            "sync": self.outcome.to_dict() if self.outcome else None,
        }


class RollbackService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.git = engine.git

    async def rollback(
        self, req: RollbackRequest, progress: Progress | None = None
    ) -> RollbackResult:
        """Plans, then (with write access) writes, pushes and syncs; see the module doc."""
        say = progress or (lambda _line: None)
        app = await self.engine.get_app(req.name, req.namespace)
        refuse_pinned(app)
        if not req.branch:
            refuse_running(app)
        say("reading Git")
        result = await self.plan(app, req)
        changing = [r for r in result.repos if r.changes]
        if not changing:
            result.state = NOTHING
            return result
        if any(r.write is None for r in changing):
            result.state = MANUAL
            return result
        for r in changing:
            r.new_sha = write_commit(
                open_repo(self.git, r.url),
                r.tree,
                r.head,
                r.message,
                Person(req.author.name, req.author.email),
                COMMITTER,
            )
        await self._push_all(changing, req, say)
        if req.branch:
            result.state = BRANCH
            result.pull_requests = [
                u for r in changing if (u := pull_request_url(r.url, req.branch, r.branch))
            ]
            return result
        result.outcome = await self._sync(app, changing, req, say)
        result.state = SYNCED
        return result

    async def _push_all(self, repos: list[RepoPlan], req: RollbackRequest, say: Progress) -> None:
        for i, r in enumerate(repos):
            target_branch = req.branch or r.branch
            parent: str | None = r.head
            if req.branch:
                parent = (await remote_refs(self.git, r.url, r.write)).heads.get(req.branch)
            say(f"pushing {r.new_sha[:10]} to {target_branch} of {redact(r.url)}")
            try:
                await push(self.git, r.url, r.write, r.new_sha, target_branch, parent=parent)
            except TetherError as e:
                if not isinstance(e, PushRejected) and not req.branch:
                    e.hint = (
                        f"{e.hint}; if {target_branch} is protected, propose the rollback with "
                        "--branch NAME and merge it"
                    ).lstrip("; ")
                done = [f"{p.new_sha[:10]} to {p.pushed_to} of {redact(p.url)}" for p in repos[:i]]
                if done:
                    e.hint = f"{e.hint}; already pushed: {', '.join(done)}".lstrip("; ")
                raise
            r.pushed_to = target_branch
        self.git.forget_refs()

    async def _sync(
        self, app: Application, repos: list[RepoPlan], req: RollbackRequest, say: Progress
    ) -> SyncOutcome:
        first = repos[0]
        # The sync's revision replaces the first source's targetRevision only; the others
        # resolve their branch, whose head is now the restoring commit.
        revision = first.new_sha if 0 in first.sources else ""
        return await ApplicationService(self.engine).sync(
            SyncRequest(req.name, req.namespace, revision=revision, prune=req.prune),
            timeout=req.timeout,
            progress=say,
            trigger="rollback",
            initiated_by=str(req.author),
            prune_by_policy=True,
        )

    # ---- planning --------------------------------------------------------------------------
    async def plan(self, app: Application, req: RollbackRequest) -> RollbackResult:
        """What the rollback would write, per repository; refuses (raises) when it cannot."""
        where = f"{app.namespace}/{app.name}"
        result = RollbackResult(state="", app=where, repos=[], author=req.author)
        git_sources = [(i, s) for i, s in enumerate(app.sources) if not s.is_helm_repository]
        charts = [s for s in app.sources if s.is_helm_repository]
        if not git_sources:
            raise refuse_chart_only(app, charts)
        targets = await self._targets(app, req, result.notices)
        for s in charts:
            result.notices.append(chart_notice(app, s))
        groups = await self._groups(app, git_sources)
        writes = await self._write_entries(app)
        for n, ((url, branch), (members, head)) in enumerate(groups.items()):
            target = next((targets[i] for i, _ in members if targets.get(i)), "")
            if not target:
                continue
            expected = req.expect if (req.expect and n == 0) else _synced(app, members[0][0])
            creds = await self.engine.credentials_for(app, url)
            plan = await self._repo_plan(
                app, url, branch, members, head, target, expected or head, creds, req
            )
            plan.write = match_write_credentials(url, writes)
            result.repos.append(plan)
        return result

    async def _targets(
        self, app: Application, req: RollbackRequest, notices: list[str]
    ) -> dict[int, str]:
        """Per source index, the revision to restore (a commit-ish, resolved later)."""
        to = req.to.strip()
        if to and not (to.isdigit() and len(to) <= HISTORY_ID_DIGITS):
            first = next(s for s in app.sources if not s.is_helm_repository)
            creds = await self.engine.credentials_for(app, first.repo_url)
            sha = await self._commitish(first.repo_url, to, creds)
            same = normalize_url(first.repo_url)
            out = {
                i: sha
                for i, s in enumerate(app.sources)
                if not s.is_helm_repository and normalize_url(s.repo_url) == same
            }
            others = len([s for s in app.sources if not s.is_helm_repository]) - len(out)
            if others:
                notices.append(
                    f"{to} names a commit of {redact(first.repo_url)}; {others} source(s) in "
                    "other repositories stay as they are (use a history ID to roll them all back)"
                )
            return out
        if req.entry is not None:
            return dict(enumerate(entry_revisions(app, req.entry)))
        entry = history_entry(app, int(to)) if to else steps_back(app, req.steps)
        return dict(enumerate(entry_revisions(app, entry)))

    async def _commitish(self, url: str, text: str, creds: RepoCredentials | None) -> str:
        """A branch, tag or SHA, optionally followed by ``~N`` / ``^`` (``abc123~1``)."""
        cut = min((i for i in (text.find("~"), text.find("^")) if i > 0), default=len(text))
        sha = await self.git.resolve(url, text[:cut], creds)
        if cut == len(text):
            return sha
        await self.git.fetch(url, creds, sha)
        return resolve_suffix(open_repo(self.git, url), sha, text[cut:], url)

    async def _groups(
        self, app: Application, git_sources: list[tuple[int, Source]]
    ) -> dict[tuple[str, str], tuple[list[tuple[int, Source]], str]]:
        """Git sources grouped by (repository, branch), with each branch's head now."""
        groups: dict[tuple[str, str], tuple[list[tuple[int, Source]], str]] = {}
        refs_of: dict[str, Any] = {}
        for i, s in git_sources:
            key_url = normalize_url(s.repo_url)
            if key_url not in refs_of:
                creds = await self.engine.credentials_for(app, s.repo_url)
                self.git.forget_refs(s.repo_url)
                refs_of[key_url] = await remote_refs(self.git, s.repo_url, creds)
            refs = refs_of[key_url]
            branch = tracked_branch(app, s, refs.heads, refs.default_branch)
            found = groups.get((s.repo_url, branch))
            if found is None:
                groups[(s.repo_url, branch)] = ([(i, s)], refs.heads[branch])
            else:
                found[0].append((i, s))
        return groups

    async def _write_entries(self, app: Application) -> list[tuple[str, RepoCredentials]]:
        ns = self.engine.desired.credentials_namespace or app.namespace
        secrets, _ = await self.engine.kube.list(
            "v1", "Secret", ns, label_selector=WRITE_SECRET_SELECTOR
        )
        return entries_from_secrets((s, decode_secret_data(s)) for s in secrets)

    async def _repo_plan(
        self,
        app: Application,
        url: str,
        branch: str,
        members: list[tuple[int, Source]],
        head: str,
        target_rev: str,
        expected: str,
        creds: RepoCredentials | None,
        req: RollbackRequest,
    ) -> RepoPlan:
        target = await self.git.resolve(url, target_rev, creds)
        await self.git.fetch(url, creds, [head, target])
        repo = open_repo(self.git, url)
        if not same_commit(expected, head):
            await self._refuse_moved(app, url, branch, expected, head, creds)
        at_target = GitTreeView(repo, target)
        at_head = GitTreeView(repo, head)
        paths = sorted(
            set(app_paths(app, members, at_target)) | set(app_paths(app, members, at_head))
        )
        tree = restore_tree(repo, head, target, paths)
        between = commits_between(repo, target, head, paths)
        where = f"{app.namespace}/{app.name}"
        message = rollback_message(
            where, summary_of(repo, target), between, paths, first_line=req.message
        )
        return RepoPlan(
            url=url,
            branch=branch,
            sources=[i for i, _ in members],
            head=head,
            target=summary_of(repo, target),
            paths=paths,
            between=between,
            message=message,
            tree=tree,
            changes=tree != tree_of(repo, head),
            creds=creds,
            write=None,
            paths_at_head=[p for p in paths if p == "" or at_head.exists(p)],
            paths_at_target=[p for p in paths if p == "" or at_target.exists(p)],
        )

    async def _refuse_moved(
        self,
        app: Application,
        url: str,
        branch: str,
        expected: str,
        head: str,
        creds: RepoCredentials | None,
    ) -> None:
        moved: list[CommitSummary] = []
        try:
            await self.git.fetch(url, creds, expected)
            moved = commits_between(open_repo(self.git, url), expected, head)
        except TetherError:
            pass  # the expected commit is gone (a force-push): say so without a list
        lines = [f"  {c.short} {c.subject} ({c.author}, {c.time:%Y-%m-%d %H:%M})" for c in moved]
        listed = "\n".join(lines) if lines else f"  (commit {expected[:10]} is not in the branch)"
        raise BranchMoved(
            f"{branch} of {redact(url)} moved since {expected[:10]} (now at {head[:10]}); "
            f"nothing was pushed. What moved:\n{listed}",
            moved,
            hint=f"look at the new commits; to roll back anyway, run again with "
            f"--expect {head[:12]}, or wait until {app.name} is synced to it",
        )


# ---- what an app reads, where it stands, and refusals ------------------------------------------


def app_paths(app: Application, members: list[tuple[int, Source]], view: GitTreeView) -> list[str]:
    """The repository paths the app's sources in this repository read at ``view``: each
    rendering source's inputs (its path when they cannot be known), and the ``$ref`` value
    files any source of the app reads from a ``ref`` source here."""
    out: list[str] = []
    for _, s in members:
        if s.renders and not s.is_helm_repository:
            path = repo_path(s.path)
            found = renderer_for(detect(view, s, path)).inputs(view, s, path)
            out += [path] if found is None else found
        if s.ref:
            for other in app.sources:
                out += ref_inputs(other).get(s.ref, [])
    return sorted(set(out))


def same_commit(given: str, sha: str) -> bool:
    """``given`` (a full SHA, or at least 7 hex digits of one) names ``sha``."""
    given = given.strip().lower()
    return given == sha or (len(given) >= 7 and sha.startswith(given))


def resolve_suffix(repo: Any, sha: str, suffix: str, url: str) -> str:
    try:
        return str(repo.revparse_single(sha + suffix).peel(pygit2.Commit).id)
    except (KeyError, ValueError, pygit2.GitError) as e:
        raise Refused(
            f"{sha[:10]}{suffix} names no commit in {redact(url)}",
            hint="the history may be shallower than that; pass a commit SHA with --to",
        ) from e


def tracked_branch(app: Application, s: Source, heads: dict[str, str], default: str) -> str:
    rev = s.target_revision.strip()
    if rev in ("", "HEAD"):
        if default in heads:
            return default
        raise Refused(
            f"{redact(s.repo_url)} has no default branch to write to",
            hint="set the source's targetRevision to a branch",
        )
    name = rev.removeprefix("refs/heads/")
    if name in heads:
        return name
    raise Refused(
        f"{app.namespace}/{app.name} tracks {rev!r} of {redact(s.repo_url)}, which is not a "
        "branch: a rollback writes a commit on the tracked branch",
        hint=f"point targetRevision at an older tag or commit instead, or hold the app "
        f"with 'tether app pin {app.name} REVISION'",
    )


def refuse_pinned(app: Application) -> None:
    pin = (app.obj.get("spec") or {}).get("pin")
    if pin:
        by = pin.get("by") if isinstance(pin, dict) else ""
        raise Refused(
            f"{app.namespace}/{app.name} is pinned"
            + (f" by {by}" if by else "")
            + ": a rollback would not be deployed while the pin holds",
            hint=f"unpin it first with 'tether app unpin {app.name}', then roll back",
        )


def chart_notice(app: Application, s: Source) -> str:
    return (
        f"chart {s.chart} from {redact(s.repo_url)} is not in Git: its version "
        f"({s.target_revision}) lives in the Application; to change it, edit "
        f"spec.source(s).targetRevision, or hold the app with 'tether app pin {app.name}'"
    )


def refuse_chart_only(app: Application, charts: list[Source]) -> Refused:
    versions = ", ".join(f"{s.chart} {s.target_revision}" for s in charts)
    return Refused(
        f"{app.namespace}/{app.name} has no Git source to write: its chart ({versions}) comes "
        "from a Helm repository, and its version lives in the Application's targetRevision",
        hint=f"set targetRevision to the version to go back to (kubectl edit application "
        f"{app.name}), or hold it now with 'tether app pin {app.name} VERSION'",
    )


def _synced(app: Application, index: int) -> str:
    sync = app.status.get("sync") or {}
    if has_several_sources(app):
        revisions = sync.get("revisions") or []
        return str(revisions[index]) if index < len(revisions) else ""
    return str(sync.get("revision") or "") if index == 0 else ""


def entry_revisions(app: Application, entry: dict[str, Any]) -> list[str]:
    """Per source, the revision a history entry deployed."""
    if entry.get("revisions"):
        return [str(r) for r in entry["revisions"]]
    return [str(entry.get("revision") or "")]


def history_entry(app: Application, ident: int) -> dict[str, Any]:
    history = app.status.get("history") or []
    for entry in history:
        if entry.get("id") == ident:
            return dict(entry)
    ids = ", ".join(str(e.get("id")) for e in history) or "none"
    raise Refused(
        f"{app.namespace}/{app.name} has no history entry {ident} (status keeps: {ids})",
        hint=f"see 'tether app history {app.name}' and pass the commit with --to SHA",
    )


def steps_back(app: Application, steps: int) -> dict[str, Any]:
    """The ``steps``-th previous distinct revision that deployed successfully, counting
    back from the one the status shows as synced."""
    if steps < 1:
        raise Refused(f"--steps {steps}: must be 1 or more", hint="use --steps 1 for the last one")
    sync = app.status.get("sync") or {}
    current = tuple(sync.get("revisions") or [sync.get("revision") or ""])
    seen = [current]
    for entry in app.status.get("history") or []:
        key = tuple(entry_revisions(app, entry))
        if entry.get("result", "Succeeded") != "Succeeded" or key in seen:
            continue
        seen.append(key)
        if len(seen) - 1 == steps:
            return dict(entry)
    raise Refused(
        f"{app.namespace}/{app.name} has {len(seen) - 1} earlier deployed revision(s) in its "
        f"status history; --steps {steps} goes further back",
        hint=f"see 'tether app history {app.name}' and pass the commit with --to SHA",
    )


__all__ = [
    "BranchMoved",
    "Refused",
    "RepoPlan",
    "RollbackRequest",
    "RollbackResult",
    "RollbackService",
    "app_paths",
    "steps_back",
]
