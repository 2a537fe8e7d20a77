"""The local git server really authenticates: HTTP Basic with its token, SSH with its key."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from devcluster.gitserver import GitServer, GitServerError, RepoHandle
from devcluster.procs import pid_alive

from git_fixtures import git_repo, git_server

# Fixtures come from tests/git_fixtures.py; naming them here keeps them visible to pytest
# in this module even where no conftest registers that plugin.
_FIXTURES = (git_server, git_repo)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def git(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The git CLI isolated from this machine's user and system configuration."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "SSH_ASKPASS"))}
    base.update(
        GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", LC_ALL="C"
    )
    r = subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and r.returncode != 0:
        raise AssertionError(f"git {args[0]} failed: {r.stderr}")
    return r


def other_key(tmp_path: Path) -> Path:
    key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def http_status(url: str, password: str | None) -> tuple[int, str]:
    req = urllib.request.Request(url)
    if password is not None:
        req.add_header(
            "Authorization", "Basic " + base64.b64encode(f"me:{password}".encode()).decode()
        )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status), ""
    except urllib.error.HTTPError as e:
        return int(e.code), str(e.headers.get("WWW-Authenticate", ""))


def test_clone_over_http_with_token(
    git_server: GitServer, git_repo: RepoHandle, tmp_path: Path
) -> None:
    sha = git_repo.commit({"app/config.yaml": "replicas: 2\n"}, message="first")
    git("clone", "-q", git_server.http_url_with_token(git_repo.name), str(tmp_path / "c"))
    assert (tmp_path / "c" / "app" / "config.yaml").read_text() == "replicas: 2\n"
    assert git("rev-parse", "HEAD", cwd=tmp_path / "c").stdout.strip() == sha


def test_http_without_or_with_wrong_token_is_refused(
    git_server: GitServer, git_repo: RepoHandle, tmp_path: Path
) -> None:
    git_repo.commit({"a": "1"})
    refs = f"{git_repo.http_url}/info/refs?service=git-upload-pack"
    assert http_status(refs, None) == (401, 'Basic realm="tether-git"')
    assert http_status(refs, "wrong")[0] == 401
    assert http_status(refs, git_server.token)[0] == 200

    no_creds = git("clone", "-q", git_repo.http_url, str(tmp_path / "a"), check=False)
    assert no_creds.returncode != 0
    assert "could not read Username" in no_creds.stderr
    wrong = git_repo.http_url.replace("http://", "http://me:wrong@")
    bad = git("clone", "-q", wrong, str(tmp_path / "b"), check=False)
    assert bad.returncode != 0
    assert "Authentication failed" in bad.stderr
    assert not (tmp_path / "b" / "a").exists()


def test_clone_over_ssh_with_key(
    git_server: GitServer, git_repo: RepoHandle, tmp_path: Path
) -> None:
    sha = git_repo.commit({"deploy/app.yaml": "kind: ConfigMap\n"})
    assert git_repo.ssh_url.startswith(f"ssh://{git_server.username}@127.0.0.1:")
    git(
        "clone",
        "-q",
        git_repo.ssh_url,
        str(tmp_path / "c"),
        env={"GIT_SSH_COMMAND": git_server.ssh_command()},
    )
    assert (tmp_path / "c" / "deploy" / "app.yaml").read_text() == "kind: ConfigMap\n"
    assert git("rev-parse", "HEAD", cwd=tmp_path / "c").stdout.strip() == sha


def test_ssh_with_another_key_is_refused(
    git_server: GitServer, git_repo: RepoHandle, tmp_path: Path
) -> None:
    git_repo.commit({"a": "1"})
    r = git(
        "clone",
        "-q",
        git_repo.ssh_url,
        str(tmp_path / "c"),
        check=False,
        env={"GIT_SSH_COMMAND": git_server.ssh_command(key=other_key(tmp_path))},
    )
    assert r.returncode != 0
    assert "Permission denied (publickey)" in r.stderr


def test_ssh_key_can_only_run_git(git_server: GitServer) -> None:
    target = f"{git_server.username}@127.0.0.1"
    cmd = [*git_server.ssh_command().split(), "-p", str(git_server.ssh_port), target, "id"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode != 0
    assert "uid=" not in r.stdout
    assert "unrecognized command" in r.stderr


def test_push_over_http(git_server: GitServer, git_repo: RepoHandle, tmp_path: Path) -> None:
    git_repo.commit({"README": "hello\n"})
    wc = tmp_path / "c"
    git("clone", "-q", git_server.http_url_with_token(git_repo.name), str(wc))
    (wc / "README").write_text("changed\n")
    # Larger than git's http.postBuffer (1 MiB), so the push body is sent chunked.
    (wc / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    git("add", "-A", cwd=wc)
    git("commit", "-q", "-m", "over http", cwd=wc)
    git("push", "-q", "origin", "HEAD:main", cwd=wc)
    local = git("rev-parse", "HEAD", cwd=wc).stdout.strip()
    assert git_repo.head("main") == local


def test_fetch_with_gzipped_negotiation(
    git_server: GitServer, git_repo: RepoHandle, tmp_path: Path
) -> None:
    git_repo.commit({"a": "1"})
    wc = tmp_path / "c"
    git("clone", "-q", git_server.http_url_with_token(git_repo.name), str(wc))
    # Dated after everything on the server, so negotiation offers them first, round after
    # round, and the request grows past the size at which git compresses it.
    future = int(time.time()) + 86400
    for i in range(120):
        stamp = f"{future + i * 60} +0000"
        git(
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            f"local {i}",
            cwd=wc,
            env={"GIT_COMMITTER_DATE": stamp, "GIT_AUTHOR_DATE": stamp},
        )
    new = git_repo.commit({"a": "2"})
    # Many local commits unknown to the server make git gzip its negotiation request.
    r = git("fetch", "origin", cwd=wc, env={"GIT_TRACE_CURL": "1", "GIT_TRACE_CURL_NO_DATA": "1"})
    assert "Content-Encoding: gzip" in r.stderr
    assert git("rev-parse", "origin/main", cwd=wc).stdout.strip() == new


def test_repo_handle_helpers(git_server: GitServer, git_repo: RepoHandle) -> None:
    first = git_repo.commit(
        {"a.txt": "a", "dir/b.txt": b"\x00b"}, message="first", author=("Ada", "ada@example.com")
    )
    second = git_repo.commit({"a.txt": None}, symlinks={"dir/link": "b.txt"}, message="second")
    dev = git_repo.create_branch("dev", first)
    feature = git_repo.commit({"f": "1"}, branch="feature")
    annotated = git_repo.tag("v1", first, message="release 1")
    light = git_repo.tag("light", second)
    refs = dict(
        reversed(line.split("\t"))
        for line in git(
            "ls-remote", git_server.http_url_with_token(git_repo.name)
        ).stdout.splitlines()
    )
    assert refs["refs/heads/main"] == second == git_repo.head()
    assert refs["refs/heads/dev"] == dev == first
    assert refs["refs/heads/feature"] == feature
    assert git_repo.rev_parse("feature~1") == second
    assert refs["refs/tags/v1^{}"] == annotated == first
    assert refs["refs/tags/v1"] != first  # the tag object
    assert refs["refs/tags/light"] == light == second
    tree = git("--git-dir", str(git_repo.path), "ls-tree", "-r", second).stdout
    assert "a.txt" not in tree
    assert "120000 blob" in tree and "dir/link" in tree


def test_up_is_idempotent_and_down_stops_its_pids(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    root = tmp_path / "srv"

    def cli(cmd: str) -> str:
        r = subprocess.run(
            [sys.executable, "-m", "devcluster.gitserver", cmd, "--root", str(root)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        return r.stdout

    first = json.loads(cli("up"))
    second = json.loads(cli("up"))
    assert first["pids"] == second["pids"]
    assert first["http_url"] == second["http_url"]
    token = (root / "http-token").read_text().strip()
    assert token not in json.dumps(first)
    pids = list(first["pids"].values())
    assert all(pid_alive(p) for p in pids)
    assert sorted(int((root / f"{n}.pid").read_text()) for n in ("http", "sshd")) == sorted(pids)
    server = GitServer(root)
    assert server.running()
    repo = server.create_repo("r")
    sha = repo.commit({"x": "1"})
    assert git("ls-remote", server.http_url_with_token("r"), "main").stdout.startswith(sha)
    cli("down")
    assert not any(pid_alive(p) for p in pids)
    assert not (root / "http.pid").exists() and not (root / "sshd.pid").exists()


def test_missing_sshd_is_reported(tmp_path: Path) -> None:
    with pytest.raises(
        GitServerError,
        match=r"sshd not found at /nonexistent/sshd: "
        r"apt-get install openssh-server",
    ):
        GitServer(tmp_path, sshd=Path("/nonexistent/sshd")).start()


def test_port_in_use_names_the_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = GitServer(tmp_path / "srv", ssh_port=port)
        with pytest.raises(GitServerError) as err:
            server.start()
    message = str(err.value)
    assert str(tmp_path / "srv" / "logs" / "sshd.log") in message
    assert "already in use" in message
    # The HTTP side it had already started is stopped again.
    assert server.state == {}
    assert not (tmp_path / "srv" / "http.pid").exists()
    assert processes_mentioning(tmp_path / "srv") == []


def processes_mentioning(root: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(root).encode() in cmdline and pid_alive(int(proc.name)):
            found.append(int(proc.name))
    return found
