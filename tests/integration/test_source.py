"""Resolving revisions and reading trees against a real git server, over HTTP and SSH."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from devcluster.gitserver import GitServer, RepoHandle

from git_fixtures import git_repo, git_server
from tether.errors import SourceError
from tether.source import (
    REASON_AUTH,
    REASON_HOST_KEY,
    REASON_NOT_FOUND,
    REASON_PATH,
    REASON_REVISION,
    REASON_TIMEOUT,
    REASON_UNREACHABLE,
    GitCache,
    RepoCredentials,
    from_secret_data,
    match_credentials,
    normalize_url,
    redact,
    secret_entry,
)
from tether.source.view import GitTreeView

# Fixtures come from tests/git_fixtures.py; naming them here keeps them visible to pytest
# in this module even where no conftest registers that plugin.
_FIXTURES = (git_server, git_repo)

integration = pytest.mark.integration
unit = pytest.mark.unit


@pytest.fixture
def cache(tmp_path: Path) -> GitCache:
    return GitCache(tmp_path / "cache", timeout=30)


def http_creds(server: GitServer) -> RepoCredentials:
    return RepoCredentials(username="tether", password=server.token)


def ssh_creds(server: GitServer) -> RepoCredentials:
    return RepoCredentials(
        ssh_private_key=server.ssh_key_path.read_text(),
        known_hosts=server.known_hosts_path.read_text(),
    )


@pytest.fixture(params=["http", "ssh"])
def remote(
    request: pytest.FixtureRequest, git_server: GitServer, git_repo: RepoHandle
) -> tuple[str, RepoCredentials]:
    if request.param == "http":
        return git_repo.http_url, http_creds(git_server)
    return git_repo.ssh_url, ssh_creds(git_server)


def new_key(tmp_path: Path) -> Path:
    key = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_no_secret(err: BaseException, *secrets: str) -> None:
    shown = f"{err} {err!r} {getattr(err, 'hint', '')} {getattr(err, 'message', '')}"
    for secret in secrets:
        assert secret not in shown


# ---- resolving ------------------------------------------------------------------------


@integration
async def test_resolve_every_kind_of_revision(
    cache: GitCache, git_repo: RepoHandle, remote: tuple[str, RepoCredentials]
) -> None:
    url, creds = remote
    first = git_repo.commit({"app/cm.yaml": "v: 1\n"}, message="first")
    second = git_repo.commit({"app/cm.yaml": "v: 2\n"}, message="second")
    git_repo.tag("v1.0", first, message="release 1.0")
    git_repo.tag("light", second)
    dev = git_repo.commit({"dev.txt": "d"}, branch="dev")
    third = git_repo.commit({"app/cm.yaml": "v: 3\n"}, message="third")

    assert await cache.resolve(url, "", creds) == third
    assert await cache.resolve(url, "HEAD", creds) == third
    assert await cache.resolve(url, "main", creds) == third
    assert await cache.resolve(url, "dev", creds) == dev
    assert await cache.resolve(url, "refs/heads/dev", creds) == dev
    assert await cache.resolve(url, "v1.0", creds) == first  # annotated: peeled to the commit
    assert await cache.resolve(url, "light", creds) == second
    assert await cache.resolve(url, first, creds) == first
    assert await cache.resolve(url, first.upper(), creds) == first
    assert await cache.resolve(url, second[:7], creds) == second  # not a tip
    assert await cache.resolve(url, third[:10], creds) == third


@integration
async def test_head_follows_the_default_branch(
    cache: GitCache, git_server: GitServer, git_repo: RepoHandle
) -> None:
    git_repo.commit({"a": "1"})
    other = git_repo.commit({"b": "1"}, branch="trunk")
    git_repo.set_default_branch("trunk")
    assert await cache.resolve(git_repo.http_url, "HEAD", http_creds(git_server)) == other


@integration
async def test_unknown_revision_names_branches_and_tags(
    cache: GitCache, git_repo: RepoHandle, remote: tuple[str, RepoCredentials]
) -> None:
    url, creds = remote
    git_repo.commit({"a": "1"})
    git_repo.commit({"a": "2"}, branch="staging")
    git_repo.tag("v2", "main")
    with pytest.raises(SourceError) as err:
        await cache.resolve(url, "prod", creds)
    assert err.value.reason == REASON_REVISION
    assert f"revision 'prod' not found in {url}" in str(err.value)
    assert "branches: main, staging; tags: v2" in str(err.value)
    assert err.value.hint
    with pytest.raises(SourceError) as err:
        await cache.resolve(url, "0" * 40, creds)
    assert err.value.reason == REASON_REVISION


@integration
async def test_empty_repository_has_no_head(
    cache: GitCache, git_server: GitServer, git_repo: RepoHandle
) -> None:
    with pytest.raises(SourceError) as err:
        await cache.resolve(git_repo.http_url, "HEAD", http_creds(git_server))
    assert err.value.reason == REASON_REVISION
    assert "no default branch" in str(err.value)


# ---- failures -----------------------------------------------------------------------------


@integration
async def test_wrong_token_is_an_authentication_error_without_the_token(
    cache: GitCache, git_server: GitServer, git_repo: RepoHandle
) -> None:
    git_repo.commit({"a": "1"})
    wrong = "wrong-token-" + os.urandom(8).hex()
    for creds in (RepoCredentials(username="tether", password=wrong), RepoCredentials()):
        with pytest.raises(SourceError) as err:
            await cache.resolve(git_repo.http_url, "main", creds)
        assert err.value.reason == REASON_AUTH
        assert str(err.value).startswith(f"authentication to {git_repo.http_url} failed: ")
        assert_no_secret(err.value, wrong, git_server.token)


@integration
async def test_token_in_the_url_is_used_but_never_shown(
    cache: GitCache, git_server: GitServer, git_repo: RepoHandle
) -> None:
    sha = git_repo.commit({"a": "1"})
    url = git_server.http_url_with_token(git_repo.name)
    assert await cache.resolve(url, "main") == sha
    wrong = url.replace(git_server.token, "not-the-token-1234")
    with pytest.raises(SourceError) as err:
        await cache.resolve(wrong, "main")
    assert err.value.reason == REASON_AUTH
    assert_no_secret(err.value, "not-the-token-1234", git_server.token)


@integration
async def test_another_ssh_key_is_an_authentication_error(
    cache: GitCache, git_server: GitServer, git_repo: RepoHandle, tmp_path: Path
) -> None:
    git_repo.commit({"a": "1"})
    key = new_key(tmp_path).read_text()
    creds = RepoCredentials(
        ssh_private_key=key, known_hosts=git_server.known_hosts_path.read_text()
    )
    with pytest.raises(SourceError) as err:
        await cache.resolve(git_repo.ssh_url, "main", creds)
    assert err.value.reason == REASON_AUTH
    assert "authentication to" in str(err.value)
    assert "Permission denied (publickey)" in err.value.hint
    assert_no_secret(err.value, *RepoCredentials(ssh_private_key=key).secrets)


@integration
async def test_wrong_host_key_is_refused(
    cache: GitCache, git_server: GitServer, git_repo: RepoHandle, tmp_path: Path
) -> None:
    git_repo.commit({"a": "1"})
    impostor = new_key(tmp_path).with_suffix(".pub").read_text().split()
    known = f"[127.0.0.1]:{git_server.ssh_port} {impostor[0]} {impostor[1]}\n"
    creds = RepoCredentials(ssh_private_key=git_server.ssh_key_path.read_text(), known_hosts=known)
    with pytest.raises(SourceError) as err:
        await cache.resolve(git_repo.ssh_url, "main", creds)
    assert err.value.reason == REASON_HOST_KEY
    assert "host key verification failed" in str(err.value)

    # No known hosts at all is refused too, unless the credentials opt out of checking.
    unknown = RepoCredentials(
        ssh_private_key=git_server.ssh_key_path.read_text(), known_hosts="# nothing\n"
    )
    with pytest.raises(SourceError) as err:
        await cache.resolve(git_repo.ssh_url, "main", unknown)
    assert err.value.reason == REASON_HOST_KEY
    insecure = RepoCredentials(
        ssh_private_key=unknown.ssh_private_key, insecure_ignore_host_key=True
    )
    assert await cache.resolve(git_repo.ssh_url, "main", insecure) == git_repo.head()


@integration
@pytest.mark.parametrize("scheme", ["http", "ssh"])
async def test_unreachable_server_fails_fast(cache: GitCache, scheme: str) -> None:
    port = closed_port()
    url = (
        f"http://127.0.0.1:{port}/x.git"
        if scheme == "http"
        else f"ssh://git@127.0.0.1:{port}/x.git"
    )
    with pytest.raises(SourceError) as err:
        await cache.resolve(url, "main", RepoCredentials(insecure_ignore_host_key=True))
    # Refused at once, not waited on: a wait would end in the cache's timeout (REASON_TIMEOUT).
    assert err.value.reason == REASON_UNREACHABLE
    assert str(err.value).startswith(f"cannot reach {url}: ")
    assert "check the URL and network" in str(err.value)


@integration
async def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/x.git"
        cache = GitCache(tmp_path / "cache", timeout=1.5)
        with pytest.raises(SourceError) as err:
            await cache.resolve(url, "main")
    # The configured timeout is what ended it (the message names it), not a later one.
    assert err.value.reason == REASON_TIMEOUT
    assert str(err.value).startswith(f"timed out after 1.5s listing refs of {url}")


@integration
async def test_missing_repository(
    cache: GitCache, git_server: GitServer, remote: tuple[str, RepoCredentials]
) -> None:
    url, creds = remote
    missing = url.replace(".git", "-missing.git")
    with pytest.raises(SourceError) as err:
        await cache.resolve(missing, "main", creds)
    assert err.value.reason == REASON_NOT_FOUND
    assert f"repository {missing} not found" in str(err.value)


# ---- fetching and reading ---------------------------------------------------------------


@integration
async def test_read_tree_at_an_old_commit(
    cache: GitCache, git_repo: RepoHandle, remote: tuple[str, RepoCredentials]
) -> None:
    url, creds = remote
    old = git_repo.commit(
        {
            "apps/web/deploy.yaml": "replicas: 1\n",
            "apps/web/svc.yaml": "port: 80\n",
            "apps/db/sts.yaml": "db\n",
            "README.md": "hi\n",
        },
        message="old",
    )
    new = await cache.resolve(url, "main", creds)
    await cache.fetch(url, creds, new)
    git_repo.commit(
        {
            "apps/web/deploy.yaml": "replicas: 5\n",
            "apps/web/svc.yaml": None,
            "apps/web/ingress.yaml": "host: x\n",
        },
        message="new",
    )
    latest = git_repo.commit({"apps/web/extra.yaml": "x: 1\n"}, message="newer")

    assert await cache.resolve(url, old, creds) == old
    tree = cache.read_tree(url, old, "apps/web")
    assert tree.commit == old
    assert tree.files == {
        "apps/web/deploy.yaml": b"replicas: 1\n",
        "apps/web/svc.yaml": b"port: 80\n",
    }
    assert tree.symlinks == {}

    sha = await cache.resolve(url, "main", creds)
    assert sha == latest
    await cache.fetch(url, creds, sha)
    now = cache.read_tree(url, sha, "/apps/web/")
    assert now.files == {
        "apps/web/deploy.yaml": b"replicas: 5\n",
        "apps/web/ingress.yaml": b"host: x\n",
        "apps/web/extra.yaml": b"x: 1\n",
    }
    # The old tree is still readable after newer commits arrived in the cache.
    assert cache.read_tree(url, old, "apps/web").files == tree.files
    assert set(cache.read_tree(url, old, "").files) == {
        "apps/web/deploy.yaml",
        "apps/web/svc.yaml",
        "apps/db/sts.yaml",
        "README.md",
    }
    assert cache.read_tree(url, old, "README.md").files == {"README.md": b"hi\n"}


@integration
async def test_symlinks_are_kept_as_links_and_their_targets_read(
    cache: GitCache, git_server: GitServer, git_repo: RepoHandle
) -> None:
    url, creds = git_repo.http_url, http_creds(git_server)
    sha = git_repo.commit(
        {
            "app/base.yaml": "a: 1\n",
            "shared/common.yaml": "c: 1\n",
            "other/unrelated.yaml": "u: 1\n",
            "app/bin.dat": b"\x00\xff",
        },
        symlinks={"app/link.yaml": "base.yaml", "app/shared": "../shared", "app/out": "../../x"},
    )
    await cache.fetch(url, creds, sha)
    tree = cache.read_tree(url, sha, "app")
    # What a link inside the repository points at is read too, even outside the path, so
    # the renderer can follow it; nothing else outside the path is read.
    assert tree.files == {
        "app/base.yaml": b"a: 1\n",
        "app/bin.dat": b"\x00\xff",
        "shared/common.yaml": b"c: 1\n",
    }
    assert tree.symlinks == {
        "app/link.yaml": "base.yaml",
        "app/shared": "../shared",
        "app/out": "../../x",
    }


@integration
async def test_read_errors(cache: GitCache, git_server: GitServer, git_repo: RepoHandle) -> None:
    url, creds = git_repo.http_url, http_creds(git_server)
    sha = git_repo.commit({"app/a.yaml": "a\n"})
    with pytest.raises(SourceError) as err:
        cache.read_tree(url, sha, "app")
    assert err.value.reason == REASON_REVISION  # not fetched yet
    await cache.fetch(url, creds, "main")
    assert cache.read_tree(url, sha, "app").files == {"app/a.yaml": b"a\n"}
    with pytest.raises(SourceError) as err:
        cache.read_tree(url, sha, "nope")
    assert err.value.reason == REASON_PATH
    assert "path 'nope' not found" in str(err.value)
    with pytest.raises(SourceError) as err:
        cache.read_tree(url, sha, "../etc")
    assert err.value.reason == REASON_PATH


@integration
async def test_commit_info(cache: GitCache, git_server: GitServer, git_repo: RepoHandle) -> None:
    url, creds = git_repo.http_url, http_creds(git_server)
    sha = git_repo.commit({"a": "1"}, message="Deploy web\n\nbody", author=("Ada", "ada@ex.com"))
    await cache.fetch(url, creds, sha)
    info = cache.commit_info(url, sha)
    assert (info.sha, info.author_name, info.author_email) == (sha, "Ada", "ada@ex.com")
    assert info.message.startswith("Deploy web\n\nbody")
    assert info.time.tzinfo is not None
    assert abs(time.time() - info.time.timestamp()) < 300


@integration
async def test_concurrent_resolve_and_fetch_fetch_once(
    cache: GitCache, git_repo: RepoHandle, remote: tuple[str, RepoCredentials]
) -> None:
    url, creds = remote
    expected = git_repo.commit({"app/a.yaml": "a\n"})

    async def sync_once() -> str:
        sha = await cache.resolve(url, "main", creds)
        await cache.fetch(url, creds, sha)
        return cache.read_tree(url, sha, "app").commit

    results = await asyncio.gather(*(sync_once() for _ in range(10)))
    assert results == [expected] * 10
    assert cache.fetch_count == 1


@integration
async def test_fetch_skips_the_network_for_a_cached_commit(
    cache: GitCache, git_server: GitServer, git_repo: RepoHandle
) -> None:
    url, creds = git_repo.http_url, http_creds(git_server)
    sha = git_repo.commit({"a": "1"})
    await cache.fetch(url, creds, sha)
    assert cache.fetch_count == 1
    await cache.fetch(url, creds, sha)
    assert await cache.resolve(url, sha, creds) == sha
    assert cache.fetch_count == 1
    # A second cache on the same directory shares the objects.
    other = GitCache(cache.root)
    await other.fetch(url, creds, sha)
    assert other.fetch_count == 0
    assert cache.repo_path(url + "/") == cache.repo_path(url.replace("http", "HTTP", 1)[:-4])


@integration
async def test_views_of_a_commit_are_shared_within_a_thread(
    cache: GitCache, git_server: GitServer, git_repo: RepoHandle
) -> None:
    url, creds = git_repo.http_url, http_creds(git_server)
    first = git_repo.commit({"apps/a/cm.yaml": "a: 1\n", "apps/b/cm.yaml": "b: 1\n"})
    second = git_repo.commit({"apps/a/cm.yaml": "a: 2\n"})
    await cache.fetch(url, creds, second)
    view = cache.view(url, first)
    # The apps of one repository read the same commit through one view (its parsed trees).
    assert cache.view(url, first.upper()) is view
    assert view.read("apps/a/cm.yaml") == b"a: 1\n"
    assert cache.view(url, second) is not view
    assert cache.view(url, second).read("apps/a/cm.yaml") == b"a: 2\n"
    # Another thread has its own repository handle, so its own view.
    elsewhere = await asyncio.to_thread(cache.view, url, first)
    assert elsewhere is not view and elsewhere.repo is not view.repo
    assert elsewhere.read("apps/b/cm.yaml") == b"b: 1\n"
    # A cache repository removed and fetched again is read through a new handle and view.
    shutil.rmtree(cache.repo_path(url))
    await cache.fetch(url, creds, second)
    again = cache.view(url, first)
    assert again is not view and again.read("apps/a/cm.yaml") == b"a: 1\n"


async def test_a_read_runs_in_a_worker_thread_over_that_threads_view(
    cache: GitCache, git_server: GitServer, git_repo: RepoHandle
) -> None:
    url, creds = git_repo.http_url, http_creds(git_server)
    sha = git_repo.commit({"apps/a/cm.yaml": "a: 1\n"})
    await cache.fetch(url, creds, sha)

    def read(view: GitTreeView) -> tuple[bytes | None, int, bool]:
        return view.read("apps/a/cm.yaml"), threading.get_ident(), view is cache.view(url, sha)

    data, thread, own = await cache.read(url, sha, read)
    assert data == b"a: 1\n"
    assert thread != threading.get_ident() and own
    with pytest.raises(SourceError, match="not in the cache"):
        await cache.read(url, "0" * 40, read)


def record_invocations(bin_dir: Path, log_dir: Path, *tools: str) -> None:
    """Puts a wrapper for each tool first on PATH: it appends its argv to log_dir/argv and its
    environment to log_dir/env.<pid> (both NUL-separated), then runs the real tool. Every
    invocation is seen, however short-lived."""
    bin_dir.mkdir()
    log_dir.mkdir()
    for tool in tools:
        real = shutil.which(tool)
        assert real, f"{tool} is not installed"
        wrapper = bin_dir / tool
        wrapper.write_text(
            "#!/bin/sh\n"
            f"{{ printf '%s\\0' {tool} \"$@\"; printf '\\n'; }} >> '{log_dir}/argv'\n"
            f"env -0 > '{log_dir}/env.'$$\n"
            f"exec '{real}' \"$@\"\n"
        )
        wrapper.chmod(0o755)


@integration
async def test_secrets_never_reach_process_arguments(
    cache: GitCache,
    git_server: GitServer,
    git_repo: RepoHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sha = git_repo.commit({"a": "1"})
    ssh = ssh_creds(git_server)
    secrets = [git_server.token, *ssh.secrets]
    log = tmp_path / "invocations"
    record_invocations(tmp_path / "bin", log, "git", "ssh")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    before = set(Path(tempfile.gettempdir()).glob("tether-ssh-*"))

    for _ in range(3):
        assert await cache.resolve(git_repo.http_url, "main", http_creds(git_server)) == sha
        assert await cache.resolve(git_repo.ssh_url, "main", ssh) == sha
    await cache.fetch(git_repo.http_url, http_creds(git_server), sha)
    await cache.fetch(git_repo.ssh_url, ssh, sha)

    calls = [line.split("\0")[:-1] for line in (log / "argv").read_text().splitlines()]
    # Every git run and every ssh connection was recorded: the check below saw them all.
    assert len([c for c in calls if c[0] == "git"]) >= 2
    assert len([c for c in calls if c[0] == "ssh"]) >= 2
    assert [c for c in calls if any(secret in arg for arg in c for secret in secrets)] == []
    # In the environment, only the askpass helper's variable carries the HTTP password.
    for env_file in log.glob("env.*"):
        env = dict(e.split("=", 1) for e in env_file.read_text().split("\0") if "=" in e)
        holders = {k for k, v in env.items() for secret in secrets if secret in v}
        assert holders <= {"TETHER_GIT_PASSWORD"}, (env_file.name, holders)
    # The key and known_hosts files live only as long as the command that needed them.
    assert set(Path(tempfile.gettempdir()).glob("tether-ssh-*")) == before


# ---- credentials --------------------------------------------------------------------------


@unit
def test_credentials_from_an_argo_style_secret() -> None:
    url, creds = secret_entry(
        {
            "url": "https://git.example.com/org",
            "username": "bot",
            "password": "s3cret",
            "insecureIgnoreHostKey": "true",
        }
    )
    assert url == "https://git.example.com/org"
    assert (creds.username, creds.password, creds.insecure_ignore_host_key) == (
        "bot",
        "s3cret",
        True,
    )
    token = from_secret_data({"token": "ghp_abc"})
    assert (token.username, token.password) == ("x-access-token", "ghp_abc")
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\r\nb3BlbnNzaC1rZXktdjEAAAAA\r\n"
        "-----END OPENSSH PRIVATE KEY-----"
    )
    ssh = from_secret_data({"sshPrivateKey": key, "knownHosts": "h ssh-ed25519 AAAA\n"})
    assert ssh.ssh_private_key.endswith("-----END OPENSSH PRIVATE KEY-----\n")
    assert "\r" not in ssh.ssh_private_key
    assert ssh.known_hosts == "h ssh-ed25519 AAAA"
    assert not ssh.insecure_ignore_host_key
    for shown in (repr(creds), str(creds), repr(ssh), repr(token)):
        assert "s3cret" not in shown and "ghp_abc" not in shown and "b3Blbn" not in shown
    assert "password='***'" in repr(creds)


@unit
def test_match_credentials_prefers_the_longest_prefix() -> None:
    org = RepoCredentials(username="org")
    team = RepoCredentials(username="team")
    ssh = RepoCredentials(username="ssh")
    secrets = [
        ("https://git.example.com/org", org),
        ("https://GIT.example.com/org/team/", team),
        ("git@git.example.com:org", ssh),
    ]
    assert match_credentials("https://git.example.com/org/team/app.git", secrets) is team
    assert match_credentials("https://git.example.com/org/other", secrets) is org
    assert match_credentials("https://git.example.com/org.git", secrets) is org
    assert match_credentials("https://git.example.com/organisation/x", secrets) is None
    assert match_credentials("ssh://git@git.example.com:22/org/app.git", secrets) is ssh
    assert match_credentials("https://elsewhere.example.com/org/app", secrets) is None


@unit
def test_normalize_and_redact() -> None:
    assert normalize_url("HTTPS://User:pw@Git.Example.com:443/Org/App.git/") == (
        "https://git.example.com/Org/App"
    )
    assert normalize_url("git@host:org/app.git") == "ssh://git@host/org/app"
    assert normalize_url("http://host:8080/a") == "http://host:8080/a"
    assert redact("fatal: https://u:tok@h/x https://tok2@h/y and tok3", ["tok3"]) == (
        "fatal: https://***@h/x https://***@h/y and ***"
    )
