"""Writing to Git: a commit that restores paths to an older commit's content, built with pygit2
in the git cache's bare repository (no working tree), pushed without force, and the commits
between two shas that touched given paths.

Nothing here knows about Applications: the caller says which paths, which message and which
branch. Pushing goes through the cache's git runner (the same sandbox, askpass helper and SSH
key handling as fetches), so a push credential never reaches argv or a log.
"""

from __future__ import annotations

import posixpath
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pygit2

from tether.errors import SourceError
from tether.source.commits import CommitSummary, Person, PushRejected
from tether.source.credentials import RepoCredentials, redact
from tether.source.git import GitCache


@dataclass
class RemoteRefs:
    """A remote's branches (name -> sha) and the branch its HEAD points to."""

    heads: dict[str, str] = field(default_factory=dict)
    default_branch: str = ""


def open_repo(cache: GitCache, url: str) -> Any:
    """The cache's bare repository for ``url`` (already fetched)."""
    return pygit2.Repository(str(cache.repo_path(url)))


async def remote_refs(cache: GitCache, url: str, creds: RepoCredentials | None) -> RemoteRefs:
    """Branch heads of the remote as it is now (never a cached answer) and its default branch."""
    out = await cache.git.run(
        ["ls-remote", "--symref"],
        url=url,
        creds=creds,
        action="listing branches of",
        git_dir=cache._ensure_repo(url),
    )
    refs = RemoteRefs()
    for line in out.splitlines():
        if line.startswith("ref: "):
            target, _, name = line[len("ref: ") :].partition("\t")
            if name.strip() == "HEAD":
                refs.default_branch = target.strip().removeprefix("refs/heads/")
            continue
        sha, _, ref = line.partition("\t")
        if ref.startswith("refs/heads/"):
            refs.heads[ref.strip()[len("refs/heads/") :]] = sha.strip()
    return refs


# ---- building the restoring tree and commit ------------------------------------------------


def _clean(path: str) -> str:
    p = posixpath.normpath(path.strip().strip("/")) if path.strip().strip("/") else ""
    return "" if p == "." else p


def _under(path: str, prefix: str) -> bool:
    return prefix == "" or path == prefix or path.startswith(prefix + "/")


def restore_tree(repo: Any, head: str, target: str, paths: Iterable[str]) -> str:
    """The id of ``head``'s tree with each of ``paths`` (files or directories, ``""`` for
    the whole tree) set to its content at ``target``: removed where ``target`` has none."""
    prefixes = sorted({_clean(p) for p in paths})
    index = pygit2.Index()
    index.read_tree(repo.get(head).peel(pygit2.Commit).tree)
    doomed = [e.path for e in index if any(_under(e.path, p) for p in prefixes)]
    for path in doomed:
        index.remove(path)
    target_tree = repo.get(target).peel(pygit2.Commit).tree
    for path, oid, mode in _walk(repo, target_tree, ""):
        if any(_under(path, p) for p in prefixes):
            index.add(pygit2.IndexEntry(path, oid, pygit2.enums.FileMode(mode)))
    return str(index.write_tree(repo))


def _walk(repo: Any, tree: Any, prefix: str) -> Iterable[tuple[str, Any, int]]:
    for entry in tree:
        path = f"{prefix}{entry.name}"
        if entry.filemode == pygit2.GIT_FILEMODE_TREE:
            yield from _walk(repo, repo.get(entry.id), path + "/")
        else:
            yield path, entry.id, entry.filemode


def tree_of(repo: Any, commit: str) -> str:
    return str(repo.get(commit).peel(pygit2.Commit).tree.id)


def write_commit(
    repo: Any, tree: str, parent: str, message: str, author: Person, committer: Person
) -> str:
    """A new commit object (no ref moves) with ``tree`` on top of ``parent``."""
    stamp = int(time.time())
    a = pygit2.Signature(author.name, author.email, stamp, 0)
    c = pygit2.Signature(committer.name, committer.email, stamp, 0)
    oid = repo.create_commit(None, a, c, message, pygit2.Oid(hex=tree), [pygit2.Oid(hex=parent)])
    return str(oid)


# ---- history between two commits -------------------------------------------------------------


def commits_between(
    repo: Any, base: str, head: str, paths: Iterable[str] | None = None, *, limit: int = 200
) -> list[CommitSummary]:
    """Commits reachable from ``head`` and not from ``base``, newest first; with ``paths``
    each says whether it changed something under them, and whether only there."""
    prefixes = None if paths is None else sorted({_clean(p) for p in paths})
    walker = repo.walk(pygit2.Oid(hex=head), pygit2.enums.SortMode.TOPOLOGICAL)
    walker.hide(pygit2.Oid(hex=base))
    out: list[CommitSummary] = []
    for c in walker:
        changed = _changed_paths(repo, c)
        touches, only = True, True
        if prefixes is not None:
            ours = [p for p in changed if any(_under(p, q) for q in prefixes)]
            touches, only = bool(ours), len(ours) == len(changed)
        out.append(_summary(c, changed, only, touches))
        if len(out) >= limit:
            break
    return out


def _changed_paths(repo: Any, c: Any) -> tuple[str, ...]:
    diff = repo.diff(c.parents[0].tree, c.tree) if c.parents else c.tree.diff_to_tree(swap=True)
    found: set[str] = set()
    for d in diff.deltas:
        found.add(d.old_file.path)
        found.add(d.new_file.path)
    return tuple(sorted(found))


def _summary(c: Any, changed: tuple[str, ...], only: bool, touches: bool = True) -> CommitSummary:
    tz = timezone(timedelta(minutes=c.author.offset))
    return CommitSummary(
        sha=str(c.id),
        subject=(c.message.splitlines() or [""])[0].strip(),
        author=Person(c.author.name, c.author.email),
        time=datetime.fromtimestamp(c.author.time, tz),
        paths=changed,
        only_ours=only,
        touches=touches,
    )


def summary_of(repo: Any, sha: str) -> CommitSummary:
    c = repo.get(sha).peel(pygit2.Commit)
    return _summary(c, _changed_paths(repo, c), True)


def is_ancestor(repo: Any, ancestor: str, descendant: str) -> bool:
    if ancestor == descendant:
        return True
    return bool(repo.descendant_of(pygit2.Oid(hex=descendant), pygit2.Oid(hex=ancestor)))


# ---- pushing ---------------------------------------------------------------------------------


async def push(
    cache: GitCache,
    url: str,
    creds: RepoCredentials | None,
    sha: str,
    branch: str,
    *,
    parent: str | None,
) -> None:
    """``git push URL SHA:refs/heads/BRANCH``, never forced. When the push fails and the
    branch no longer stands at ``parent`` (None: it did not exist), it moved meanwhile:
    PushRejected; any other failure is the cache's SourceError."""
    try:
        await cache.git.run(
            ["push"],
            url=url,
            creds=creds,
            action="pushing to",
            git_dir=cache.repo_path(url),
            after_url=[f"{sha}:refs/heads/{branch}"],
        )
    except SourceError as e:
        try:
            now = (await remote_refs(cache, url, creds)).heads.get(branch)
        except SourceError:
            raise e from None
        if now != parent:
            raise PushRejected(
                f"{redact(url)} refused the push to {branch}: the branch moved meanwhile",
                hint="look at what moved and run the rollback again",
            ) from None
        raise


_SHA = re.compile(r"^[0-9a-f]{40}$")


def is_full_sha(text: str) -> bool:
    return bool(_SHA.match(text.strip().lower()))


__all__ = [
    "CommitSummary",
    "Person",
    "PushRejected",
    "RemoteRefs",
    "commits_between",
    "is_ancestor",
    "is_full_sha",
    "open_repo",
    "push",
    "remote_refs",
    "restore_tree",
    "summary_of",
    "tree_of",
    "write_commit",
]
