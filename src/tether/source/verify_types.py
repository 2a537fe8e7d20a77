"""The values commit verification passes around, its error, and how it runs git verify-commit."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tether.errors import SignatureError
from tether.sandbox import Limits, Runner, RunResult

MODE_GPG = "gpg"
MODE_SSH = "ssh"
MODES = (MODE_GPG, MODE_SSH)

VERIFY_TIMEOUT = 60.0
"""Seconds one verification tool may run: it reads local files only."""


@dataclass(frozen=True)
class SignedCommit:
    """A commit as verification sees it: its signature and the bytes the signature covers."""

    sha: str
    subject: str
    signature: bytes
    payload: bytes
    kind: str
    """``GPG``, ``SSH``, ``X.509``, ``unknown``, or "" when the commit is not signed."""

    @property
    def label(self) -> str:
        """``commit abc1234 (subject)``: how messages name the commit."""
        return (
            f"commit {self.sha[:7]} ({self.subject})" if self.subject else f"commit {self.sha[:7]}"
        )


@dataclass(frozen=True)
class Verdict:
    """A good signature: who made it, and until when that stays true (key expiry)."""

    signer: str
    valid_until: float = float("inf")


@dataclass(frozen=True)
class KeySet:
    """The entries of the Secret and/or ConfigMap a policy names, as bytes."""

    origin: str
    """``Secret ns/name`` (and/or ``ConfigMap ns/name``), for messages."""
    entries: dict[str, bytes]

    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.entries):
            h.update(name.encode() + b"\0" + hashlib.sha256(self.entries[name]).digest())
        return h.hexdigest()


class CommitSignatureError(SignatureError):
    """A commit the policy refuses; ``signer`` is who signed it, or ``unsigned``."""

    def __init__(self, commit: SignedCommit, signer: str, what: str, *, hint: str = "") -> None:
        super().__init__(f"{commit.label} {what}", hint=hint)
        self.commit = commit.sha
        self.subject = commit.subject
        self.signer = signer


def is_key_entry(mode: str, name: str) -> bool:
    if mode == MODE_GPG:
        return name.endswith((".asc", ".gpg"))
    return name == "allowed_signers" or name.endswith(".pub")


def key_entries_help(mode: str) -> str:
    if mode == MODE_GPG:
        return (
            "one entry per armored OpenPGP public key, named *.asc or *.gpg "
            "(gpg --armor --export KEYID); revocation certificates may sit beside them"
        )
    return (
        "an 'allowed_signers' entry (git's gpg.ssh.allowedSignersFile format) and/or "
        "*.pub entries (one SSH public key each; its comment is the principal), and "
        "optionally a 'revoked_keys' entry"
    )


def tool_env(git_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the tools need on top of the runner's minimal environment: the repository, no
    user or system git configuration, the C locale (their messages are parsed)."""
    env = {
        "LC_ALL": "C",
        "LANGUAGE": "C",
        "GIT_DIR": str(git_dir),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
    }
    env.update(extra or {})
    return env


def limits_of(runner: Runner) -> Limits:
    return replace(runner.limits, network=False, timeout=min(runner.limits.timeout, VERIFY_TIMEOUT))


async def git_verify_commit(
    runner: Runner,
    commit: str,
    config: Sequence[str],
    *,
    git_dir: Path,
    env: Mapping[str, str] | None = None,
) -> tuple[int, str]:
    """``git verify-commit --raw`` with ``-c`` options; its exit code and all its output."""
    argv = ["git"]
    for option in config:
        argv += ["-c", option]
    argv += ["verify-commit", "--raw", commit]
    result: RunResult = await runner.run(
        argv,
        tool="git verify-commit",
        env=tool_env(git_dir, env),
        limits=limits_of(runner),
        check=False,
    )
    return result.returncode, result.stdout.decode(errors="replace") + result.stderr
