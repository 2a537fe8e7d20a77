"""``tether --server URL app rollback`` against the real controller (a ``Runtime`` in this
process), the real control plane and the real git server, with a real ServiceAccount token: it
prints what the direct command prints and exits with the same code when tether has no write
access (3, the same git commands), when the branch moved (4) and when it rolls back and syncs
(0, the commit authored by the token's user).

One Runtime serves the module; each test makes its own repository and Application.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from devcluster.gitserver import GitServer, RepoHandle

from cluster_helpers import (
    REMOTE_NEVER_LOADS,
    TETHER,
    WAIT,
    app_status,
    cm_yaml,
    eventually,
    new_app,
    release_applications,
    runtime_options,
    tether_loading,
)
from identities import grant, service_account_token
from tether.api.application import API_VERSION, crd_manifests
from tether.controller.runtime import Runtime
from tether.kube import KubeClient
from tether.service.identity import requester


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Setup:
    url: str
    home: str
    kubeconfig: str
    token: str
    author: str
    """The commit author the server makes of the token's user; the direct commands are
    given it with --author, so both print the same."""
    git_server: GitServer

    async def direct(self, *args: str) -> Result:
        """``tether`` with the admin kubeconfig, talking to the Kubernetes API."""
        return await tether("--kubeconfig", self.kubeconfig, "-n", self.home, *args)

    async def remote(self, *args: str) -> Result:
        """``tether --server`` with the operator's token (no kubeconfig at all)."""
        return await tether("--server", self.url, "--token", self.token, "-n", self.home, *args)

    async def remote_loading(
        self, *args: str
    ) -> tuple[subprocess.CompletedProcess[str], list[str]]:
        """``remote(args)``, and which of ``REMOTE_NEVER_LOADS`` it loaded."""
        server = ("--server", self.url, "--token", self.token, "-n", self.home)
        return await tether_loading(
            *server, *args, modules=REMOTE_NEVER_LOADS, env={"KUBECONFIG": "/nonexistent"}
        )

    async def rollback_both(self, name: str, *args: str) -> tuple[Result, Result]:
        """``app rollback NAME ARGS`` directly (as the same author), then over the API."""
        direct = await self.direct("app", "rollback", name, "--author", self.author, *args)
        remote = await self.remote("app", "rollback", name, *args)
        return direct, remote


async def tether(*args: str) -> Result:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "TETHER_SERVER")}
    env["KUBECONFIG"] = "/nonexistent"  # --server must not need one
    proc = await asyncio.create_subprocess_exec(
        TETHER,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await proc.communicate()
    return Result(proc.returncode or 0, out.decode(), err.decode())


MALLORY = ("Mallory Example", "mallory@example.com")

_dests: list[str] = []
"""Destination namespaces the tests' apps created; deleted at the end."""


@pytest.fixture(scope="module")
async def setup(
    kube: KubeClient,
    kubeconfig: str,
    git_server: GitServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Setup]:
    for crd in crd_manifests():
        await kube.apply(crd)
    await kube.wait_for_resource(API_VERSION, "Application")
    home = f"csr-{uuid.uuid4().hex[:8]}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": home}})
    base = git_server.http_url("x").rsplit("/", 1)[0]
    # Read access to every repository of the server; write access only where a test adds it.
    await secret(kube, home, "git-read", "repository", url=base, password=git_server.token)
    token = await service_account_token(kube, home, "operator")
    rule = {"apiGroups": ["tether.dev"], "resources": ["applications"]}
    await grant(kube, home, (home, "operator"), [{**rule, "verbs": ["get", "list", "sync"]}])
    user = f"system:serviceaccount:{home}:operator"
    tmp = tmp_path_factory.mktemp("cli-server-rollback")
    try:
        async with Runtime(runtime_options(home, tmp, kubeconfig)) as rt:
            yield Setup(
                url=f"http://127.0.0.1:{rt.port}",
                home=home,
                kubeconfig=kubeconfig,
                token=token,
                author=str(requester(user, None)),
                git_server=git_server,
            )
    finally:
        await release_applications(kube, home)
        for ns in (home, *_dests):
            await kube.delete("v1", "Namespace", ns, propagation="Background")


async def secret(kube: KubeClient, ns: str, name: str, label: str, **data: str) -> None:
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": {"tether.dev/secret-type": label},
            },
            "stringData": {"username": "git", **data},
        }
    )


async def deployed_app(kube: KubeClient, s: Setup, name: str) -> tuple[RepoHandle, str, str]:
    """A repository with a good and then a bad commit, and an app (synced only when asked)
    synced to the bad one: the repository, the good and the bad sha."""
    repo = s.git_server.create_repo(f"{name}-{uuid.uuid4().hex[:8]}")
    good = repo.commit({"app/cm.yaml": cm_yaml("colour", {"colour": "blue"})}, message="blue")
    bad = repo.commit(
        {"app/cm.yaml": cm_yaml("colour", {"colour": "red"})},
        message="Paint it red",
        author=MALLORY,
    )
    dest = f"{s.home}-{name}"
    _dests.append(dest)
    await kube.apply(
        new_app(
            name,
            s.home,
            repo.http_url,
            dest,
            auto_sync=False,
            sync_options=["CreateNamespace=true"],
        )
    )
    await sync_to(kube, s, name, bad)
    return repo, good, bad


async def sync_to(kube: KubeClient, s: Setup, name: str, sha: str) -> None:
    async def compared() -> bool:
        return ((await app_status(kube, s.home, name)).get("sync") or {}).get("revision") == sha

    await eventually(compared, WAIT, f"{name} compared at {sha[:10]}")
    done = await s.direct("app", "sync", name, "--timeout", "60")
    assert done.code == 0, done.out + done.err


async def refresh(kube: KubeClient, ns: str, name: str) -> None:
    app = await kube.get(API_VERSION, "Application", name, ns)
    assert app is not None
    await kube.merge_patch(
        app, {"metadata": {"annotations": {"tether.dev/refresh": uuid.uuid4().hex}}}
    )


def commit_author(repo: RepoHandle, sha: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo.path), "show", "-s", "--format=%an <%ae>", sha],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


SHA = re.compile(r"\b[0-9a-f]{10,40}\b")
REVERT_SUBJECT = re.compile(r'\(Revert "[^"]*"[^)]*\)')
LISTS = ("between", "rolledBack")
VOLATILE = ("commit", "head", "sha", "time", "operationId", "message", "target", "revision")


def text_shape(text: str) -> str:
    """Text output without its shas and the subject of the commit gone back to (the previous
    rollback's, which names how many commits it undid)."""
    return REVERT_SUBJECT.sub("(SUBJECT)", SHA.sub("SHA", text))


def shape(value: Any, key: str = "") -> Any:
    """A document with what differs from one rollback to the next (shas, times, operation
    ids, messages that quote shas) replaced by its type."""
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        # The second rollback also rolls back the first one: compare the newest commit only.
        return [shape(v) for v in (value[:1] if key in LISTS else value)]
    if key in VOLATILE or (isinstance(value, str) and SHA.search(value)):
        return type(value).__name__
    return value


# ---- no write access: exit 3 and the same commands -------------------------------------------


async def test_without_write_access_both_print_the_same_commands_and_exit_3(
    kube: KubeClient, setup: Setup
) -> None:
    repo, good, bad = await deployed_app(kube, setup, "manual")
    direct, remote = await setup.rollback_both("manual", "--to", good)
    assert direct.code == remote.code == 3, (direct, remote)
    assert remote.out == direct.out
    assert remote.err == direct.err
    assert "no write access" in remote.err and "nothing was" in remote.err
    assert f"git checkout {good} -- app" in remote.out
    assert f"git commit --author '{setup.author}'" in remote.out
    assert f"This reverts commit {bad}." in remote.out
    assert setup.git_server.token not in remote.out + remote.err

    direct, remote = await setup.rollback_both("manual", "--to", good, "-o", "json")
    assert direct.code == remote.code == 3, (direct, remote)
    assert remote.json() == direct.json()
    doc = remote.json()
    assert doc["state"] == "manual" and doc["author"] == setup.author
    [plan] = doc["repositories"]
    assert plan["target"] == good and plan["head"] == bad and plan["commit"] == ""
    assert f"git checkout {good} -- app" in plan["commands"]
    assert [c["subject"] for c in plan["rolledBack"]] == ["Paint it red"]
    assert repo.head() == bad, "nothing was pushed"
    assert (await app_status(kube, setup.home, "manual"))["sync"]["revision"] == bad

    # The server does the work: the command loads neither Git nor the engine to ask for it.
    p, loaded = await setup.remote_loading("app", "rollback", "manual", "--to", good)
    assert p.returncode == 3 and f"git checkout {good} -- app" in p.stdout, p
    assert loaded == []


# ---- the branch moved: exit 4 ----------------------------------------------------------------


async def test_when_the_branch_moved_both_refuse_with_exit_4(
    kube: KubeClient, setup: Setup
) -> None:
    repo, good, bad = await deployed_app(kube, setup, "moved")
    other = repo.commit(
        {"app/cm.yaml": cm_yaml("colour", {"colour": "green"})},
        message="Try green",
        author=("Bob Builder", "bob@example.com"),
    )
    direct, remote = await setup.rollback_both("moved", "--to", good)
    assert direct.code == remote.code == 4, (direct, remote)
    assert remote.out == direct.out == ""
    assert remote.err == direct.err
    assert "refused:" in remote.err and "nothing was pushed" in remote.err
    assert other[:10] in remote.err and "Try green" in remote.err and "Bob Builder" in remote.err
    assert f"--expect {other[:12]}" in remote.err
    assert repo.head() == other
    assert (await app_status(kube, setup.home, "moved"))["sync"]["revision"] == bad
    p, loaded = await setup.remote_loading("app", "rollback", "moved", "--to", good)
    assert (p.returncode, p.stderr) == (4, remote.err) and loaded == []


# ---- with write access: the same result, exit 0, authored by the token's user ----------------


async def roll_back(
    kube: KubeClient, s: Setup, repo: RepoHandle, how: str, *args: str, again: bool = True
) -> tuple[Result, str]:
    """``app rollback shop ARGS`` (``how``: direct or remote), which must write a commit as
    the token's user and sync it; then (``again``) a bad commit is synced once more. The
    output and the restoring commit."""
    before = repo.head()
    if how == "direct":
        result = await s.direct("app", "rollback", "shop", "--author", s.author, *args)
    else:
        result = await s.remote("app", "rollback", "shop", *args)
    assert result.code == 0, result
    restoring = repo.head()
    assert restoring != before
    assert commit_author(repo, restoring) == s.author
    st = await app_status(kube, s.home, "shop")
    assert st["sync"]["revision"] == restoring
    op = st["operationState"]["operation"]
    assert (op["trigger"], op["initiatedBy"]) == ("rollback", s.author)
    if again:
        bad = repo.commit(
            {"app/cm.yaml": cm_yaml("colour", {"colour": "red"})},
            message="Paint it red",
            author=MALLORY,
        )
        await refresh(kube, s.home, "shop")
        await sync_to(kube, s, "shop", bad)
    return result, restoring


async def test_with_write_access_both_roll_back_and_sync_alike(
    kube: KubeClient, setup: Setup
) -> None:
    repo, good, _ = await deployed_app(kube, setup, "shop")
    await secret(
        kube, setup.home, "shop-push", "repository-write", url=repo.http_url,
        password=setup.git_server.token,
    )  # fmt: skip
    direct, first = await roll_back(kube, setup, repo, "direct", "--to", good, "-o", "json")
    remote, second = await roll_back(kube, setup, repo, "remote", "--to", good, "-o", "json")
    one, two = direct.json(), remote.json()
    assert one["state"] == two["state"] == "synced"
    assert one["repositories"][0]["commit"] == first
    assert two["repositories"][0]["commit"] == second
    assert two["sync"]["phase"] == "Succeeded" and two["sync"]["revision"] == second
    assert two["syncDetails"]["waitedForHealth"] is True
    assert two["syncDetails"]["runner"] == one["syncDetails"]["runner"] != ""
    a, b = shape(one), shape(two)
    assert {k: v for k, v in b.items() if a.get(k) != v} == {}, a
    [plan_a], [plan_b] = a["repositories"], b["repositories"]
    assert {k: v for k, v in plan_b.items() if plan_a.get(k) != v} == {}, plan_a
    assert [c["subject"] for c in two["repositories"][0]["rolledBack"]] == [
        "Paint it red",
        'Revert "Paint it red"',
        "Paint it red",
    ]

    # The text, one step back each time (to the previous rollback, one commit to undo).
    direct, _ = await roll_back(kube, setup, repo, "direct", "--steps", "1")
    remote, _ = await roll_back(kube, setup, repo, "remote", "--steps", "1", again=False)
    assert text_shape(remote.out) == text_shape(direct.out)
    assert "rolling back 1 commit(s)" in remote.out and "pushed " in remote.out
    assert "Succeeded" in remote.out and "Health: Healthy" in remote.out
    live = await kube.get("v1", "ConfigMap", "colour", f"{setup.home}-shop")
    assert live is not None and live["data"] == {"colour": "blue"}


async def test_author_is_refused_with_server(setup: Setup) -> None:
    result = await setup.remote("app", "rollback", "any", "--author", "Eve <eve@example.com>")
    assert result.code == 2
    assert "--author cannot be given with --server" in result.err
