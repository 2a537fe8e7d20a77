"""The Git cache's ls-remote answers against a real repository: an answer asked for before
``forget_refs(in_flight=True)`` (what a webhook announcing a push, or a hard refresh, does)
goes to its own caller only, and whoever waited for it asks Git again and sees the push; a
plain ``forget_refs`` (a poll's) lets waiting callers share the answer, as one attempt."""

from __future__ import annotations

import asyncio
from pathlib import Path

from devcluster.gitserver import RepoHandle

from tether.source import GitCache
from tether.source.credentials import RepoCredentials

MAIN = "refs/heads/main"


class HeldGitCache(GitCache):
    """A Git cache whose first ls-remote, once Git has answered, is held until released: an
    answer still in flight while something else happens (real git, real repository)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, refs_ttl=3600.0)
        self.answered = asyncio.Event()
        self.release = asyncio.Event()

    async def _ls_remote(self, url: str, creds: RepoCredentials | None) -> dict[str, str]:
        refs = await super()._ls_remote(url, creds)
        if not self.answered.is_set():
            self.answered.set()
            await self.release.wait()
        return refs


async def test_an_answer_asked_for_before_forget_refs_is_not_handed_to_later_callers(
    git_repo: RepoHandle, tmp_path: Path
) -> None:
    before = git_repo.commit({"app/a.yaml": "a: 1\n"}, message="before")
    url = f"file://{git_repo.path}"
    git = HeldGitCache(tmp_path / "git")
    polling = asyncio.ensure_future(git.ls_remote(url))  # a poll, asked before the push
    await git.answered.wait()
    pushed = git_repo.commit({"app/a.yaml": "a: 2\n"}, message="pushed")
    git.forget_refs(url, in_flight=True)  # the webhook announcing the push
    resolving = asyncio.ensure_future(git.ls_remote(url))  # waits for the poll's answer
    await asyncio.sleep(0)  # a turn of the loop: it reaches the lock the poll holds
    git.release.set()
    assert (await polling)[MAIN] == before
    assert (await resolving)[MAIN] == pushed
    assert (await git.ls_remote(url))[MAIN] == pushed  # the fresh answer is the one kept
    assert git.ls_remote_count == 2


async def test_a_polls_forget_lets_callers_waiting_for_an_answer_share_it(
    git_repo: RepoHandle, tmp_path: Path
) -> None:
    git_repo.commit({"app/a.yaml": "a: 1\n"}, message="one")
    url = f"file://{git_repo.path}"
    git = HeldGitCache(tmp_path / "git")
    first = asyncio.ensure_future(git.ls_remote(url))
    await git.answered.wait()
    git.forget_refs(url)  # a poll: cached answers dropped, the one being asked for shared
    second = asyncio.ensure_future(git.ls_remote(url))
    await asyncio.sleep(0)  # a turn of the loop: it reaches the lock the first one holds
    git.release.set()
    assert await first == await second
    assert git.ls_remote_count == 1
