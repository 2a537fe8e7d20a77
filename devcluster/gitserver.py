"""The local git server: bare repositories served over authenticated smart HTTP and SSH.

A developer and test tool, not part of the tether package. It gives tests and the demo a
real remote with real authentication, so the source code path (ls-remote, fetch, SSH host
keys, HTTP 401s) is exercised the way it runs against a hosted forge.

    python -m devcluster.gitserver up   --root DIR   # idempotent; prints the URLs as JSON
    python -m devcluster.gitserver down --root DIR   # stops exactly what `up` started

Layout under ``root``:

    repos/NAME.git        bare repositories (HEAD -> refs/heads/main)
    http-token            the HTTP Basic password (any username is accepted)
    ssh/                  sshd_config, host key, client_key{,.pub}, authorized_keys, known_hosts
    work/NAME             scratch clones used by RepoHandle to make commits
    logs/{http,sshd}.log  component logs
    http.pid, sshd.pid    the PIDs `up` started; `down` signals only these
    server.json           ports, URLs and credential file paths (no secrets)

The HTTP side is ``http.server.ThreadingHTTPServer`` running ``git http-backend`` as CGI,
in its own process so it outlives the process that started it. The SSH side is Debian's
``/usr/sbin/sshd`` with a private config; the client key is forced through ``git-shell``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hmac
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from devcluster.procs import free_port, pid_alive, stop_pid

REPO = Path(__file__).resolve().parent.parent
SSHD = Path("/usr/sbin/sshd")
REALM = "tether-git"
DEFAULT_AUTHOR = ("Tether Test", "test@tether.invalid")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class GitServerError(Exception):
    """A component failed to start or a helper git command failed; names the log to read."""


def _pid_is_ours(pid: int, root: Path) -> bool:
    """Guards against PID reuse: every process we start has ``root`` in its command line."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return pid_alive(pid)
    return str(root).encode() in cmdline


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _git_env() -> dict[str, str]:
    # The developer's own git configuration (signing, hooks, templates) must not leak
    # into the commits tests make.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
    return env


def _git(*args: str, cwd: Path | None = None) -> str:
    r = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=_git_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if r.returncode != 0:
        raise GitServerError(f"git {args[0]} failed (in {cwd}): {r.stderr.strip()[-800:]}")
    return r.stdout.strip()


# ---- the HTTP side (runs in its own process) --------------------------------------------


class _GitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    root: Path
    token: str


class _GitHTTPHandler(BaseHTTPRequestHandler):
    """Basic auth in front of ``git http-backend``; one CGI process per request."""

    server: _GitHTTPServer
    server_version = "tether-git/1"
    # HTTP/1.0 lets the response body end at connection close, so the CGI output can be
    # streamed without knowing its length; git clients handle it fine.
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")

    def _user(self) -> str | None:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(password.encode(), self.server.token.encode()):
            return None
        return user or "git"

    def _reply(self, code: int, text: str, headers: Mapping[str, str] | None = None) -> None:
        body = (text + "\n").encode()
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _serve(self) -> None:
        user = self._user()
        if user is None:
            self._drain_body()
            self._reply(
                401, "authentication required", {"WWW-Authenticate": f'Basic realm="{REALM}"'}
            )
            return
        parts = urllib.parse.urlsplit(self.path)
        path_info = urllib.parse.unquote(parts.path)
        if ".." in path_info.split("/"):
            self._reply(404, "not found")
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.server.root),
            "GIT_CONFIG_NOSYSTEM": "1",
            # Pushing over HTTP is part of what this server is for; safe.directory keeps
            # repositories usable if a test created them as another user.
            "GIT_CONFIG_COUNT": "2",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
            "GIT_CONFIG_KEY_1": "safe.directory",
            "GIT_CONFIG_VALUE_1": "*",
            "GIT_PROJECT_ROOT": str(self.server.root / "repos"),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path_info,
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "REMOTE_USER": user,
            "REMOTE_ADDR": self.client_address[0],
        }
        if proto := self.headers.get("Git-Protocol"):
            env["HTTP_GIT_PROTOCOL"] = proto
        # No CONTENT_LENGTH: the body is de-chunked and inflated here, and http-backend then
        # reads its stdin to EOF.
        proc = subprocess.Popen(
            ["git", "http-backend"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=sys.stderr,
        )
        assert proc.stdin is not None and proc.stdout is not None
        feeder = threading.Thread(target=self._feed, args=(proc.stdin,), daemon=True)
        feeder.start()
        try:
            self._relay(proc.stdout)
        except (BrokenPipeError, ConnectionResetError):
            proc.kill()
        finally:
            feeder.join(timeout=60)
            proc.stdout.close()
            proc.wait()

    def _body(self) -> Iterator[bytes]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size_line = self.rfile.readline()
                if not size_line:
                    return
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                remaining = size
                while remaining:
                    chunk = self.rfile.read(min(remaining, 65536))
                    if not chunk:
                        return
                    remaining -= len(chunk)
                    yield chunk
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 65536))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    def _drain_body(self) -> None:
        for _ in self._body():
            pass

    def _feed(self, stdin: IO[bytes]) -> None:
        gzipped = self.headers.get("Content-Encoding", "").lower() in ("gzip", "x-gzip")
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
        try:
            for chunk in self._body():
                stdin.write(inflater.decompress(chunk) if inflater else chunk)
            if inflater:
                stdin.write(inflater.flush())
        except (BrokenPipeError, ConnectionResetError, zlib.error) as e:
            sys.stderr.write(f"request body for {self.path} not delivered: {e}\n")
        finally:
            with contextlib.suppress(BrokenPipeError):
                stdin.close()

    def _relay(self, out: IO[bytes]) -> None:
        status, reason = 200, "OK"
        headers: list[tuple[str, str]] = []
        while True:
            line = out.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                self._reply(500, "git http-backend produced no response")
                return
            key, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
            if key.lower() == "status":
                code, _, reason = value.strip().partition(" ")
                status = int(code)
            else:
                headers.append((key, value.strip()))
        self.send_response(status, reason or None)
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        shutil.copyfileobj(out, self.wfile, 65536)


def serve_http(root: Path, port: int) -> None:
    """Runs the HTTP side in this process until SIGTERM; writes the bound port to a file."""
    try:
        httpd = _GitHTTPServer(("127.0.0.1", port), _GitHTTPHandler)
    except OSError as e:
        sys.stderr.write(f"cannot listen on 127.0.0.1:{port}: {e.strerror}\n")
        raise SystemExit(1) from e
    httpd.root = root
    httpd.token = (root / "http-token").read_text().strip()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    port_file = root / "http.port"
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(httpd.server_address[1]))
    tmp.replace(port_file)
    sys.stderr.write(f"serving {root / 'repos'} on http://127.0.0.1:{httpd.server_address[1]}/\n")
    sys.stderr.flush()
    with httpd:
        httpd.serve_forever(poll_interval=0.2)


# ---- repositories -------------------------------------------------------------------------


_WORK_LOCKS: dict[Path, threading.Lock] = {}
_WORK_LOCKS_GUARD = threading.Lock()


@dataclass
class RepoHandle:
    """One bare repository on the server plus a scratch clone for making commits.

    Changes go through the scratch clone one at a time, so threads may share a handle.
    """

    server: GitServer
    name: str

    @property
    def _lock(self) -> threading.Lock:
        with _WORK_LOCKS_GUARD:
            return _WORK_LOCKS.setdefault(self._work, threading.Lock())

    @property
    def path(self) -> Path:
        return self.server.repos_dir / f"{self.name}.git"

    @property
    def http_url(self) -> str:
        return self.server.http_url(self.name)

    @property
    def ssh_url(self) -> str:
        return self.server.ssh_url(self.name)

    @property
    def _work(self) -> Path:
        return self.server.root / "work" / self.name

    def _wc(self, *args: str, author: tuple[str, str] = DEFAULT_AUTHOR) -> str:
        name, email = author
        return _git("-c", f"user.name={name}", "-c", f"user.email={email}", *args, cwd=self._work)

    def _ensure_clone(self) -> None:
        if not (self._work / ".git").exists():
            self._work.parent.mkdir(parents=True, exist_ok=True)
            _git("clone", "-q", str(self.path), str(self._work))
        self._wc(
            "fetch",
            "-q",
            "--prune",
            "--force",
            "origin",
            "+refs/heads/*:refs/remotes/origin/*",
            "+refs/tags/*:refs/tags/*",
        )

    def rev_parse(self, rev: str) -> str:
        """The commit ``rev`` names in the bare repository (tags peeled)."""
        return _git("--git-dir", str(self.path), "rev-parse", "--verify", f"{rev}^{{commit}}")

    def head(self, branch: str = "main") -> str:
        return self.rev_parse(f"refs/heads/{branch}")

    def commit(
        self,
        files: Mapping[str, str | bytes | None] | None = None,
        *,
        message: str = "update",
        branch: str = "main",
        author: tuple[str, str] = DEFAULT_AUTHOR,
        delete: tuple[str, ...] | list[str] = (),
        symlinks: Mapping[str, str] | None = None,
        base: str | None = None,
        sign: Sequence[str] = (),
    ) -> str:
        """Commits ``files`` (None deletes) and ``symlinks`` on ``branch``; returns the SHA.

        A branch that does not exist yet starts from ``base`` (default: the repository's
        default branch, or no parent in an empty repository). ``sign``, when given, is the
        git options that choose a signing key (``-c gpg.format=ssh -c user.signingkey=...``):
        the commit is then made with ``commit -S``.
        """
        with self._lock:
            return self._commit(
                files or {}, message, branch, author, delete, symlinks or {}, base, tuple(sign)
            )

    def _commit(
        self,
        files: Mapping[str, str | bytes | None],
        message: str,
        branch: str,
        author: tuple[str, str],
        delete: tuple[str, ...] | list[str],
        symlinks: Mapping[str, str],
        base: str | None,
        sign: tuple[str, ...] = (),
    ) -> str:
        self._ensure_clone()
        remote = f"refs/remotes/origin/{branch}"
        if self._ref_exists(remote):
            self._wc("checkout", "-q", "-f", "-B", branch, remote)
        elif base is not None:
            self._wc("checkout", "-q", "-f", "-B", branch, self.rev_parse(base))
        elif default := self._default_branch_sha():
            self._wc("checkout", "-q", "-f", "-B", branch, default)
        else:
            self._wc("checkout", "-q", "-f", "--orphan", branch)
            self._wc("rm", "-rfq", "--cached", "--ignore-unmatch", ".")
        self._wc("clean", "-fdxq")
        for rel in [*delete, *(p for p, c in files.items() if c is None)]:
            target = self._work / rel
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
        for rel, content in files.items():
            if content is None:
                continue
            target = self._work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink():
                target.unlink()
            target.write_bytes(content.encode() if isinstance(content, str) else content)
        for rel, dest in symlinks.items():
            target = self._work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            target.symlink_to(dest)
        self._wc("add", "-A")
        signing = (*sign, "commit", "-S") if sign else ("commit",)
        self._wc(*signing, "-q", "--allow-empty", "-m", message, author=author)
        self._wc("push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        return self._wc("rev-parse", "HEAD")

    def create_branch(self, name: str, from_ref: str = "main") -> str:
        sha = self.rev_parse(from_ref)
        _git("--git-dir", str(self.path), "update-ref", f"refs/heads/{name}", sha)
        return sha

    def delete_branch(self, name: str) -> None:
        _git("--git-dir", str(self.path), "update-ref", "-d", f"refs/heads/{name}")

    def tag(
        self,
        name: str,
        ref: str = "main",
        message: str | None = None,
        author: tuple[str, str] = DEFAULT_AUTHOR,
    ) -> str:
        """Tags ``ref`` (annotated when ``message`` is given); returns the tagged commit."""
        sha = self.rev_parse(ref)
        with self._lock:
            self._ensure_clone()
            if message is None:
                self._wc("tag", "-f", name, sha)
            else:
                self._wc("tag", "-f", "-a", "-m", message, name, sha, author=author)
            self._wc("push", "-q", "-f", "origin", f"refs/tags/{name}")
        return sha

    def set_default_branch(self, branch: str) -> None:
        _git("--git-dir", str(self.path), "symbolic-ref", "HEAD", f"refs/heads/{branch}")

    def _ref_exists(self, ref: str) -> bool:
        r = subprocess.run(
            ["git", "show-ref", "--verify", "-q", ref],
            cwd=self._work,
            env=_git_env(),
            check=False,
            capture_output=True,
        )
        return r.returncode == 0

    def _default_branch_sha(self) -> str:
        r = subprocess.run(
            ["git", "--git-dir", str(self.path), "rev-parse", "--verify", "-q", "HEAD^{commit}"],
            env=_git_env(),
            check=False,
            capture_output=True,
            text=True,
        )
        return r.stdout.strip() if r.returncode == 0 else ""


# ---- the server -------------------------------------------------------------------------


class GitServer:
    """Starts, reuses and stops the HTTP and SSH sides for one ``root`` directory."""

    def __init__(
        self,
        root: Path,
        *,
        http_port: int = 0,
        ssh_port: int = 0,
        sshd: Path = SSHD,
        start_timeout: float = 15.0,
    ) -> None:
        self.root = Path(root).resolve()
        self._want_http_port = http_port
        self._want_ssh_port = ssh_port
        self._sshd = sshd
        self._start_timeout = start_timeout
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.state: dict[str, Any] = {}
        if self.state_path.exists():
            self.state = json.loads(self.state_path.read_text())

    # ---- paths and credentials -------------------------------------------------------------
    @property
    def repos_dir(self) -> Path:
        return self.root / "repos"

    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def state_path(self) -> Path:
        return self.root / "server.json"

    @property
    def token(self) -> str:
        return (self.root / "http-token").read_text().strip()

    @property
    def ssh_key_path(self) -> Path:
        return self.ssh_dir / "client_key"

    @property
    def known_hosts_path(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def username(self) -> str:
        return pwd.getpwuid(os.getuid()).pw_name

    @property
    def http_port(self) -> int:
        return int(self.state["http_port"])

    @property
    def ssh_port(self) -> int:
        return int(self.state["ssh_port"])

    def http_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.http_port}/{name}.git"

    def http_url_with_token(self, name: str) -> str:
        """The URL with the token embedded. For tests only: it puts the secret in argv."""
        return f"http://git:{self.token}@127.0.0.1:{self.http_port}/{name}.git"

    def ssh_url(self, name: str) -> str:
        return f"ssh://{self.username}@127.0.0.1:{self.ssh_port}{self.repos_dir}/{name}.git"

    def ssh_command(self, key: Path | None = None, known_hosts: Path | None = None) -> str:
        """A GIT_SSH_COMMAND that authenticates with our client key and checks our host key."""
        from shlex import quote

        return (
            f"ssh -F /dev/null -i {quote(str(key or self.ssh_key_path))} "
            f"-o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes "
            f"-o UserKnownHostsFile={quote(str(known_hosts or self.known_hosts_path))} "
            f"-o GlobalKnownHostsFile=/dev/null"
        )

    def info(self) -> dict[str, Any]:
        """What a client needs, as paths: the JSON `up` prints. Contains no secret itself."""
        return {
            "root": str(self.root),
            "http_url": f"http://127.0.0.1:{self.http_port}/",
            "ssh_url": f"ssh://{self.username}@127.0.0.1:{self.ssh_port}{self.repos_dir}/",
            "http_port": self.http_port,
            "ssh_port": self.ssh_port,
            "username": self.username,
            "token_file": str(self.root / "http-token"),
            "ssh_key": str(self.ssh_key_path),
            "known_hosts": str(self.known_hosts_path),
            "repos": str(self.repos_dir),
            "pids": self.state.get("pids", {}),
            "logs": {n: str(self.logs_dir / f"{n}.log") for n in ("http", "sshd")},
        }

    # ---- repositories -------------------------------------------------------------------
    def create_repo(self, name: str, *, exist_ok: bool = False) -> RepoHandle:
        if not _NAME_RE.match(name):
            raise ValueError(f"invalid repository name {name!r}: use letters, digits, . _ -")
        path = self.repos_dir / f"{name}.git"
        if path.exists():
            if not exist_ok:
                raise FileExistsError(f"repository {name} already exists at {path}")
        else:
            self.repos_dir.mkdir(parents=True, exist_ok=True)
            _git("init", "-q", "--bare", "-b", "main", str(path))
            _git("--git-dir", str(path), "config", "http.receivepack", "true")
        return RepoHandle(self, name)

    def repo(self, name: str) -> RepoHandle:
        if not (self.repos_dir / f"{name}.git").is_dir():
            raise FileNotFoundError(f"no repository {name} under {self.repos_dir}")
        return RepoHandle(self, name)

    # ---- lifecycle ------------------------------------------------------------------------
    def _pids(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.state.get("pids", {}).items()}

    def running(self) -> bool:
        pids = self._pids()
        return (
            {"http", "sshd"} <= set(pids)
            and all(pid_alive(p) and _pid_is_ours(p, self.root) for p in pids.values())
            and _accepts(self.http_port)
            and _accepts(self.ssh_port)
        )

    def start(self) -> GitServer:
        """Starts both sides, or reuses them if this root's recorded PIDs are still serving."""
        if self.state and self.running():
            return self
        if self.state:
            self.stop()
        self._check_tools()
        for d in (self.repos_dir, self.ssh_dir, self.logs_dir, self.root / "work"):
            d.mkdir(parents=True, exist_ok=True)
        token_file = self.root / "http-token"
        if not token_file.exists():
            token_file.touch(mode=0o600)
            token_file.write_text(secrets.token_urlsafe(24) + "\n")
        self._make_ssh_keys()
        self.state = {"pids": {}}
        try:
            self._start_http()
            self._start_sshd()
        except BaseException:
            self.stop()
            raise
        self._save()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stops exactly the PIDs recorded for this root and waits until they are gone."""
        for name, pid in self._pids().items():
            proc = self._procs.pop(name, None)
            if pid_alive(pid) and _pid_is_ours(pid, self.root):
                stop_pid(pid, timeout)
            if proc is not None:
                proc.wait()
            (self.root / f"{name}.pid").unlink(missing_ok=True)
        (self.root / "http.port").unlink(missing_ok=True)
        self.state_path.unlink(missing_ok=True)
        self.state = {}

    def _save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2))
        tmp.replace(self.state_path)

    def _check_tools(self) -> None:
        if not self._sshd.is_file():
            raise GitServerError(f"sshd not found at {self._sshd}: apt-get install openssh-server")
        for tool, package in (
            ("git", "git"),
            ("ssh-keygen", "openssh-client"),
            ("git-shell", "git"),
        ):
            if shutil.which(tool) is None:
                raise GitServerError(f"{tool} not found: apt-get install {package}")

    def _spawn(self, name: str, cmd: list[str], env: Mapping[str, str] | None = None) -> int:
        log_path = self.logs_dir / f"{name}.log"
        with open(log_path, "ab") as log_file:
            log_file.write(f"--- starting {name} at {time.ctime()}\n".encode())
            log_file.flush()
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **(env or {})},
                cwd=self.root,
            )
        self._procs[name] = proc
        self.state.setdefault("pids", {})[name] = proc.pid
        if name != "sshd":  # sshd writes its own PidFile once it is listening
            (self.root / f"{name}.pid").write_text(f"{proc.pid}\n")
        self._save()
        return proc.pid

    def _fail(self, name: str, why: str) -> GitServerError:
        log_path = self.logs_dir / f"{name}.log"
        lines = log_path.read_text(errors="replace").splitlines()[-12:] if log_path.exists() else []
        if any("already in use" in ln.lower() for ln in lines):
            why += " (its port is already in use by another process)"
        tail = "\n    ".join(lines)
        return GitServerError(f"{name} {why}; log: {log_path}\n  last lines:\n    {tail}")

    def _wait(self, name: str, ready: Any) -> None:
        pid = self._pids()[name]
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            proc = self._procs.get(name)
            if (proc is not None and proc.poll() is not None) or not pid_alive(pid):
                raise self._fail(name, "exited during start-up")
            if ready():
                return
            time.sleep(0.05)
        raise self._fail(name, f"did not accept connections within {self._start_timeout:.0f}s")

    def _start_http(self) -> None:
        port_file = self.root / "http.port"
        port_file.unlink(missing_ok=True)
        pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        self._spawn(
            "http",
            [
                sys.executable,
                "-m",
                "devcluster.gitserver",
                "serve-http",
                "--root",
                str(self.root),
                "--port",
                str(self._want_http_port),
            ],
            env={"PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"},
        )

        def ready() -> bool:
            if not port_file.exists():
                return False
            self.state["http_port"] = int(port_file.read_text())
            return _accepts(self.state["http_port"])

        self._wait("http", ready)

    def _make_ssh_keys(self) -> None:
        d = self.ssh_dir
        for key in ("host_key", "client_key"):
            if not (d / key).exists():
                _git_free_run(
                    [
                        "ssh-keygen",
                        "-q",
                        "-t",
                        "ed25519",
                        "-N",
                        "",
                        "-C",
                        f"tether-gitserver-{key}",
                        "-f",
                        str(d / key),
                    ]
                )
        client_pub = (d / "client_key.pub").read_text().strip()
        (d / "authorized_keys").write_text(
            'restrict,command="git-shell -c \\"$SSH_ORIGINAL_COMMAND\\"" ' + client_pub + "\n"
        )

    def _start_sshd(self) -> None:
        try:
            # sshd's privilege separation directory; Debian creates it only from its unit file.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        except PermissionError as e:
            raise GitServerError(f"cannot create /run/sshd (needed by sshd): {e}") from e
        attempts = 1 if self._want_ssh_port else 3
        for attempt in range(attempts):
            port = self._want_ssh_port or free_port()
            try:
                self._start_sshd_on(port)
                return
            except GitServerError:
                # A free port can be taken between probing and sshd binding it; retry.
                if attempt == attempts - 1:
                    raise
                proc = self._procs.pop("sshd")
                if proc.poll() is None:
                    stop_pid(proc.pid)
                proc.wait()

    def _start_sshd_on(self, port: int) -> None:
        d = self.ssh_dir
        pid_file = self.root / "sshd.pid"
        pid_file.unlink(missing_ok=True)
        config = d / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {port}",
                    "ListenAddress 127.0.0.1",
                    f'HostKey "{d / "host_key"}"',
                    f'PidFile "{pid_file}"',
                    f'AuthorizedKeysFile "{d / "authorized_keys"}"',
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin prohibit-password",
                    "UsePAM no",
                    "StrictModes no",
                    f"AllowUsers {self.username}",
                    "AcceptEnv GIT_PROTOCOL",
                    # sshd runs the forced command through the login shell, and bash run by
                    # sshd sources ~/.bashrc unless SHLVL says it is nested: that costs
                    # time on every connection and any output would corrupt the git protocol.
                    "SetEnv SHLVL=1",
                    "PrintMotd no",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        self.state["ssh_port"] = port
        self._spawn(
            "sshd",
            [str(self._sshd), "-D", "-f", str(config), "-E", str(self.logs_dir / "sshd.log")],
        )
        pid = self._pids()["sshd"]

        def ready() -> bool:
            try:
                return int(pid_file.read_text().strip() or 0) == pid and _accepts(port)
            except (OSError, ValueError):
                return False

        self._wait("sshd", ready)
        host_pub = (d / "host_key.pub").read_text().split()
        self.known_hosts_path.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")


def _git_free_run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    if r.returncode != 0:
        raise GitServerError(f"{cmd[0]} failed: {r.stderr.strip()[-500:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.gitserver",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("command", choices=["up", "down", "status", "serve-http"])
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(os.environ.get("TETHER_DEV_DIR", str(REPO / ".dev"))) / "git",
        help="state directory (default: <repo>/.dev/gitserver)",
    )
    parser.add_argument("--port", type=int, default=0, help="serve-http only: port to bind")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.command == "serve-http":
        serve_http(root, args.port)
        return 0
    server = GitServer(root)
    try:
        if args.command == "up":
            server.start()
            print(json.dumps(server.info(), indent=2))
        elif args.command == "down":
            server.stop()
        else:
            running = bool(server.state) and server.running()
            print(json.dumps({"running": running, **(server.info() if running else {})}, indent=2))
    except GitServerError as e:
        print(f"[gitserver] ERROR: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
