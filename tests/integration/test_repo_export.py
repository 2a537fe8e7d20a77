"""GitCache.view and GitCache.export on commits fetched from the real git server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pygit2
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from devcluster.gitserver import GitServer, RepoHandle

from git_fixtures import git_repo, git_server
from tether.errors import SourceError
from tether.source import REASON_REVISION, REASON_TIMEOUT, GitCache, RepoCredentials

_FIXTURES = (git_server, git_repo)

FM = pygit2.enums.FileMode
SUBMODULE = "0123456789abcdef0123456789abcdef01234567"


def _tree(repo: Any, layout: dict[str, Any]) -> pygit2.Oid:
    tb = repo.TreeBuilder()
    for name, item in sorted(layout.items()):
        if isinstance(item, dict):
            tb.insert(name, _tree(repo, item), FM.TREE)
        elif item == "submodule":
            tb.insert(name, pygit2.Oid(hex=SUBMODULE), FM.COMMIT)
        elif isinstance(item, tuple) and item[0] == "link":
            tb.insert(name, repo.create_blob(item[1].encode()), FM.LINK)
        elif isinstance(item, tuple):
            tb.insert(name, repo.create_blob(item[1]), item[0])
        else:
            tb.insert(name, repo.create_blob(item), FM.BLOB)
    oid: pygit2.Oid = tb.write()
    return oid


def push_layout(handle: RepoHandle, layout: dict[str, Any], message: str = "c") -> str:
    """A commit on ``main`` of the server's repository with exactly ``layout`` (exec bits and
    submodule entries included, which a working-tree commit cannot express portably)."""
    repo = pygit2.Repository(str(handle.path))
    sig = pygit2.Signature("t", "t@example.com", 1_700_000_000, 0)
    main = "refs/heads/main"
    parents = [repo.references[main].target] if main in repo.references else []
    sha = repo.create_commit("refs/heads/main", sig, sig, message, _tree(repo, layout), parents)
    return str(sha)


LAYOUT: dict[str, Any] = {
    "charts": {
        "web": {
            "Chart.yaml": b"apiVersion: v2\nname: web\nversion: 0.1.0\n",
            "templates": {"deploy.yaml": b"kind: Deployment\n"},
            "hooks": {"pre.sh": (FM.BLOB_EXECUTABLE, b"#!/bin/sh\nexit 0\n")},
        },
    },
    "envs": {
        "prod": {"values.yaml": b"replicas: 3\n"},
        "staging": ("link", "prod"),
        "escape.yaml": ("link", "../../../etc/passwd"),
    },
    "third_party": "submodule",
}


@pytest.fixture
def creds(git_server: GitServer) -> RepoCredentials:
    return RepoCredentials(username="tether", password=git_server.token)


@pytest.fixture
def cache(tmp_path: Path) -> GitCache:
    return GitCache(tmp_path / "cache", timeout=30)


async def _fetched(cache: GitCache, handle: RepoHandle, creds: RepoCredentials) -> str:
    sha = await cache.resolve(handle.http_url, "main", creds)
    await cache.fetch(handle.http_url, creds, sha)
    return sha


async def test_view_reads_a_fetched_commit(
    cache: GitCache, git_repo: RepoHandle, creds: RepoCredentials
) -> None:
    pushed = push_layout(git_repo, LAYOUT)
    sha = await _fetched(cache, git_repo, creds)
    assert sha == pushed
    view = cache.view(git_repo.http_url, sha)
    assert view.commit == sha
    assert view.listdir("") == ["charts", "envs"]
    assert view.listdir("charts/web") == ["Chart.yaml", "hooks", "templates"]
    assert view.read("charts/web/templates/deploy.yaml") == b"kind: Deployment\n"
    assert view.is_dir("envs/prod") and not view.is_dir("envs/staging")
    assert view.readlink("envs/staging") == "prod"
    assert view.resolve("envs/staging/values.yaml") == "envs/prod/values.yaml"
    server_tree = pygit2.Repository(str(git_repo.path))[sha].peel(pygit2.Commit).tree
    assert view.object_id("charts") == str(server_tree["charts"].id)
    # A short SHA of a fetched commit names it too.
    assert cache.view(git_repo.http_url, sha[:10]).commit == sha


async def test_export_writes_the_tree_as_stored(
    cache: GitCache, git_repo: RepoHandle, creds: RepoCredentials, tmp_path: Path
) -> None:
    push_layout(git_repo, LAYOUT)
    sha = await _fetched(cache, git_repo, creds)
    dest = tmp_path / "work" / "checkout"
    await cache.export(git_repo.http_url, sha, dest)
    assert (dest / "charts/web/Chart.yaml").read_bytes().startswith(b"apiVersion: v2")
    assert (dest / "charts/web/templates/deploy.yaml").read_bytes() == b"kind: Deployment\n"
    assert os.stat(dest / "charts/web/hooks/pre.sh").st_mode & 0o111 == 0o111
    assert os.stat(dest / "envs/prod/values.yaml").st_mode & 0o111 == 0
    assert os.readlink(dest / "envs/staging") == "prod"
    assert os.readlink(dest / "envs/escape.yaml") == "../../../etc/passwd"
    assert not (dest / "third_party").exists()
    assert sorted(os.listdir(dest)) == ["charts", "envs"]


async def test_export_of_a_commit_not_fetched_names_it(
    cache: GitCache, git_repo: RepoHandle, creds: RepoCredentials, tmp_path: Path
) -> None:
    push_layout(git_repo, {"a.yaml": b"a\n"})
    await _fetched(cache, git_repo, creds)
    with pytest.raises(SourceError) as err:
        await cache.export(git_repo.http_url, "f" * 40, tmp_path / "out")
    assert err.value.reason == REASON_REVISION
    assert f"commit {'f' * 40} of {git_repo.http_url} is not in the cache" in str(err.value)


async def test_export_into_a_used_directory_is_refused(
    cache: GitCache, git_repo: RepoHandle, creds: RepoCredentials, tmp_path: Path
) -> None:
    push_layout(git_repo, {"a.yaml": b"a\n"})
    sha = await _fetched(cache, git_repo, creds)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "left-over").touch()
    with pytest.raises(SourceError, match="not an empty directory"):
        await cache.export(git_repo.http_url, sha, tmp_path / "out")


async def test_exports_run_beside_each_other_and_a_fetch(
    cache: GitCache, git_repo: RepoHandle, creds: RepoCredentials, tmp_path: Path
) -> None:
    files = {f"apps/app{i:03d}/cm.yaml": f"n: {i}\n".encode() for i in range(300)}
    layout: dict[str, Any] = {}
    for path, data in files.items():
        _, app, name = path.split("/")
        layout.setdefault("apps", {}).setdefault(app, {})[name] = data
    first = push_layout(git_repo, layout)
    await _fetched(cache, git_repo, creds)
    second = push_layout(git_repo, {**layout, "new.yaml": b"new\n"})
    url = git_repo.http_url
    exports = [cache.export(url, first, tmp_path / f"out{i}") for i in range(6)]
    await asyncio.gather(cache.fetch(url, creds, second), *exports)
    for i in range(6):
        out = tmp_path / f"out{i}"
        assert sorted(str(p.relative_to(out)) for p in out.rglob("*.yaml")) == sorted(files)
    await cache.export(url, second, tmp_path / "second")
    assert (tmp_path / "second" / "new.yaml").read_bytes() == b"new\n"


@pytest.fixture
def hold_lock(cache: GitCache) -> Iterator[Any]:
    """Holds a repository's cache lock from another process (util-linux ``flock``)."""
    procs: list[subprocess.Popen[str]] = []

    def hold(url: str, mode: str) -> None:
        lock = cache.root / f"{cache.repo_path(url).name}.lock"
        proc = subprocess.Popen(
            ["flock", mode, str(lock), "-c", "echo held; read _"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"

    yield hold
    for proc in procs:
        proc.communicate("")


async def test_exports_share_the_lock_that_fetches_take_alone(
    cache: GitCache, git_repo: RepoHandle, creds: RepoCredentials, tmp_path: Path, hold_lock: Any
) -> None:
    first = push_layout(git_repo, {"a.yaml": b"a\n"})
    url = git_repo.http_url
    await _fetched(cache, git_repo, creds)
    # Another process reads the repository (shared): an export still runs.
    hold_lock(url, "-s")
    await cache.export(url, first, tmp_path / "out")
    assert (tmp_path / "out" / "a.yaml").read_bytes() == b"a\n"
    # ...but a fetch waits for it, until its own timeout.
    second = push_layout(git_repo, {"b.yaml": b"b\n"})
    short = GitCache(cache.root, timeout=1)
    with pytest.raises(SourceError) as err:
        await short.fetch(url, creds, second)
    assert err.value.reason == REASON_TIMEOUT
    assert f"waiting for another process fetching or exporting {url}" in str(err.value)


async def test_an_export_waits_for_a_fetch_in_another_process(
    cache: GitCache, git_repo: RepoHandle, creds: RepoCredentials, tmp_path: Path, hold_lock: Any
) -> None:
    sha = push_layout(git_repo, {"a.yaml": b"a\n"})
    await _fetched(cache, git_repo, creds)
    hold_lock(git_repo.http_url, "-x")
    short = GitCache(cache.root, timeout=1)
    with pytest.raises(SourceError) as err:
        await short.export(git_repo.http_url, sha, tmp_path / "out")
    assert err.value.reason == REASON_TIMEOUT
    assert f"waiting for another process fetching {git_repo.http_url}" in str(err.value)
