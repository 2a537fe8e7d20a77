"""Making signed commits in tests: throwaway GPG key stores and SSH keys, with the real tools.

``GpgKeys`` keeps its own GNUPGHOME (a short path under /tmp: gpg-agent's socket lives there)
and gives the git options that sign with one of its keys through a small ``gpg.program``
wrapper, so no environment variable has to reach git. ``SshKey`` is an ``ssh-keygen`` key
pair. Both plug into ``RepoHandle.commit(sign=...)``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from devcluster.gitserver import RepoHandle


def _run(*argv: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> str:
    r = subprocess.run(argv, capture_output=True, env=env, input=stdin, check=False, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode()


def _faked(days_ago: float) -> str:
    when = datetime.now(UTC) - timedelta(days=days_ago)
    return when.strftime("%Y%m%dT%H%M%S")


@dataclass(frozen=True)
class GpgKey:
    fingerprint: str
    uid: str

    @property
    def keyid(self) -> str:
        return self.fingerprint[-16:]


class GpgKeys:
    """A private gpg key store that makes keys, exports them, revokes them and signs."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="tg-", dir="/tmp"))
        self.home.chmod(0o700)

    def _gpg(self, *args: str, days_ago: float = 0, stdin: bytes | None = None) -> str:
        faked = ["--faked-system-time", _faked(days_ago)] if days_ago else []
        return _run(
            "gpg",
            "--homedir",
            str(self.home),
            "--batch",
            "--no-tty",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            *faked,
            *args,
            stdin=stdin,
        )

    def new_key(
        self, name: str, email: str, *, expire: str = "never", days_ago: float = 0
    ) -> GpgKey:
        """An ed25519 signing key; ``days_ago`` makes it as if created that long ago, so
        with ``expire="1d"`` it has already expired."""
        uid = f"{name} <{email}>"
        self._gpg("--quick-gen-key", uid, "ed25519", "sign", expire, days_ago=days_ago)
        listing = self._gpg("--with-colons", "--list-keys", f"={uid}")
        fpr = next(ln.split(":")[9] for ln in listing.splitlines() if ln.startswith("fpr:"))
        return GpgKey(fpr, uid)

    def add_signing_subkey(self, key: GpgKey) -> GpgKey:
        """A new ed25519 signing subkey of ``key`` (same user id), to sign with on its own."""
        self._gpg("--quick-add-key", key.fingerprint, "ed25519", "sign", "never")
        listing = self._gpg("--with-colons", "--list-keys", key.fingerprint)
        fprs = [ln.split(":")[9] for ln in listing.splitlines() if ln.startswith("fpr:")]
        return GpgKey(fprs[-1], key.uid)

    def public(self, key: GpgKey) -> str:
        """The armored public key, as ``gpg --armor --export`` gives it."""
        return self._gpg("--armor", "--export", key.fingerprint)

    def revocation(self, key: GpgKey, *, as_stored: bool = False) -> str:
        """The revocation certificate gpg made with the key, armor line enabled (or, with
        ``as_stored``, disabled by a leading ':' as gpg keeps it)."""
        text = (self.home / "openpgp-revocs.d" / f"{key.fingerprint}.rev").read_text()
        return text if as_stored else text.replace(":-----BEGIN PGP", "-----BEGIN PGP")

    def revoke(self, key: GpgKey) -> str:
        """Revokes the key here; returns its public key as exported after revocation."""
        self._gpg("--import", stdin=self.revocation(key).encode())
        return self.public(key)

    def sign_options(self, key: GpgKey, *, days_ago: float = 0) -> tuple[str, ...]:
        """git options that sign with ``key`` (at a time ``days_ago`` in the past)."""
        wrapper = self.home / f"gpg-{key.keyid}-{int(days_ago * 86400)}.sh"
        faked = f" --faked-system-time {_faked(days_ago)}" if days_ago else ""
        wrapper.write_text(f'#!/bin/sh\nexec gpg --homedir {self.home}{faked} "$@"\n')
        wrapper.chmod(0o700)
        return (
            "-c",
            "gpg.format=openpgp",
            "-c",
            f"gpg.program={wrapper}",
            "-c",
            f"user.signingkey={key.fingerprint}!",
        )

    def close(self) -> None:
        subprocess.run(
            ["gpgconf", "--homedir", str(self.home), "--kill", "all"],
            capture_output=True,
            check=False,
            timeout=30,
        )
        shutil.rmtree(self.home, ignore_errors=True)


@dataclass(frozen=True)
class SshKey:
    path: Path
    public: str
    """The ``KEY.pub`` line: type, key, comment."""
    fingerprint: str
    """``SHA256:…``"""

    def sign_options(self) -> tuple[str, ...]:
        return ("-c", "gpg.format=ssh", "-c", f"user.signingkey={self.path}")

    @property
    def allowed_line(self) -> str:
        """This key as a line of an allowed_signers file, for its comment as principal."""
        kind, blob, comment = self.public.split(None, 2)
        return f"{comment.strip()} {kind} {blob}"


def new_ssh_key(directory: Path, comment: str, kind: str = "ed25519") -> SshKey:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"id-{len(list(directory.iterdir()))}"
    _run("ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(path))
    public = Path(f"{path}.pub").read_text()
    fingerprint = _run("ssh-keygen", "-l", "-E", "sha256", "-f", f"{path}.pub").split()[1]
    return SshKey(path, public.strip(), fingerprint)


def ssh_krl(directory: Path, *keys: SshKey) -> bytes:
    """A binary key revocation list (``ssh-keygen -k``) revoking ``keys``."""
    pubs = []
    for i, key in enumerate(keys):
        pub = directory / f"revoke-{i}.pub"
        pub.write_text(key.public + "\n")
        pubs.append(str(pub))
    krl = directory / "revoked.krl"
    _run("ssh-keygen", "-k", "-f", str(krl), *pubs)
    return krl.read_bytes()


def push_tampered(repo: RepoHandle, commit: str, message: str, branch: str = "main") -> str:
    """A copy of the signed ``commit`` with another message but the same signature, pushed
    straight into the server's bare repository as ``branch``: its signature no longer
    matches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_DIR=str(repo.path), GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    raw = _run("git", "cat-file", "commit", commit, env=env)
    head, _, _ = raw.partition("\n\n")
    forged = f"{head}\n\n{message}\n".encode()
    sha = _run("git", "hash-object", "-t", "commit", "-w", "--stdin", env=env, stdin=forged).strip()
    _run("git", "update-ref", f"refs/heads/{branch}", sha, env=env)
    return sha


@pytest.fixture
def gpg_keys() -> Iterator[GpgKeys]:
    keys = GpgKeys()
    try:
        yield keys
    finally:
        keys.close()
