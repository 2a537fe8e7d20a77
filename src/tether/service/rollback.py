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

from typing import Any

from tether.api.application import Application
from tether.api.source import Source
from tether.engine import Engine
from tether.errors import TetherError
from tether.kube.secrets import decode_secret_data
from tether.service.applications import ApplicationService, refuse_running
from tether.service.results import SyncOutcome, SyncRequest
from tether.service.rollback_plan import (
    BRANCH,
    HISTORY_ID_DIGITS,
    MANUAL,
    NOTHING,
    SYNCED,
    BranchMoved,
    Progress,
    Refused,
    RepoPlan,
    RollbackRequest,
    RollbackResult,
)
from tether.service.rollback_target import (
    app_paths,
    chart_notice,
    entry_revisions,
    history_entry,
    refuse_chart_only,
    refuse_pinned,
    resolve_suffix,
    same_commit,
    steps_back,
    synced_revision,
    tracked_branch,
)
from tether.service.rollback_text import (
    pull_request_url,
    rollback_message,
)
from tether.source import RepoCredentials
from tether.source.commits import CommitSummary, Person
from tether.source.credentials import (
    WRITE_SECRET_SELECTOR,
    entries_from_secrets,
    match_write_credentials,
    normalize_url,
    redact,
)
from tether.source.git_write import (
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

COMMITTER = Person("tether", "tether@tether.dev")


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
        self.git.forget_refs(in_flight=True)  # what was asked before the push predates it

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
            expected = (
                req.expect if (req.expect and n == 0) else synced_revision(app, members[0][0])
            )
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


__all__ = [
    "BranchMoved",
    "Refused",
    "RollbackService",
    "app_paths",
    "steps_back",
]
