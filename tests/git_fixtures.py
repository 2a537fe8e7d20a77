"""Git server fixtures: one real server (HTTP + SSH) per session, a fresh repository per test."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from devcluster.gitserver import GitServer, RepoHandle  # noqa: E402

# pytest makes a separate session fixture of every registration of git_server (the conftest
# plugin, each test module that imports it); they all share this one server.
_shared: list[GitServer] = []
_users = [0]


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    if not _shared:
        _shared.append(GitServer(tmp_path_factory.mktemp("gitserver")).start())
    _users[0] += 1
    try:
        yield _shared[0]
    finally:
        _users[0] -= 1
        if _users[0] == 0:
            _shared.pop().stop()


@pytest.fixture
def git_repo(git_server: GitServer, request: pytest.FixtureRequest) -> RepoHandle:
    """An empty repository (default branch ``main``) named after the test."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-.")[:40] or "repo"
    return git_server.create_repo(f"{stem}-{uuid.uuid4().hex[:8]}")
