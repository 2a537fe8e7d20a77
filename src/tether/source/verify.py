"""Commit signature policy: is the commit to deploy signed by a key the Application trusts?

``verify_commit`` reads the keys named by ``spec.source.verify`` (a Secret and/or a
ConfigMap in the Application's namespace), checks the commit's signature with the real
tools (``git verify-commit`` over ``gpg`` or ``ssh-keygen``) in a throwaway key store, and
returns a readable signer or raises a ``CommitSignatureError`` naming the commit (short
SHA and subject) and the signer, or "unsigned". A good answer is remembered per (commit,
keys), so a commit is checked once until the keys change.
"""

from __future__ import annotations

import base64
import binascii
import shutil
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pygit2

from tether.api.source import VerifySource
from tether.errors import InvalidSpec, SignatureError
from tether.kube import KubeClient
from tether.sandbox import Runner
from tether.source.git import GitCache
from tether.source.verify_gpg import verify_gpg
from tether.source.verify_ssh import verify_ssh
from tether.source.verify_types import (
    MODE_GPG,
    MODE_SSH,
    MODES,
    CommitSignatureError,
    KeySet,
    SignedCommit,
    Verdict,
    is_key_entry,
    key_entries_help,
)

_CACHE_SIZE = 4096
_good: OrderedDict[tuple[str, str, str], tuple[str, float]] = OrderedDict()
"""(mode, commit, keys digest) -> (signer, valid until as a Unix time)."""

_SIG_KINDS = (
    (b"-----BEGIN PGP SIGNATURE-----", "GPG"),
    (b"-----BEGIN SSH SIGNATURE-----", "SSH"),
    (b"-----BEGIN SIGNED MESSAGE-----", "X.509"),
)


async def verify_commit(
    git: GitCache,
    url: str,
    commit: str,
    policy: VerifySource,
    kube: KubeClient,
    namespace: str,
    runner: Runner,
) -> str:
    """The signer of ``commit`` (already fetched into ``git``) if the policy accepts it.

    Raises CommitSignatureError (a SignatureError) for an unsigned commit, a signature by
    a key the policy does not list, a bad signature, or a revoked or expired key; and for
    a policy whose Secret or ConfigMap is missing or holds no keys.
    """
    mode = check_policy(policy)
    keys = await load_keys(kube, namespace, policy)
    signed = read_signed_commit(git, url, commit)
    cache_key = (mode, signed.sha, keys.digest())
    hit = _good.get(cache_key)
    if hit is not None and hit[1] > time.time():
        _good.move_to_end(cache_key)
        return hit[0]
    verdict = await _verify(signed, mode, keys, git.repo_path(url), runner)
    _remember(cache_key, verdict)
    return verdict.signer


async def _verify(
    signed: SignedCommit, mode: str, keys: KeySet, git_dir: Path, runner: Runner
) -> Verdict:
    kind = signed.kind
    if kind == "":
        raise CommitSignatureError(
            signed,
            "unsigned",
            "is not signed",
            hint=f"sign the commit ({sign_hint(mode)}) with a key listed in {keys.origin}",
        )
    wanted = "GPG" if mode == MODE_GPG else "SSH"
    if kind != wanted:
        raise CommitSignatureError(
            signed,
            f"{kind} signature",
            f"carries {'an' if kind[0] in 'AEFHILMNORSXaeiou' else 'a'} {kind} signature, "
            f"but verify.mode is {mode}",
            hint=f"sign the commit with a {wanted} key listed in {keys.origin}, "
            "or change verify.mode",
        )
    with _scratch_dir() as scratch:
        if mode == MODE_GPG:
            return await verify_gpg(signed, keys, git_dir, scratch, runner)
        return await verify_ssh(signed, keys, git_dir, scratch, runner)


def _remember(key: tuple[str, str, str], verdict: Verdict) -> None:
    _good[key] = (verdict.signer, verdict.valid_until)
    _good.move_to_end(key)
    while len(_good) > _CACHE_SIZE:
        _good.popitem(last=False)


def forget_verified() -> None:
    """Drops every remembered good result (the next check runs the tools again)."""
    _good.clear()


def sign_hint(mode: str) -> str:
    if mode == MODE_SSH:
        return "git -c gpg.format=ssh -c user.signingkey=KEY.pub commit -S"
    return "git -c user.signingkey=KEYID commit -S"


# ---- policy and keys --------------------------------------------------------------------


def check_policy(policy: VerifySource) -> str:
    mode = policy.mode.strip().lower()
    if mode not in MODES:
        raise InvalidSpec(
            f"spec.source.verify.mode is '{policy.mode}'; it must be 'gpg' or 'ssh'",
            hint="set verify.mode to gpg (OpenPGP keys) or ssh (SSH keys)",
        )
    if not policy.secret_name and not policy.config_map_name:
        raise InvalidSpec(
            "spec.source.verify names no keys: it needs secretRef.name or configMapRef.name",
            hint="name a Secret or ConfigMap in the Application's namespace holding the "
            "public keys allowed to sign commits",
        )
    return mode


async def load_keys(kube: KubeClient, namespace: str, policy: VerifySource) -> KeySet:
    """Every entry of the named Secret and ConfigMap; a missing object is an error."""
    mode = check_policy(policy)
    entries: dict[str, bytes] = {}
    origins: list[str] = []
    for kind, name in (("Secret", policy.secret_name), ("ConfigMap", policy.config_map_name)):
        if not name:
            continue
        origin = f"{kind} {namespace}/{name}"
        obj = await kube.get("v1", kind, name, namespace)
        if obj is None:
            raise SignatureError(
                f"{origin}, named by spec.source.verify, does not exist; no commit can be "
                "verified, so nothing is synced",
                hint=f"create it with {key_entries_help(mode)}",
            )
        origins.append(origin)
        for key, value in object_entries(obj).items():
            entries.setdefault(key, value)
    keys = KeySet(" and ".join(origins), entries)
    if not any(is_key_entry(mode, name) for name in entries):
        raise SignatureError(
            f"{keys.origin} holds no {mode.upper()} public keys "
            f"(entries: {', '.join(sorted(entries)) or 'none'})",
            hint=f"add {key_entries_help(mode)}",
        )
    return keys


def object_entries(obj: dict[str, Any]) -> dict[str, bytes]:
    """A Secret's ``data``/``stringData`` or a ConfigMap's ``data``/``binaryData`` as bytes."""
    out: dict[str, bytes] = {}
    binary_field = "data" if obj.get("kind") == "Secret" else "binaryData"
    for key, value in (obj.get(binary_field) or {}).items():
        try:
            out[str(key)] = base64.b64decode(str(value), validate=True)
        except binascii.Error:
            continue
    text_field = "stringData" if obj.get("kind") == "Secret" else "data"
    for key, value in (obj.get(text_field) or {}).items():
        out[str(key)] = str(value).encode()
    return out


# ---- the commit ---------------------------------------------------------------------------


def read_signed_commit(git: GitCache, url: str, commit: str) -> SignedCommit:
    """The commit's signature and the bytes it signs, from the cache (no network)."""
    info = git.commit_info(url, commit)  # a SourceError if it was not fetched
    repo = pygit2.Repository(str(git.repo_path(url)))
    c = repo.get(info.sha)
    signature, payload = c.gpg_signature if isinstance(c, pygit2.Commit) else (None, None)
    subject = (info.message.strip().splitlines() or [""])[0].strip()
    if len(subject) > 72:
        subject = subject[:71] + "…"
    return SignedCommit(
        sha=info.sha,
        subject=subject,
        signature=bytes(signature or b""),
        payload=bytes(payload or b""),
        kind=signature_kind(bytes(signature or b"")),
    )


def signature_kind(signature: bytes) -> str:
    """``GPG``, ``SSH``, ``X.509``, ``unknown``, or "" for no signature."""
    if not signature.strip():
        return ""
    head = signature.lstrip()
    return next((kind for prefix, kind in _SIG_KINDS if head.startswith(prefix)), "unknown")


@contextmanager
def _scratch_dir() -> Iterator[Path]:
    """A private directory for one verification (key store, signer files), then removed.

    Under /tmp with a short name: gpg puts sockets in its home, and socket paths are short.
    """
    path = Path(tempfile.mkdtemp(prefix="tether-verify-"))
    try:
        path.chmod(0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
