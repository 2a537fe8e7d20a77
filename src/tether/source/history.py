"""Counting commits in the git cache: how far a branch has moved past an older commit."""

from __future__ import annotations

from pathlib import Path

import pygit2

from tether.errors import SourceError


def count_between(repo_path: Path, old: str, new: str) -> int:
    """Commits on ``new``'s first-parent line that ``old`` does not contain: 0 when they
    are the same commit, N after N commits (a merge counts once, as on the branch).

    Both commits must be in the repository (fetched); a commit that is not raises
    ``SourceError``."""
    if old == new:
        return 0
    repo = pygit2.Repository(str(repo_path))
    for sha in (old, new):
        try:
            found = repo.get(sha)
        except ValueError:  # not a commit id at all
            found = None
        if found is None:
            raise SourceError(
                f"commit {sha[:12]} is not in the git cache at {repo_path}",
                hint="fetch it first (a refresh of the app does)",
            )
    walker = repo.walk(new, pygit2.enums.SortMode.TOPOLOGICAL)
    walker.simplify_first_parent()
    walker.hide(old)
    return sum(1 for _ in walker)
