"""Running the git CLI for a Git source: the network half of ``GitCache`` (``ls-remote``,
``fetch``) and of writing (``push``).

git speaks every transport and authentication scheme operators use (HTTPS tokens, SSH keys
checked against known hosts, proxies from the environment, protocol v2) exactly as ``git``
on their laptop does. It runs through ``tether.sandbox.Runner``, the one runner the render
tools use: its own process group killed at the timeout, a memory limit, and an environment
that holds only what git needs (never the controller's tokens, nor its ``~/.gitconfig``).

Credentials never reach argv or a URL: HTTPS passwords reach git through a ``GIT_ASKPASS``
helper that reads them from the child's environment; SSH keys and known hosts go to 0600
files in a private temporary directory removed after the command. Host keys are checked
unless a credential explicitly says not to.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from tether.errors import SourceError
from tether.sandbox import KIND_MEMORY, KIND_START, KIND_TIMEOUT, Limits, Runner, ToolError
from tether.source.credentials import RepoCredentials, normalize_url, redact
from tether.source.failures import REASON_GIT, REASON_TIMEOUT, git_failure, source_error

GIT_CONCURRENCY = 16
"""git processes one cache runs at once (ls-remote and fetch; each waits for a slot)."""
GIT_MEMORY_BYTES = 4 * 1024 * 1024 * 1024
"""Heap one git process may use: index-pack on a large repository needs more than a render."""

# The controller's environment variables git still sees: how to reach servers, nothing more.
_PASSED_THROUGH = frozenset(
    name
    for base in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
    for name in (base, base.lower())
) | {"SSL_CERT_FILE", "SSL_CERT_DIR"}

# Answers git's "Username for ..." and "Password for ..." prompts from the environment git
# passes to it, so the secret never appears in an argument list or a URL.
_ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$TETHER_GIT_USERNAME" ;;
  Password*) printf '%s\\n' "$TETHER_GIT_PASSWORD" ;;
  *) printf '\\n' ;;
esac
"""


class GitCommand:
    """Runs git against one remote URL at a time, for the cache under ``root`` (where the
    askpass helper is kept), under ``timeout`` and ``GIT_MEMORY_BYTES``."""

    def __init__(self, root: Path, timeout: float, runner: Runner | None = None) -> None:
        self.timeout = timeout
        self.runner = runner or Runner(concurrency=GIT_CONCURRENCY)
        self._limits = Limits(timeout=timeout, network=True, memory_bytes=GIT_MEMORY_BYTES)
        self._askpass = _write_askpass(root)

    def _env(self, creds: RepoCredentials) -> dict[str, str]:
        # What the runner adds to its minimal environment (PATH, a private HOME, LANG): the
        # proxy and CA settings operators give the controller, and git's own. Nothing else
        # of the controller's environment (tokens, GIT_DIR, GIT_SSH_COMMAND, an ssh agent)
        # reaches git.
        env = {k: v for k, v in os.environ.items() if k in _PASSED_THROUGH}
        env.update(
            LC_ALL="C",
            LANGUAGE="C",
            GIT_TERMINAL_PROMPT="0",
            GCM_INTERACTIVE="never",
            GIT_ASKPASS=str(self._askpass),
            TETHER_GIT_USERNAME=creds.username,
            TETHER_GIT_PASSWORD=creds.password,
        )
        return env

    @contextlib.contextmanager
    def _ssh_command(self, creds: RepoCredentials) -> Iterator[str]:
        connect = max(1, min(10, int(self.timeout)))
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect}"]
        tmpdir = tempfile.mkdtemp(prefix="tether-ssh-")
        try:
            if creds.ssh_private_key:
                key = Path(tmpdir, "key")
                _write_private(key, creds.ssh_private_key)
                opts += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
            if creds.insecure_ignore_host_key:
                opts += [
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                    "-o",
                    "LogLevel=ERROR",
                ]
            else:
                if creds.known_hosts:
                    known = Path(tmpdir, "known_hosts")
                    _write_private(known, creds.known_hosts.strip() + "\n")
                    opts += [
                        "-o",
                        f"UserKnownHostsFile={known}",
                        "-o",
                        "GlobalKnownHostsFile=/dev/null",
                    ]
                opts += ["-o", "StrictHostKeyChecking=yes"]
            yield " ".join(shlex.quote(p) for p in ["ssh", *opts])
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    async def run(
        self,
        args: Sequence[str],
        *,
        url: str,
        creds: RepoCredentials | None,
        action: str,
        git_dir: Path,
        after_url: Sequence[str] = (),
    ) -> str:
        """Runs ``git args -- url after_url``; returns stdout or raises a translated error."""
        safe_url = redact(url)
        creds = creds or RepoCredentials()
        url, creds = _split_http_userinfo(url, creds)
        env = self._env(creds)
        cmd = [
            "git",
            f"--git-dir={git_dir}",
            "-c",
            "credential.helper=",
            "-c",
            "core.askPass=",
            *args,
            "--",
            url,
            *after_url,
        ]
        with self._ssh_command(creds) if _is_ssh(url) else contextlib.nullcontext("") as ssh:
            if ssh:
                env["GIT_SSH_COMMAND"] = ssh
            try:
                result = await self.runner.run(
                    cmd, tool="git", env=env, limits=self._limits, check=False
                )
            except ToolError as e:
                raise _git_stopped(e, action, safe_url, self.timeout, creds) from None
        if result.returncode != 0:
            raise git_failure(result.stderr, action, safe_url, creds)
        return result.stdout.decode(errors="replace")


def _write_askpass(root: Path) -> Path:
    path = root / "askpass.sh"
    if not path.exists() or path.read_text() != _ASKPASS:
        tmp = root / f".askpass.{os.getpid()}.tmp"
        tmp.write_text(_ASKPASS)
        tmp.chmod(stat.S_IRWXU)
        tmp.replace(path)
    return path


def _is_ssh(url: str) -> bool:
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme:
        return scheme in ("ssh", "git+ssh", "ssh+git")
    return normalize_url(url).startswith("ssh://")


def _split_http_userinfo(url: str, creds: RepoCredentials) -> tuple[str, RepoCredentials]:
    """Moves user info out of an HTTP(S) URL into the credentials, keeping it out of argv.

    What the Secret says wins; the URL only fills in a missing username or password.
    """
    parts = urlsplit(url) if "://" in url else None
    if parts is None or parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return url, creds
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = (unquote(p) for p in userinfo.partition(":"))
    creds = replace(creds, username=creds.username or user, password=creds.password or password)
    return urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment)), creds


def _write_private(path: Path, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content)


def _git_stopped(
    err: ToolError, action: str, url: str, timeout: float, creds: RepoCredentials
) -> SourceError:
    """A SourceError for git stopped by the runner: timed out, out of memory, not there."""
    said = redact(err.message.removeprefix("git: "), creds.secrets)
    if err.kind == KIND_TIMEOUT:
        return source_error(
            REASON_TIMEOUT,
            f"timed out after {timeout:g}s {action} {url}",
            hint="check the URL and network, or that the server is not overloaded",
        )
    if err.kind == KIND_START:
        return source_error(REASON_GIT, f"cannot run git {action} {url}: {said}", err.hint)
    what = "ran out of memory" if err.kind == KIND_MEMORY else "was stopped"
    return source_error(
        REASON_GIT,
        f"git {what} {action} {url}: {said}",
        hint=err.hint,
    )
