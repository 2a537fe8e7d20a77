"""An ``app`` fixture whose Application lives in a namespace of its own (the ``home``
fixture: fresh, with its own repository credentials), so nothing it reads is shared with
other tests, or with other test sessions against the same cluster."""

from __future__ import annotations

import uuid

import pytest
from devcluster.gitserver import RepoHandle
from test_engine import AppFixture, engine

from cluster_helpers import home
from tether.engine import Engine

__all__ = ["app", "engine", "home"]
"""``app`` and the fixtures it needs: a test module imports all three by name (pytest finds
fixtures among a module's names)."""


@pytest.fixture
def app(engine: Engine, home: str, git_repo: RepoHandle, namespace: str) -> AppFixture:
    """An Application in ``home`` (deleted with it) deploying to ``namespace``."""
    return AppFixture(engine, git_repo, f"app-{uuid.uuid4().hex[:8]}", namespace, home)
