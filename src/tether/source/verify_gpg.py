"""OpenPGP commit signatures: a throwaway gpg key store, ``git verify-commit``, its status lines.

The keys of the policy are imported into a fresh ``GNUPGHOME`` (trust model ``always``: a
listed key is trusted because it is listed, so gpg does not ask about the web of trust);
revocation certificates among them revoke their keys, so a signature by a revoked key shows
as ``REVKEYSIG``. gpg's machine-readable status lines (``git verify-commit --raw``) decide.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

from tether.errors import SignatureError
from tether.sandbox import Runner
from tether.source.verify_types import (
    CommitSignatureError,
    KeySet,
    SignedCommit,
    Verdict,
    git_verify_commit,
    is_key_entry,
    key_entries_help,
    limits_of,
    tool_env,
)

_GPG_CONF = "trust-model always\nno-auto-key-retrieve\nno-autostart\n"
_STATUS = re.compile(r"^\[GNUPG:\] (\S+)(?: (.*))?$")
# gpg keeps a revocation certificate with the armor line disabled by a leading ':'
# (openpgp-revocs.d); accept it as pasted.
_DISABLED_ARMOR = re.compile(rb"^:(-----BEGIN PGP )", re.MULTILINE)


@dataclass
class KeyInfo:
    """One imported key: its user id and when it (or a subkey) expires, by fingerprint."""

    primary: str
    uid: str = ""
    expires: dict[str, float] = field(default_factory=dict)
    """Fingerprint of the primary key or a subkey -> Unix time it expires (inf: never)."""


async def verify_gpg(
    signed: SignedCommit, keys: KeySet, git_dir: Path, scratch: Path, runner: Runner
) -> Verdict:
    home = scratch / "gnupg"
    home.mkdir(mode=0o700)
    (home / "gpg.conf").write_text(_GPG_CONF)
    await import_keys(keys, home, scratch, git_dir, runner)
    keyring = await list_keys(home, git_dir, runner)
    if not keyring:
        raise SignatureError(
            f"{keys.origin} holds no usable GPG public keys (only revocations or "
            "signatures were found)",
            hint=f"add {key_entries_help('gpg')}",
        )
    code, output = await git_verify_commit(
        runner,
        signed.sha,
        ["gpg.program=gpg", "gpg.format=openpgp"],
        git_dir=git_dir,
        env={"GNUPGHOME": str(home)},
    )
    return judge_gpg(signed, keys.origin, code, output, keyring)


async def import_keys(
    keys: KeySet, home: Path, scratch: Path, git_dir: Path, runner: Runner
) -> None:
    """Imports each key entry (naming any that is not OpenPGP data), then all of them once
    more, so a revocation certificate read before its key still revokes it."""
    files: list[Path] = []
    for index, name in enumerate(sorted(n for n in keys.entries if is_key_entry("gpg", n))):
        path = scratch / f"key-{index}.asc"
        path.write_bytes(_DISABLED_ARMOR.sub(rb"\1", keys.entries[name]))
        files.append(path)
        status = await _gpg(home, git_dir, runner, "--import", str(path))
        if "NODATA" in status or not _imported_anything(status):
            raise SignatureError(
                f"entry '{name}' of {keys.origin} holds no OpenPGP key or revocation "
                "certificate gpg can read",
                hint="store the output of 'gpg --armor --export KEYID' (an armored public "
                "key block) in it",
            )
    if len(files) > 1:
        await _gpg(home, git_dir, runner, "--import", *map(str, files))


def _imported_anything(status: str) -> bool:
    for line in status.splitlines():
        m = _STATUS.match(line.strip())
        if m and m.group(1) == "IMPORT_RES":
            counts = (m.group(2) or "0").split()
            return bool(counts) and counts[0] != "0"
    return False


async def _gpg(home: Path, git_dir: Path, runner: Runner, *args: str) -> str:
    result = await runner.run(
        ["gpg", "--batch", "--no-tty", "--status-fd", "1", *args],
        tool="gpg",
        env=tool_env(git_dir, {"GNUPGHOME": str(home)}),
        limits=limits_of(runner),
        check=False,
    )
    return result.stdout.decode(errors="replace")


async def list_keys(home: Path, git_dir: Path, runner: Runner) -> dict[str, KeyInfo]:
    """Every imported key (by primary and subkey fingerprint) with its user id and expiry."""
    result = await runner.run(
        ["gpg", "--batch", "--no-tty", "--with-colons", "--fixed-list-mode", "--list-keys"],
        tool="gpg",
        env=tool_env(git_dir, {"GNUPGHOME": str(home)}),
        limits=limits_of(runner),
        check=False,
    )
    return parse_key_listing(result.stdout.decode(errors="replace"))


def parse_key_listing(listing: str) -> dict[str, KeyInfo]:
    """``gpg --with-colons --list-keys`` -> fingerprint (primary or subkey) -> its key."""
    out: dict[str, KeyInfo] = {}
    current: KeyInfo | None = None
    pending_expiry = math.inf
    expecting_fpr = False
    for line in listing.splitlines():
        f = line.split(":")
        kind = f[0]
        if kind in ("pub", "sub"):
            pending_expiry = float(f[6]) if len(f) > 6 and f[6].isdigit() else math.inf
            expecting_fpr = True
            if kind == "pub":
                current = None
        elif kind == "fpr" and expecting_fpr and len(f) > 9:
            expecting_fpr = False
            fpr = f[9].upper()
            if current is None:
                current = KeyInfo(primary=fpr)
            current.expires[fpr] = pending_expiry
            out[fpr] = current
        elif kind == "uid" and current is not None and not current.uid and len(f) > 9:
            current.uid = _unescape_colons(f[9])
    return out


def _unescape_colons(value: str) -> str:
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), value)


@dataclass
class GpgStatus:
    """gpg's status lines of one verification, keyword -> arguments (the first of each)."""

    lines: dict[str, list[str]]

    @classmethod
    def parse(cls, output: str) -> GpgStatus:
        lines: dict[str, list[str]] = {}
        for raw in output.splitlines():
            m = _STATUS.match(raw.strip())
            if m:
                lines.setdefault(m.group(1), (m.group(2) or "").split(" "))
        return cls(lines)

    def signer(self, keyword: str) -> tuple[str, str]:
        """(key id, user id) of a ``GOODSIG``-like line."""
        args = self.lines.get(keyword, [])
        key = args[0].upper() if args else ""
        uid = unquote(" ".join(args[1:])) if len(args) > 1 else ""
        return key, uid


def describe_key(key: str, uid: str = "", fingerprint: str = "") -> str:
    """``GPG key 0xKEYID (Alice <alice@example.com>)``."""
    keyid = key[-16:] if key else "(unknown)"
    extra = uid or (f"fingerprint {fingerprint}" if fingerprint else "")
    return f"GPG key 0x{keyid}" + (f" ({extra})" if extra else "")


def judge_gpg(
    signed: SignedCommit, origin: str, code: int, output: str, keyring: dict[str, KeyInfo]
) -> Verdict:
    """The verdict of ``git verify-commit --raw``: a good signer, or why not."""
    st = GpgStatus.parse(output)
    if "GOODSIG" in st.lines and "VALIDSIG" in st.lines and code == 0:
        key, uid = st.signer("GOODSIG")
        return Verdict(describe_key(key, uid), _valid_until(st, keyring))
    for keyword, what, hint in _REFUSALS:
        if keyword in st.lines:
            key, uid = st.signer(keyword)
            signer = describe_key(key, uid)
            raise CommitSignatureError(
                signed,
                signer,
                f"is signed by {signer}, {what(st)}",
                hint=hint.format(origin=origin),
            )
    if "ERRSIG" in st.lines:
        args = st.lines["ERRSIG"]
        fingerprint = args[6].upper() if len(args) > 6 and args[6] != "-" else ""
        signer = describe_key(args[0].upper(), fingerprint=fingerprint)
        if "NO_PUBKEY" in st.lines:
            raise CommitSignatureError(
                signed,
                signer,
                f"is signed by {signer}, which is not among the keys in {origin}",
                hint=f"if that key may deploy, add its public key to {origin} as an *.asc "
                "entry (gpg --armor --export KEYID); otherwise re-sign the commit with a "
                "listed key",
            )
        raise CommitSignatureError(
            signed,
            signer,
            f"has a signature by {signer} that gpg cannot check (its error code "
            f"{args[5] if len(args) > 5 else '?'})",
            hint="the key or hash algorithm may be unsupported by this gpg; sign with a "
            "current key type (ed25519, rsa)",
        )
    raise CommitSignatureError(
        signed,
        "unknown signer",
        f"could not be verified: {_last_words(output)}",
        hint=f"check that the commit is signed with a GPG key listed in {origin}",
    )


def _expired_on(st: GpgStatus) -> str:
    stamp = (st.lines.get("KEYEXPIRED") or [""])[0]
    if stamp.isdigit():
        day = datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"which expired on {day}"
    return "which has expired"


_REFUSALS = (
    (
        "REVKEYSIG",
        lambda st: "which is revoked",
        "{origin} revokes this key; sign a new commit with a key that is not revoked",
    ),
    (
        "EXPKEYSIG",
        _expired_on,
        "extend the key's expiry (gpg --quick-set-expire) and update its public key in "
        "{origin}, or sign a new commit with a valid key",
    ),
    (
        "EXPSIG",
        lambda st: "but the signature itself has expired",
        "sign a new commit (without a signature expiry, or a later one)",
    ),
    (
        "BADSIG",
        lambda st: (
            "but the signature does not match the commit (it was changed after "
            "signing, or the signature is corrupt)"
        ),
        "do not deploy this commit; find out who rewrote it, and sign a new one",
    ),
)


def _valid_until(st: GpgStatus, keyring: dict[str, KeyInfo]) -> float:
    """When the signing key (primary or subkey) stops being valid: a good answer is
    remembered no longer than that."""
    args = st.lines.get("VALIDSIG", [])
    signing = args[0].upper() if args else ""
    key = keyring.get(signing)
    if key is None:
        return math.inf
    return min(key.expires.get(signing, math.inf), key.expires.get(key.primary, math.inf))


def _last_words(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return "; ".join(lines[-3:])[:400] or "no output"
