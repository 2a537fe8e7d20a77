"""Reading what gpg and ssh-keygen say, building the allowed-signers file, reading key objects."""

from __future__ import annotations

import base64
import math
from pathlib import Path

import pytest

from tether.api.source import VerifySource
from tether.errors import InvalidSpec, SignatureError
from tether.source.verify import check_policy, object_entries, signature_kind
from tether.source.verify_gpg import judge_gpg, parse_key_listing
from tether.source.verify_ssh import allowed_signers, signature_fingerprint
from tether.source.verify_types import CommitSignatureError, KeySet, SignedCommit

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "signatures"
ALICE = "GPG key 0xF9D3891D1F0052DC (Alice <alice@example.com>)"
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMHaUdGfK8+SKDxJOZ2Vr0N3izFVNQEckkK9aaqFyxmx"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


@pytest.fixture
def commit() -> SignedCommit:
    return SignedCommit(
        sha="0123456789abcdef0123456789abcdef01234567",
        subject="bump the image",
        signature=b"-----BEGIN PGP SIGNATURE-----\n...",
        payload=b"tree ...",
        kind="GPG",
    )


def refusal(commit: SignedCommit, status: str, code: int = 1) -> CommitSignatureError:
    with pytest.raises(CommitSignatureError) as info:
        judge_gpg(commit, "Secret apps/signers", code, fixture(status), {})
    assert info.value.condition_type == "SignatureError"
    assert info.value.message.startswith("commit 0123456 (bump the image) ")
    return info.value


def test_good_gpg_signature_names_key_and_user(commit: SignedCommit) -> None:
    keys = parse_key_listing(fixture("gpg-keys.colons"))
    verdict = judge_gpg(commit, "Secret apps/signers", 0, fixture("gpg-good.status"), keys)
    assert verdict.signer == ALICE
    assert verdict.valid_until == 1795880305  # Alice's key expires then


def test_good_status_with_a_failing_exit_is_not_good(commit: SignedCommit) -> None:
    with pytest.raises(CommitSignatureError):
        judge_gpg(commit, "Secret apps/signers", 1, fixture("gpg-good.status"), {})


def test_revoked_expired_bad_and_unknown_gpg_signatures(commit: SignedCommit) -> None:
    revoked = refusal(commit, "gpg-revoked.status")
    assert revoked.signer == ALICE
    assert revoked.message.endswith(f"is signed by {ALICE}, which is revoked")
    assert "Secret apps/signers revokes this key" in revoked.hint

    expired = refusal(commit, "gpg-expired.status")
    assert expired.signer == "GPG key 0xE47E5C71444C34F1 (Bob <bob@example.com>)"
    assert "which expired on 2026-11-21 00:00 UTC" in expired.message

    bad = refusal(commit, "gpg-bad.status")
    assert "signature does not match the commit" in bad.message and bad.signer == ALICE

    unknown = refusal(commit, "gpg-unknown.status")
    assert unknown.signer == (
        "GPG key 0xE47E5C71444C34F1 (fingerprint 85085BF1722AD3D98D0569B9E47E5C71444C34F1)"
    )
    assert "not among the keys in Secret apps/signers" in unknown.message
    assert "*.asc" in unknown.hint


def test_no_status_at_all_quotes_the_tool(commit: SignedCommit) -> None:
    with pytest.raises(CommitSignatureError) as info:
        judge_gpg(commit, "Secret apps/signers", 128, "fatal: bad object deadbeef\n", {})
    assert "could not be verified: fatal: bad object deadbeef" in info.value.message


def test_key_listing_maps_subkeys_to_their_primary_key() -> None:
    keys = parse_key_listing(fixture("gpg-keys.colons"))
    alice = keys["12818F8ADE530EFFF518393AF9D3891D1F0052DC"]
    assert keys["AAAABBBBCCCCDDDDEEEEFFFF0011223344556677"] is alice
    assert alice.uid == "Alice <alice@example.com>"
    assert alice.expires["AAAABBBBCCCCDDDDEEEEFFFF0011223344556677"] == 1795800000
    bob = keys["85085BF1722AD3D98D0569B9E47E5C71444C34F1"]
    assert bob.uid == "Bob: the builder <bob@example.com>"
    assert bob.expires[bob.primary] == math.inf


def test_allowed_signers_from_pub_entries_and_the_file() -> None:
    keys = KeySet(
        "Secret apps/signers",
        {
            "allowed_signers": b"carol@example.com " + ED25519.encode() + b"\n",
            "alice.pub": f"{ED25519} alice@example.com\n".encode(),
            "bob.pub": f"# the build robot\n{ED25519} Bob's laptop\n".encode(),
            "anon.pub": ED25519.encode(),
            "notes.txt": b"ignored",
        },
    )
    assert allowed_signers(keys).splitlines() == [
        f"carol@example.com {ED25519}",
        f'alice@example.com namespaces="git" {ED25519}',
        f'* namespaces="git" {ED25519}',
        f'* namespaces="git" {ED25519}',
    ]


def test_a_pub_entry_that_is_not_a_key_names_entry_and_line() -> None:
    keys = KeySet("ConfigMap apps/keys", {"bob.pub": f"{ED25519} bob\nBEGIN RSA KEY\n".encode()})
    with pytest.raises(SignatureError) as info:
        allowed_signers(keys)
    assert str(info.value).startswith(
        "entry 'bob.pub' of ConfigMap apps/keys, line 2, is not an SSH public key"
    )


def test_fingerprint_of_the_key_inside_an_ssh_signature() -> None:
    sig = (FIXTURES / "ssh-alice.sig").read_bytes()
    assert signature_fingerprint(sig) == fixture("ssh-alice.fingerprint").strip()
    assert signature_fingerprint(b"-----BEGIN SSH SIGNATURE-----\nnot base64!\n") == ""


def test_signature_kinds() -> None:
    assert signature_kind(b"") == ""
    assert signature_kind(b"-----BEGIN PGP SIGNATURE-----\n") == "GPG"
    assert signature_kind((FIXTURES / "ssh-alice.sig").read_bytes()) == "SSH"
    assert signature_kind(b"-----BEGIN SIGNED MESSAGE-----\n") == "X.509"
    assert signature_kind(b"garbage") == "unknown"


def test_secret_and_config_map_entries_as_bytes() -> None:
    secret = {
        "kind": "Secret",
        "data": {"a.gpg": base64.b64encode(b"\x99\x01binary").decode(), "bad": "%%%"},
        "stringData": {"b.asc": "armored"},
    }
    assert object_entries(secret) == {"a.gpg": b"\x99\x01binary", "b.asc": b"armored"}
    cm = {
        "kind": "ConfigMap",
        "data": {"allowed_signers": "x"},
        "binaryData": {"revoked_keys": base64.b64encode(b"SSHKRL\n\0").decode()},
    }
    assert object_entries(cm) == {"allowed_signers": b"x", "revoked_keys": b"SSHKRL\n\0"}


def test_key_digest_changes_with_any_entry() -> None:
    one = KeySet("Secret a/b", {"a.asc": b"1", "b.asc": b"2"})
    same = KeySet("ConfigMap a/c", {"b.asc": b"2", "a.asc": b"1"})
    other = KeySet("Secret a/b", {"a.asc": b"1", "b.asc": b"3"})
    assert one.digest() == same.digest() != other.digest()


def test_policy_needs_a_mode_and_a_key_object() -> None:
    assert check_policy(VerifySource(mode="GPG", secret_name="s")) == "gpg"
    with pytest.raises(InvalidSpec, match="must be 'gpg' or 'ssh'"):
        check_policy(VerifySource(mode="x509", secret_name="s"))
    with pytest.raises(InvalidSpec, match=r"secretRef\.name or configMapRef\.name"):
        check_policy(VerifySource(mode="ssh"))
