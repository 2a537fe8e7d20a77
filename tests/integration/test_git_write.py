"""Writing to the real git server through the git cache: a commit built in the bare cache
repository is pushed without force; a push that lost a race (the branch moved after tether
read it) is refused as PushRejected and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from devcluster.gitserver import GitServer, RepoHandle

from tether.errors import SourceError
from tether.source import GitCache, RepoCredentials
from tether.source.commits import Person
from tether.source.git_write import (
    PushRejected,
    open_repo,
    push,
    remote_refs,
    restore_tree,
    write_commit,
)

ADA = Person("Ada", "ada@example.com")
TETHER = Person("tether", "tether@tether.dev")


@pytest.fixture
def creds(git_server: GitServer) -> RepoCredentials:
    return RepoCredentials(username="git", password=git_server.token)


async def test_push_builds_on_head_and_a_lost_race_is_refused(
    git_repo: RepoHandle, creds: RepoCredentials, tmp_path: Path
) -> None:
    good = git_repo.commit({"app/a.yaml": "a: 1\n"}, message="good")
    bad = git_repo.commit({"app/a.yaml": "a: 2\n"}, message="bad")
    cache = GitCache(tmp_path / "cache")
    url = git_repo.http_url
    refs = await remote_refs(cache, url, creds)
    assert refs.default_branch == "main" and refs.heads["main"] == bad
    await cache.fetch(url, creds, [good, bad])
    repo = open_repo(cache, url)
    sha = write_commit(repo, restore_tree(repo, bad, good, ["app"]), bad, "undo", ADA, TETHER)

    # Someone else pushes first: our commit no longer fast-forwards.
    other = git_repo.commit({"README.md": "hi\n"}, message="other")
    with pytest.raises(PushRejected, match="moved meanwhile"):
        await push(cache, url, creds, sha, "main", parent=bad)
    assert git_repo.head() == other

    # On a new branch (for review) it goes through and the tracked branch stays.
    await push(cache, url, creds, sha, "rollback/bad", parent=None)
    assert git_repo.head("rollback/bad") == sha and git_repo.head() == other


async def test_push_without_the_right_credentials_names_the_failure(
    git_repo: RepoHandle, creds: RepoCredentials, tmp_path: Path
) -> None:
    head = git_repo.commit({"app/a.yaml": "a: 1\n"}, message="one")
    cache = GitCache(tmp_path / "cache")
    await cache.fetch(git_repo.http_url, creds, head)
    repo = open_repo(cache, git_repo.http_url)
    sha = write_commit(repo, restore_tree(repo, head, head, []), head, "noop", ADA, TETHER)
    wrong = RepoCredentials(username="git", password="not-the-token", origin="Secret x/push")
    with pytest.raises(SourceError) as e:
        await push(cache, git_repo.http_url, wrong, sha, "main", parent=head)
    assert "Secret x/push" in str(e.value) and "not-the-token" not in str(e.value)
    assert git_repo.head() == head
