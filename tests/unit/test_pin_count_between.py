"""Counting first-parent commits between a pinned commit and a branch head in a git repository."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

from tether.errors import SourceError
from tether.source.history import count_between

pytestmark = pytest.mark.unit

SIG = pygit2.Signature("Bob", "bob@example.com")


def commit(repo: pygit2.Repository, name: str, parents: list[str], ref: str | None) -> str:
    blob = repo.create_blob(name.encode())
    tb = repo.TreeBuilder()
    tb.insert(f"{name}.txt", blob, pygit2.enums.FileMode.BLOB)
    oid = repo.create_commit(ref, SIG, SIG, name, tb.write(), parents)
    return str(oid)


def test_commits_since_the_pin_on_the_first_parent_line(tmp_path: Path) -> None:
    repo = pygit2.init_repository(str(tmp_path / "r"), bare=True)
    pinned = commit(repo, "a", [], "refs/heads/main")
    b = commit(repo, "b", [pinned], "refs/heads/main")
    side1 = commit(repo, "s1", [pinned], None)
    side2 = commit(repo, "s2", [side1], None)
    merge = commit(repo, "m", [b, side2], "refs/heads/main")
    path = Path(repo.path)
    assert count_between(path, pinned, pinned) == 0
    assert count_between(path, pinned, b) == 1
    # A merged branch counts once (the merge), as the branch's own log --first-parent.
    assert count_between(path, pinned, merge) == 2
    assert count_between(path, b, merge) == 1


def test_a_commit_missing_from_the_cache_is_named(tmp_path: Path) -> None:
    repo = pygit2.init_repository(str(tmp_path / "r"), bare=True)
    head = commit(repo, "a", [], "refs/heads/main")
    with pytest.raises(SourceError) as e:
        count_between(Path(repo.path), "0" * 40, head)
    assert "commit 000000000000 is not in the git cache" in str(e.value)
