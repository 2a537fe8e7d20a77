"""Commit signature checks with real gpg and ssh-keygen signatures on the real git server,
keys in real Secrets and ConfigMaps on the local control plane."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from devcluster.gitserver import GitServer, RepoHandle

from cluster_helpers import (
    WAIT,
    app_status,
    cm_yaml,
    condition,
    eventually,
    new_app,
    runtime_options,
    synced_to,
)
from git_fixtures import git_repo, git_server
from signing import GpgKeys, SshKey, gpg_keys, new_ssh_key, push_tampered, ssh_krl
from tether.api.source import VerifySource
from tether.controller.runtime import Runtime
from tether.errors import InvalidSpec, SignatureError
from tether.kube import KubeClient
from tether.model import Obj
from tether.sandbox import Limits, Runner, RunResult
from tether.source import GitCache, RepoCredentials
from tether.source.verify import forget_verified, verify_commit
from tether.source.verify_types import CommitSignatureError

_FIXTURES = (git_server, git_repo, gpg_keys)


class CountingRunner(Runner):
    """The real runner, counting the tools it starts."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[str] = []

    async def run(
        self,
        argv: Sequence[str],
        *,
        tool: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        limits: Limits | None = None,
        check: bool = True,
    ) -> RunResult:
        self.started.append(tool)
        return await super().run(
            argv, tool=tool, cwd=cwd, env=env, stdin=stdin, limits=limits, check=check
        )


@pytest.fixture
def cache(tmp_path: Path) -> GitCache:
    return GitCache(tmp_path / "cache", timeout=30)


@pytest.fixture
def runner() -> CountingRunner:
    return CountingRunner()


class Checker:
    """Fetches a commit from the test repository and verifies it under a policy."""

    def __init__(
        self, cache: GitCache, server: GitServer, repo: RepoHandle, kube: KubeClient, ns: str
    ) -> None:
        self.cache = cache
        self.creds = RepoCredentials(username="tether", password=server.token)
        self.repo = repo
        self.kube = kube
        self.ns = ns

    async def keys(
        self, name: str, entries: Mapping[str, str | bytes], kind: str = "Secret"
    ) -> None:
        await create_keys(self.kube, self.ns, name, entries, kind)

    async def verify(self, commit: str, policy: VerifySource, runner: Runner) -> str:
        await self.cache.fetch(self.repo.http_url, self.creds, commit)
        return await verify_commit(
            self.cache, self.repo.http_url, commit, policy, self.kube, self.ns, runner
        )

    async def refused(
        self, commit: str, policy: VerifySource, runner: Runner
    ) -> CommitSignatureError:
        with pytest.raises(CommitSignatureError) as info:
            await self.verify(commit, policy, runner)
        err = info.value
        assert err.condition_type == "SignatureError"
        assert f"commit {commit[:7]} (" in str(err)
        return err


async def create_keys(
    kube: KubeClient, ns: str, name: str, entries: Mapping[str, str | bytes], kind: str = "Secret"
) -> None:
    """A Secret (all entries in ``data``) or a ConfigMap (text in ``data``, bytes in
    ``binaryData``) holding trusted keys."""
    as_b64 = {
        k: base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode()
        for k, v in entries.items()
    }
    obj: Obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": ns}}
    if kind == "Secret":
        obj["data"] = as_b64
    else:
        obj["data"] = {k: v for k, v in entries.items() if isinstance(v, str)}
        obj["binaryData"] = {k: as_b64[k] for k, v in entries.items() if isinstance(v, bytes)}
    await kube.create(obj)


@pytest.fixture
def check(
    cache: GitCache, git_server: GitServer, git_repo: RepoHandle, kube: KubeClient, namespace: str
) -> Checker:
    forget_verified()
    return Checker(cache, git_server, git_repo, kube, namespace)


GPG = VerifySource(mode="gpg", secret_name="signers")
SSH = VerifySource(mode="ssh", secret_name="signers")


# ---- GPG ------------------------------------------------------------------------------------


async def test_gpg_good_signature_names_the_signer(
    check: Checker, gpg_keys: GpgKeys, runner: CountingRunner
) -> None:
    alice = gpg_keys.new_key("Alice", "alice@example.com")
    await check.keys("signers", {"alice.asc": gpg_keys.public(alice)})
    sha = check.repo.commit(
        {"a.yaml": "x: 1\n"}, message="add a", sign=gpg_keys.sign_options(alice)
    )
    signer = await check.verify(sha, GPG, runner)
    assert signer == f"GPG key 0x{alice.keyid} (Alice <alice@example.com>)"


async def test_gpg_unsigned_commit_is_refused(
    check: Checker, gpg_keys: GpgKeys, runner: CountingRunner
) -> None:
    alice = gpg_keys.new_key("Alice", "alice@example.com")
    await check.keys("signers", {"alice.asc": gpg_keys.public(alice)})
    sha = check.repo.commit({"a.yaml": "x: 1\n"}, message="sneak in a change")
    err = await check.refused(sha, GPG, runner)
    assert err.message == f"commit {sha[:7]} (sneak in a change) is not signed"
    assert err.signer == "unsigned"
    assert "Secret" in err.hint and "signers" in err.hint
    assert runner.started == []  # nothing to ask the tools about


async def test_gpg_unknown_key_is_named(
    check: Checker, gpg_keys: GpgKeys, runner: CountingRunner
) -> None:
    alice = gpg_keys.new_key("Alice", "alice@example.com")
    mallory = gpg_keys.new_key("Mallory", "mallory@example.com")
    await check.keys("signers", {"alice.asc": gpg_keys.public(alice)})
    sha = check.repo.commit({"a.yaml": "x: 2\n"}, message="m", sign=gpg_keys.sign_options(mallory))
    err = await check.refused(sha, GPG, runner)
    assert f"GPG key 0x{mallory.keyid}" in err.signer
    assert mallory.fingerprint in err.signer
    assert f"not among the keys in Secret {check.ns}/signers" in err.message


async def test_gpg_revocation_certificate_beside_the_key_refuses_its_signatures(
    check: Checker, gpg_keys: GpgKeys, runner: CountingRunner
) -> None:
    alice = gpg_keys.new_key("Alice", "alice@example.com")
    sha = check.repo.commit({"a.yaml": "x: 3\n"}, message="r", sign=gpg_keys.sign_options(alice))
    # "alice-revoked.asc" sorts before "alice.asc": the certificate is read before its key.
    await check.keys(
        "signers",
        {"alice.asc": gpg_keys.public(alice), "alice-revoked.asc": gpg_keys.revocation(alice)},
    )
    err = await check.refused(sha, GPG, runner)
    assert err.signer == f"GPG key 0x{alice.keyid} (Alice <alice@example.com>)"
    assert err.message.endswith(f"is signed by {err.signer}, which is revoked")


async def test_gpg_revoked_key_export_refuses_its_signatures(
    check: Checker, gpg_keys: GpgKeys, runner: CountingRunner
) -> None:
    alice = gpg_keys.new_key("Alice", "alice@example.com")
    sha = check.repo.commit({"a.yaml": "x: 4\n"}, message="r", sign=gpg_keys.sign_options(alice))
    await check.keys("signers", {"alice.gpg": gpg_keys.revoke(alice)})
    err = await check.refused(sha, GPG, runner)
    assert "which is revoked" in err.message and alice.keyid in err.signer
    # The certificate as gpg stores it (armor line disabled by ':') revokes too.
    stored = gpg_keys.revocation(alice, as_stored=True)
    assert stored.startswith(":-----BEGIN") or "\n:-----BEGIN" in stored
    await check.keys("stored", {"a.asc": gpg_keys.public(alice), "b.asc": stored})
    err = await check.refused(sha, VerifySource(mode="gpg", secret_name="stored"), runner)
    assert "which is revoked" in err.message


async def test_gpg_signing_subkey_verifies_with_its_primary_key_export(
    check: Checker, gpg_keys: GpgKeys, runner: CountingRunner
) -> None:
    alice = gpg_keys.new_key("Alice", "alice@example.com")
    sub = gpg_keys.add_signing_subkey(alice)
    await check.keys("signers", {"alice.asc": gpg_keys.public(alice)})
    sha = check.repo.commit({"a.yaml": "x: 9\n"}, message="sub", sign=gpg_keys.sign_options(sub))
    assert await check.verify(sha, GPG, runner) == (
        f"GPG key 0x{sub.keyid} (Alice <alice@example.com>)"
    )


async def test_gpg_expired_key_is_refused(
    check: Checker, gpg_keys: GpgKeys, runner: CountingRunner
) -> None:
    bob = gpg_keys.new_key("Bob", "bob@example.com", expire="1d", days_ago=10)
    await check.keys("signers", {"bob.asc": gpg_keys.public(bob)})
    options = gpg_keys.sign_options(bob, days_ago=9.5)
    sha = check.repo.commit({"a.yaml": "x: 5\n"}, message="old", sign=options)
    err = await check.refused(sha, GPG, runner)
    assert err.signer == f"GPG key 0x{bob.keyid} (Bob <bob@example.com>)"
    assert re.search(r"which expired on \d{4}-\d\d-\d\d", err.message)


async def test_gpg_tampered_commit_has_a_bad_signature(
    check: Checker, gpg_keys: GpgKeys, runner: CountingRunner
) -> None:
    alice = gpg_keys.new_key("Alice", "alice@example.com")
    await check.keys("signers", {"alice.asc": gpg_keys.public(alice)})
    good = check.repo.commit(
        {"a.yaml": "x: 6\n"}, message="fine", sign=gpg_keys.sign_options(alice)
    )
    forged = push_tampered(check.repo, good, "rewritten")
    err = await check.refused(forged, GPG, runner)
    assert "(rewritten)" in err.message
    assert "signature does not match the commit" in err.message
    assert alice.keyid in err.signer


async def test_ssh_signature_under_a_gpg_policy_is_refused(
    check: Checker, gpg_keys: GpgKeys, runner: CountingRunner, tmp_path: Path
) -> None:
    alice = gpg_keys.new_key("Alice", "alice@example.com")
    ssh = new_ssh_key(tmp_path / "ssh", "alice@example.com")
    await check.keys("signers", {"alice.asc": gpg_keys.public(alice)})
    sha = check.repo.commit({"a.yaml": "x: 7\n"}, message="s", sign=ssh.sign_options())
    err = await check.refused(sha, GPG, runner)
    assert "carries an SSH signature, but verify.mode is gpg" in err.message


async def test_good_results_are_remembered_until_the_keys_change(
    check: Checker, gpg_keys: GpgKeys, runner: CountingRunner
) -> None:
    alice = gpg_keys.new_key("Alice", "alice@example.com")
    bob = gpg_keys.new_key("Bob", "bob@example.com")
    await check.keys("signers", {"alice.asc": gpg_keys.public(alice)})
    sha = check.repo.commit({"a.yaml": "x: 8\n"}, message="c", sign=gpg_keys.sign_options(alice))
    first = await check.verify(sha, GPG, runner)
    tools_used = len(runner.started)
    assert tools_used > 0
    assert await check.verify(sha, GPG, runner) == first
    assert len(runner.started) == tools_used  # the second answer came from memory
    # Replacing Alice's key by Bob's is new keys: checked again, and refused.
    bob_key = base64.b64encode(gpg_keys.public(bob).encode()).decode()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "signers", "namespace": check.ns},
    }
    await check.kube.merge_patch(secret, {"data": {"alice.asc": None, "bob.asc": bob_key}})
    err = await check.refused(sha, GPG, runner)
    assert "not among the keys" in err.message
    assert len(runner.started) > tools_used


# ---- SSH ------------------------------------------------------------------------------------


async def test_ssh_pub_entries_and_allowed_signers(
    check: Checker, runner: CountingRunner, tmp_path: Path
) -> None:
    alice = new_ssh_key(tmp_path / "ssh", "alice@example.com")
    bob = new_ssh_key(tmp_path / "ssh", "")
    carol = new_ssh_key(tmp_path / "ssh", "carol@example.com")
    await check.keys(
        "signers",
        {"alice.pub": alice.public, "bob.pub": bob.public, "allowed_signers": carol.allowed_line},
    )
    for key, principal in ((alice, "alice@example.com"), (bob, ""), (carol, "carol@example.com")):
        sha = check.repo.commit({"a.yaml": f"k: {key.fingerprint}\n"}, sign=key.sign_options())
        signer = await check.verify(sha, SSH, runner)
        expected = f"SSH key {key.fingerprint}" + (f" ({principal})" if principal else "")
        assert signer == expected


async def test_ssh_keys_from_a_config_map(
    check: Checker, runner: CountingRunner, tmp_path: Path
) -> None:
    alice = new_ssh_key(tmp_path / "ssh", "alice@example.com")
    await check.keys("trusted", {"allowed_signers": alice.allowed_line + "\n"}, kind="ConfigMap")
    sha = check.repo.commit({"a.yaml": "x: 1\n"}, message="cm", sign=alice.sign_options())
    policy = VerifySource(mode="ssh", config_map_name="trusted")
    assert (
        await check.verify(sha, policy, runner)
        == f"SSH key {alice.fingerprint} (alice@example.com)"
    )


async def test_ssh_unsigned_and_unknown_key(
    check: Checker, runner: CountingRunner, tmp_path: Path
) -> None:
    alice = new_ssh_key(tmp_path / "ssh", "alice@example.com")
    mallory = new_ssh_key(tmp_path / "ssh", "mallory@example.com")
    await check.keys("signers", {"alice.pub": alice.public})
    unsigned = check.repo.commit({"a.yaml": "x: 1\n"}, message="no sig")
    err = await check.refused(unsigned, SSH, runner)
    assert err.message == f"commit {unsigned[:7]} (no sig) is not signed"
    assert "gpg.format=ssh" in err.hint
    by_mallory = check.repo.commit(
        {"a.yaml": "x: 2\n"}, message="evil", sign=mallory.sign_options()
    )
    err = await check.refused(by_mallory, SSH, runner)
    assert err.signer == f"SSH key {mallory.fingerprint}"
    assert f"not among the keys in Secret {check.ns}/signers" in err.message


async def test_ssh_revoked_key_as_a_list_and_as_a_krl(
    check: Checker, runner: CountingRunner, tmp_path: Path
) -> None:
    alice = new_ssh_key(tmp_path / "ssh", "alice@example.com")
    bob = new_ssh_key(tmp_path / "ssh", "bob@example.com")
    await check.keys(
        "signers",
        {"alice.pub": alice.public, "bob.pub": bob.public, "revoked_keys": alice.public + "\n"},
    )
    sha = check.repo.commit({"a.yaml": "x: 1\n"}, message="by alice", sign=alice.sign_options())
    err = await check.refused(sha, SSH, runner)
    assert err.signer == f"SSH key {alice.fingerprint} (alice@example.com)"
    assert "which is revoked" in err.message
    # Bob is not revoked: his commits still pass.
    by_bob = check.repo.commit({"a.yaml": "x: 2\n"}, message="by bob", sign=bob.sign_options())
    assert await check.verify(by_bob, SSH, runner) == f"SSH key {bob.fingerprint} (bob@example.com)"
    krl = ssh_krl(tmp_path, bob)
    await check.keys("krl", {"bob.pub": bob.public, "revoked_keys": krl})
    err = await check.refused(by_bob, VerifySource(mode="ssh", secret_name="krl"), runner)
    assert "which is revoked" in err.message and bob.fingerprint in err.signer


async def test_ssh_key_outside_its_validity_window_says_why(
    check: Checker, runner: CountingRunner, tmp_path: Path
) -> None:
    alice = new_ssh_key(tmp_path / "ssh", "alice@example.com")
    kind, blob, _ = alice.public.split(None, 2)
    line = f'alice@example.com valid-before="20200101" {kind} {blob}\n'
    await check.keys("signers", {"allowed_signers": line})
    sha = check.repo.commit({"a.yaml": "x: 1\n"}, message="late", sign=alice.sign_options())
    err = await check.refused(sha, SSH, runner)
    assert err.signer == f"SSH key {alice.fingerprint}"
    assert f"which Secret {check.ns}/signers lists but does not accept for this commit" in (
        err.message
    )
    assert "valid-before" in err.message and "tether-verify" not in err.message


async def test_ssh_tampered_commit_has_a_bad_signature(
    check: Checker, runner: CountingRunner, tmp_path: Path
) -> None:
    alice = new_ssh_key(tmp_path / "ssh", "alice@example.com")
    await check.keys("signers", {"alice.pub": alice.public})
    good = check.repo.commit({"a.yaml": "x: 1\n"}, message="fine", sign=alice.sign_options())
    forged = push_tampered(check.repo, good, "rewritten")
    err = await check.refused(forged, SSH, runner)
    assert "(rewritten)" in err.message and "does not match the commit" in err.message
    assert err.signer == f"SSH key {alice.fingerprint}"


# ---- the policy's keys -------------------------------------------------------------------


async def test_missing_or_empty_key_objects_say_what_they_need(
    check: Checker, gpg_keys: GpgKeys, runner: CountingRunner
) -> None:
    sha = check.repo.commit({"a.yaml": "x: 1\n"}, message="m")
    with pytest.raises(SignatureError) as info:
        await check.verify(sha, GPG, runner)
    assert f"Secret {check.ns}/signers, named by spec.source.verify, does not exist" in str(
        info.value
    )
    assert "*.asc" in info.value.hint
    await check.keys("signers", {"README": "keys go here"})
    with pytest.raises(SignatureError) as info:
        await check.verify(sha, SSH, runner)
    assert f"Secret {check.ns}/signers holds no SSH public keys (entries: README)" in str(
        info.value
    )
    assert "allowed_signers" in info.value.hint
    # A key entry gpg cannot read is named once a signature has to be checked with it.
    alice = gpg_keys.new_key("Alice", "alice@example.com")
    signed = check.repo.commit({"a.yaml": "x: 2\n"}, sign=gpg_keys.sign_options(alice))
    await check.keys("broken", {"alice.asc": gpg_keys.public(alice), "bob.asc": "not a key"})
    with pytest.raises(SignatureError) as info:
        await check.verify(signed, VerifySource(mode="gpg", secret_name="broken"), runner)
    assert "entry 'bob.asc' of Secret" in str(info.value)
    with pytest.raises(InvalidSpec) as spec:
        await check.verify(sha, VerifySource(mode="x509", secret_name="signers"), runner)
    assert "must be 'gpg' or 'ssh'" in str(spec.value)


async def test_bad_ssh_pub_entry_is_named(
    check: Checker, runner: CountingRunner, tmp_path: Path
) -> None:
    alice: SshKey = new_ssh_key(tmp_path / "ssh", "alice@example.com")
    await check.keys("signers", {"alice.pub": alice.public, "bob.pub": "bob's key, pasted wrong"})
    sha = check.repo.commit({"a.yaml": "x: 1\n"}, message="m", sign=alice.sign_options())
    with pytest.raises(SignatureError) as info:
        await check.verify(sha, SSH, runner)
    assert "entry 'bob.pub' of Secret" in str(info.value) and "line 1" in str(info.value)


# ---- end to end: the controller ------------------------------------------------------------


def signed_app(name: str, ns: str, repo: RepoHandle, dest: str) -> Obj:
    app = new_app(name, ns, repo.http_url, dest, path="app", interval="1s")
    app["spec"]["source"]["verify"] = {"mode": "gpg", "secretRef": {"name": "signers"}}
    return app


async def signature_condition(kube: KubeClient, ns: str, name: str, text: str) -> str:
    cond = condition(await app_status(kube, ns, name), "SignatureError")
    message = str((cond or {}).get("message", ""))
    return message if text in message else ""


async def test_controller_deploys_only_verified_commits(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    gpg_keys: GpgKeys,
    tmp_path: Path,
) -> None:
    alice = gpg_keys.new_key("Alice", "alice@example.com")
    bob = gpg_keys.new_key("Bob", "bob@example.com")
    await create_keys(
        kube,
        home,
        "signers",
        {
            "alice.asc": gpg_keys.public(alice),
            "bob.asc": gpg_keys.public(bob),
            "bob-revoked.asc": gpg_keys.revocation(bob),
        },
    )
    files = {"app/cm.yaml": cm_yaml("settings", {"color": "blue"})}
    good = git_repo.commit(files, message="blue", sign=gpg_keys.sign_options(alice))
    await kube.apply(signed_app("signed", home, git_repo, namespace))
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)):
        await eventually(lambda: synced_to(kube, home, "signed", good), WAIT, "first sync")
        live = await kube.get("v1", "ConfigMap", "settings", namespace)
        assert live is not None and live["data"] == {"color": "blue"}
        version = live["metadata"]["resourceVersion"]

        unsigned = git_repo.commit(
            {"app/cm.yaml": cm_yaml("settings", {"color": "red"})}, message="make it red"
        )
        message = await eventually(
            lambda: signature_condition(kube, home, "signed", unsigned[:7]), WAIT, "unsigned"
        )
        assert f"commit {unsigned[:7]} (make it red) is not signed" in message
        live = await kube.get("v1", "ConfigMap", "settings", namespace)
        assert live is not None and live["metadata"]["resourceVersion"] == version
        assert live["data"] == {"color": "blue"}

        by_bob = git_repo.commit(
            {"app/cm.yaml": cm_yaml("settings", {"color": "green"})},
            message="bob says green",
            sign=gpg_keys.sign_options(bob),
        )
        message = await eventually(
            lambda: signature_condition(kube, home, "signed", by_bob[:7]), WAIT, "revoked"
        )
        assert f"commit {by_bob[:7]} (bob says green) is signed by GPG key 0x{bob.keyid}" in message
        assert "(Bob <bob@example.com>), which is revoked" in message
        live = await kube.get("v1", "ConfigMap", "settings", namespace)
        assert live is not None and live["metadata"]["resourceVersion"] == version
        status = await app_status(kube, home, "signed")
        assert status["sync"]["revision"] == good
