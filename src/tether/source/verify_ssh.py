"""SSH commit signatures: an allowed-signers file from the policy's keys, ``git verify-commit``.

git checks SSH signatures with ``ssh-keygen -Y`` against ``gpg.ssh.allowedSignersFile``
(principals and keys) and ``gpg.ssh.revocationFile``. The file is built from an
``allowed_signers`` entry (git's format, as is) and from ``*.pub`` entries (one public key
each; its comment becomes the principal, or ``*`` when it has none). ``ssh-keygen`` says
only "Could not verify signature." for a revoked key, so a refusal is checked once more
without the revocation file: a key that passes then is the revoked one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import re
import struct
from pathlib import Path

from tether.errors import SignatureError
from tether.sandbox import Runner
from tether.source.verify_types import (
    CommitSignatureError,
    KeySet,
    SignedCommit,
    Verdict,
    git_verify_commit,
)

ALLOWED_SIGNERS = "allowed_signers"
REVOKED_KEYS = "revoked_keys"

_GOOD = re.compile(r'Good "git" signature for (?P<principal>.+?) with \S+ key (?P<fp>\S+)')
_GOOD_UNKNOWN = re.compile(r'Good "git" signature with \S+ key (?P<fp>\S+)')
_KEY_TYPE = re.compile(r"^(ssh-|ecdsa-|sk-)")
_PRINCIPAL = re.compile(r"^[^\s,\"]+$")


async def verify_ssh(
    signed: SignedCommit, keys: KeySet, git_dir: Path, scratch: Path, runner: Runner
) -> Verdict:
    allowed = scratch / "allowed_signers"
    allowed.write_text(allowed_signers(keys))
    config = ["gpg.format=ssh", "gpg.ssh.program=ssh-keygen"]
    config.append(f"gpg.ssh.allowedSignersFile={allowed}")
    revocations: list[str] = []
    if (revoked := keys.entries.get(REVOKED_KEYS)) is not None:
        path = scratch / "revoked_keys"
        path.write_bytes(revoked)
        revocations.append(f"gpg.ssh.revocationFile={path}")
    code, output = await git_verify_commit(
        runner, signed.sha, [*config, *revocations], git_dir=git_dir
    )
    good = _GOOD.search(output)
    if code == 0 and good:
        return Verdict(describe_key(good["fp"], good["principal"]))
    refusal = _refusal(signed, keys.origin, output, allowed)
    if refusal is None and revocations:
        # ssh-keygen does not say a key is revoked: it passes without the revocation file.
        code, output2 = await git_verify_commit(runner, signed.sha, config, git_dir=git_dir)
        if code == 0 and (good := _GOOD.search(output2)):
            signer = describe_key(good["fp"], good["principal"])
            raise CommitSignatureError(
                signed,
                signer,
                f"is signed by {signer}, which is revoked: the revoked_keys entry of "
                f"{keys.origin} lists it",
                hint="sign a new commit with a key that is not revoked",
            )
    if refusal is None:
        signer = describe_key(signature_fingerprint(signed.signature))
        refusal = CommitSignatureError(
            signed,
            signer,
            f"is signed by {signer}, which the keys in {keys.origin} do not accept: "
            f"{_reasons(output, allowed)}",
            hint="check the key's principals and valid-after/valid-before options in "
            "allowed_signers against the commit's date",
        )
    raise refusal


def _refusal(
    signed: SignedCommit, origin: str, output: str, allowed: Path
) -> CommitSignatureError | None:
    """Why git refused, when its output says: an unlisted key, a listed key outside its
    validity, or a signature that does not match. None: ask again (revocation)."""
    if unknown := _GOOD_UNKNOWN.search(output):
        signer = describe_key(unknown["fp"])
        if unknown["fp"] in listed_fingerprints(allowed.read_text()):
            return CommitSignatureError(
                signed,
                signer,
                f"is signed by {signer}, which {origin} lists but does not accept for "
                f"this commit: {_reasons(output, allowed)}",
                hint="check the key's valid-after/valid-before and namespaces options "
                "against the commit's date and the 'git' namespace",
            )
        return CommitSignatureError(
            signed,
            signer,
            f"is signed by {signer}, which is not among the keys in {origin}",
            hint=f"if that key may deploy, add its public key to {origin} (a *.pub "
            "entry or a line of allowed_signers); otherwise re-sign the commit with a "
            "listed key",
        )
    if "incorrect signature" in output:
        signer = describe_key(signature_fingerprint(signed.signature))
        return CommitSignatureError(
            signed,
            signer,
            f"has a signature by {signer} that does not match the commit (it was changed "
            "after signing, or the signature is corrupt)",
            hint="do not deploy this commit; find out who rewrote it, and sign a new one",
        )
    return None


def describe_key(fingerprint: str, principal: str = "") -> str:
    """``SSH key SHA256:… (alice@example.com)``."""
    key = f"SSH key {fingerprint}" if fingerprint else "an unreadable SSH key"
    return f"{key} ({principal})" if principal and principal != "*" else key


def allowed_signers(keys: KeySet) -> str:
    """The allowed-signers file: the ``allowed_signers`` entry, then one line per ``*.pub``
    key. A line that is not a public key is an error naming the entry and line."""
    lines: list[str] = []
    if ALLOWED_SIGNERS in keys.entries:
        lines.append(_text(keys, ALLOWED_SIGNERS).strip())
    for name in sorted(n for n in keys.entries if n.endswith(".pub")):
        for number, line in enumerate(_text(keys, name).splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            lines.append(_allowed_line(line, name, number, keys.origin))
    return "\n".join(lines) + "\n"


def _allowed_line(line: str, entry: str, number: int, origin: str) -> str:
    parts = line.split(None, 2)
    if len(parts) < 2 or not _KEY_TYPE.match(parts[0]) or not _is_base64(parts[1]):
        raise SignatureError(
            f"entry '{entry}' of {origin}, line {number}, is not an SSH public key",
            hint="store the content of the signer's KEY.pub file "
            "('ssh-ed25519 AAAA… alice@example.com') in it",
        )
    comment = parts[2].strip() if len(parts) > 2 else ""
    principal = comment if _PRINCIPAL.match(comment) else "*"
    return f'{principal} namespaces="git" {parts[0]} {parts[1]}'


def _text(keys: KeySet, name: str) -> str:
    try:
        return keys.entries[name].decode()
    except UnicodeDecodeError:
        raise SignatureError(
            f"entry '{name}' of {keys.origin} is not text",
            hint="SSH public keys and allowed_signers files are text; store them as such",
        ) from None


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        return False
    return True


def signature_fingerprint(signature: bytes) -> str:
    """``SHA256:…`` of the public key inside an armored SSH signature ("" if unreadable)."""
    body = b"".join(
        ln.strip() for ln in signature.splitlines() if ln.strip() and not ln.startswith(b"-----")
    )
    try:
        blob = base64.b64decode(body, validate=True)
    except binascii.Error:
        return ""
    # SSHSIG: magic "SSHSIG", uint32 version, string publickey, ...
    if not blob.startswith(b"SSHSIG") or len(blob) < 14:
        return ""
    (length,) = struct.unpack(">I", blob[10:14])
    key = blob[14 : 14 + length]
    if len(key) != length:
        return ""
    return _fingerprint(key)


def listed_fingerprints(allowed: str) -> set[str]:
    """``SHA256:…`` of every key in an allowed-signers file."""
    out: set[str] = set()
    for line in allowed.splitlines():
        tokens = line.split()
        for kind, blob in itertools.pairwise(tokens):
            if _KEY_TYPE.match(kind) and _is_base64(blob):
                out.add(_fingerprint(base64.b64decode(blob)))
                break
    return out


def _fingerprint(key: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(key).digest()).decode().rstrip("=")


def _reasons(output: str, allowed: Path) -> str:
    """ssh-keygen's own words, without the private file's path (``FILE:LINE: why``)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    about_file = [ln.split(": ", 1)[-1] for ln in lines if ln.startswith(f"{allowed}:")]
    return "; ".join(about_file or lines[-3:])[:400] or "no output"
