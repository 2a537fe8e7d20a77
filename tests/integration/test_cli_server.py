"""``tether --server URL`` against the real controller (a ``Runtime`` in this process), the real
control plane and the real git server, with a real ServiceAccount token: every command that
works through the API prints what the direct command prints (the same JSON documents, the same
text where it holds no timestamps) and exits with the same code; a bad token, a server that
does not answer and an app the token may not read each fail clearly.

One Runtime serves the module; each test makes the Applications it changes.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from devcluster.gitserver import GitServer, RepoHandle
from devcluster.procs import free_port

from api_fixtures import (
    NEVER_READY,
    Result,
    app_account,
    cleanup_namespaces,
    install_crds,
    repo_credentials,
    started,
)
from api_fixtures import run_cli_without_kubeconfig as tether
from cluster_helpers import (
    REMOTE_NEVER_LOADS,
    WAIT,
    WEB_DEPLOYMENT,
    app_status,
    cm_yaml,
    eventually,
    new_app,
    synced_to,
    tether_loading,
)
from tether.api.application import API_VERSION, REFRESH_ANNOTATION
from tether.kube import KubeClient


@dataclass
class Setup:
    url: str
    home: str
    hidden: str
    repo: RepoHandle
    kubeconfig: str
    token: str
    audit_db: Path
    first: str

    async def direct(self, *args: str) -> Result:
        """``tether`` with the admin kubeconfig, talking to the Kubernetes API."""
        return await tether("--kubeconfig", self.kubeconfig, "-n", self.home, *args)

    async def remote(self, *args: str, token: str | None = None) -> Result:
        """``tether --server`` with the operator's token (no kubeconfig at all)."""
        return await tether(
            "--server", self.url, "--token", token or self.token, "-n", self.home, *args
        )


@pytest.fixture(scope="module")
async def setup(
    kube: KubeClient,
    kubeconfig: str,
    git_server: GitServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Setup]:
    await install_crds(kube)
    suffix = uuid.uuid4().hex[:8]
    home, hidden = f"cs-{suffix}", f"csh-{suffix}"
    for ns in (home, hidden):
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        await repo_credentials(kube, git_server, ns)
    repo = git_server.create_repo(f"cs-{suffix}")
    first = repo.commit(
        {
            "app/cm.yaml": cm_yaml("settings", {"color": "blue"}),
            "app/deploy.yaml": WEB_DEPLOYMENT,
            "slow/cm.yaml": cm_yaml("first", {"k": "v"}),
            "slow/web.yaml": NEVER_READY,
            # A wave after the never-ready one: the operation waits in wave 2 for ever.
            "slow/three.yaml": cm_yaml("three", {"k": "v"}).replace(
                "name: three", "name: three\n  annotations: {tether.dev/sync-wave: '3'}"
            ),
        },
        message="first deploy",
        author=("Alice", "alice@example.com"),
    )
    await kube.apply(
        new_app("web", home, repo.http_url, f"{home}-web", sync_options=["CreateNamespace=true"])
    )
    await kube.apply(new_app("secret-app", hidden, repo.http_url, f"{hidden}-d", auto_sync=False))
    token = await app_account(kube, home, "operator", ["get", "list", "sync"])
    tmp = tmp_path_factory.mktemp("cli-server")
    try:
        async with started(kubeconfig, tmp, [home, hidden]) as server:
            await eventually(lambda: synced_to(kube, home, "web", first), WAIT, "web synced")
            yield Setup(
                url=server.url,
                home=home,
                hidden=hidden,
                repo=repo,
                kubeconfig=kubeconfig,
                token=token,
                audit_db=tmp / "audit.db",
                first=first,
            )
    finally:
        dests = [f"{home}-web", f"{hidden}-d", *(f"{home}-{n}" for n in _made)]
        await cleanup_namespaces(kube, (home, hidden, *dests))


_made: list[str] = []
"""Apps the tests made; their destination namespaces are deleted at the end."""


async def manual_app(kube: KubeClient, s: Setup, name: str, path: str = "app") -> str:
    """A new app synced only when asked, deploying to a namespace of its own."""
    _made.append(name)
    dest = f"{s.home}-{name}"
    app = new_app(
        name,
        s.home,
        s.repo.http_url,
        dest,
        path,
        auto_sync=False,
        sync_options=["CreateNamespace=true"],
    )
    await kube.apply(app)
    await eventually(lambda: _compared(kube, s.home, name), WAIT, f"the controller compared {name}")
    return dest


async def _compared(kube: KubeClient, ns: str, name: str) -> bool:
    return bool(((await app_status(kube, ns, name)).get("sync") or {}).get("status"))


async def stable_pair(s: Setup, *args: str) -> tuple[Result, Result]:
    """The direct and the remote answer to ``args`` at a moment the app did not change: the
    direct command is asked before and after the remote one, until both direct answers agree
    (the controller writes the status while it reconciles)."""

    async def attempt() -> tuple[Result, Result] | None:
        before = await s.direct(*args)
        remote = await s.remote(*args)
        after = await s.direct(*args)
        return (before, remote) if before == after else None

    pair: tuple[Result, Result] = await eventually(attempt, WAIT, f"a stable {args}")
    return pair


# ---- reading ----------------------------------------------------------------------------


async def test_list_and_get_print_the_same_documents_and_tables(setup: Setup) -> None:
    for args in (
        ("app", "list", "-o", "json"),
        ("app", "list"),
        ("app", "get", "web", "-o", "json"),
        ("app", "get", "web", "-o", "yaml"),
        ("app", "get", "web"),
    ):
        direct, remote = await stable_pair(setup, *args)
        assert direct.code == remote.code == 0, (args, direct.err, remote.err)
        assert remote.out == direct.out, args
    direct, _ = await stable_pair(setup, "app", "get", "web", "-o", "json")
    doc = direct.json()
    assert "managedFields" not in doc["metadata"]
    assert doc["status"]["sync"]["status"] == "Synced"
    listed = (await setup.remote("app", "list", "-o", "json")).json()
    assert [a["metadata"]["name"] for a in listed["items"]] == ["web"]


async def test_diff_prints_the_same_document_and_text_with_the_same_exit_code(
    kube: KubeClient, setup: Setup
) -> None:
    await manual_app(kube, setup, "fresh")
    for args in (("app", "diff", "fresh", "-o", "json"), ("app", "diff", "fresh", "--no-color")):
        direct, remote = await stable_pair(setup, *args)
        assert direct.code == remote.code == 1, (direct.err, remote.err)
        assert remote.out == direct.out
    doc = json.loads((await setup.remote("app", "diff", "fresh", "-o", "json")).out)
    assert {r["kind"] for r in doc["resources"]} == {"ConfigMap", "Deployment"}
    assert {r["status"] for r in doc["resources"]} == {"Missing"}
    direct, remote = await stable_pair(setup, "app", "diff", "web")
    assert (direct.code, remote.code, remote.out) == (0, 0, direct.out)


async def test_remote_commands_load_neither_aiohttp_nor_the_engine(
    kube: KubeClient, setup: Setup
) -> None:
    await manual_app(kube, setup, "light")
    server = ("--server", setup.url, "--token", setup.token, "-n", setup.home)
    env = {"KUBECONFIG": "/nonexistent"}
    # The reads do not even start an event loop.
    reads = (("app", "list"), 0), (("app", "get", "light"), 0), (("app", "diff", "light"), 1)
    for args, code in reads:
        p, loaded = await tether_loading(
            *server, *args, modules=(*REMOTE_NEVER_LOADS, "asyncio"), env=env
        )
        assert p.returncode == code, (args, p.stdout, p.stderr)
        assert loaded == [], args
    for args, code in (
        (("app", "history", "light"), 0),
        (("app", "pin", "light", setup.first), 0),
        (("app", "unpin", "light"), 0),
        (("audit", "--app", "light"), 0),
        (("app", "drift", "light"), 0),
    ):
        p, loaded = await tether_loading(*server, *args, modules=REMOTE_NEVER_LOADS, env=env)
        assert p.returncode == code, (args, p.stdout, p.stderr)
        assert loaded == [], args
    p, _ = await tether_loading(*server, "app", "get", "light", "-o", "json", env=env)
    assert json.loads(p.stdout)["metadata"]["name"] == "light"


async def test_an_app_the_token_may_not_read_is_not_found_like_a_missing_one(
    setup: Setup,
) -> None:
    hidden = await tether(
        "--server", setup.url, "--token", setup.token, "-n", setup.hidden,
        "app", "get", "secret-app",
    )  # fmt: skip
    missing_remote = await setup.remote("app", "get", "no-such-app")
    missing_direct = await setup.direct("app", "get", "no-such-app")
    assert hidden.code == missing_remote.code == missing_direct.code == 2
    assert hidden.out == ""
    assert f"error: Application {setup.hidden}/secret-app not found" in hidden.err
    assert missing_remote.err == missing_direct.err
    assert hidden.err == missing_remote.err.replace(
        f"{setup.home}/no-such-app", f"{setup.hidden}/secret-app"
    )
    listed = await tether(
        "--server", setup.url, "--token", setup.token, "-n", setup.hidden, "app", "list",
        "-o", "json",
    )  # fmt: skip
    assert listed.code == 0 and listed.json()["items"] == []


# ---- acting -----------------------------------------------------------------------------


def _same_sync(text: str, name: str, dest: str) -> str:
    """A sync's output with what differs between two apps made alike put the same way."""
    return text.replace(dest, "DEST").replace(name, "APP")


async def test_sync_prints_the_same_outcome_and_waits_for_health(
    kube: KubeClient, setup: Setup
) -> None:
    dest_d = await manual_app(kube, setup, "by-kube")
    dest_r = await manual_app(kube, setup, "by-http")

    direct = await setup.direct("app", "sync", "by-kube", "--timeout", "90")
    remote = await setup.remote("app", "sync", "by-http", "--timeout", "90")
    assert direct.code == remote.code == 0, (direct, remote)
    assert "run by controller" in remote.out
    assert "Health: Healthy" in remote.out
    assert _same_sync(remote.out, "by-http", dest_r) == _same_sync(direct.out, "by-kube", dest_d)
    assert await kube.get("v1", "ConfigMap", "settings", dest_r) is not None
    op = (await app_status(kube, setup.home, "by-http"))["operationState"]
    assert op["operation"]["initiatedBy"] == f"system:serviceaccount:{setup.home}:operator"

    # Again, with nothing left to change, as JSON: the same document but for the operation.
    direct = await setup.direct("app", "sync", "by-kube", "-o", "json")
    remote = await setup.remote("app", "sync", "by-http", "-o", "json")
    assert direct.code == remote.code == 0
    d_doc, r_doc = direct.json(), remote.json()
    assert d_doc.pop("operationId") != r_doc.pop("operationId")
    assert r_doc == d_doc
    assert r_doc["phase"] == "Succeeded" and r_doc["byController"] is True


async def test_a_dry_run_answers_the_same_outcome_and_changes_nothing(
    kube: KubeClient, setup: Setup
) -> None:
    dest = await manual_app(kube, setup, "dry")
    before = (await kube.get(API_VERSION, "Application", "dry", setup.home) or {})["metadata"]

    direct = await setup.direct("app", "sync", "dry", "--dry-run", "-o", "json")
    remote = await setup.remote("app", "sync", "dry", "--dry-run", "-o", "json")
    assert direct.code == remote.code == 0, (direct.err, remote.err)
    d_doc, r_doc = direct.json(), remote.json()
    d_doc.pop("operationId")
    r_doc.pop("operationId")
    assert r_doc == d_doc
    assert r_doc["dryRun"] is True
    assert {r["action"] for r in r_doc["resources"]} == {"created"}
    text = await setup.remote("app", "sync", "dry", "--dry-run")
    assert text.code == 0
    assert "dry run, by the tether server: nothing was changed or recorded" in text.out
    assert await kube.get("v1", "ConfigMap", "settings", dest) is None
    after = (await kube.get(API_VERSION, "Application", "dry", setup.home) or {})["metadata"]
    assert after.get("annotations") == before.get("annotations")
    assert not (await kube.get(API_VERSION, "Application", "dry", setup.home) or {}).get(
        "operation"
    )


async def test_a_sync_that_outlasts_its_timeout_exits_1_and_terminate_op_stops_it(
    kube: KubeClient, setup: Setup
) -> None:
    await manual_app(kube, setup, "slow", path="slow")

    remote = await setup.remote("app", "sync", "slow", "--timeout", "3")
    assert remote.code == 1, remote
    assert "timed out:" in remote.err and "not finished" in remote.err

    stopped = await setup.remote("app", "terminate-op", "slow", "--timeout", "60")
    assert stopped.code == 0, stopped
    assert re.search(r"operation \S+ on slow: Failed", stopped.out), stopped.out
    op = (await app_status(kube, setup.home, "slow"))["operationState"]
    assert op["phase"] == "Failed" and "terminated" in op["message"]

    # Nothing runs now: both ways refuse with the same words and exit code.
    direct, remote = (
        await setup.direct("app", "terminate-op", "slow"),
        await setup.remote("app", "terminate-op", "slow"),
    )
    assert direct.code == remote.code == 2
    assert "no operation is running on Application" in remote.err
    assert remote.err == direct.err


async def test_refresh_and_wait_say_the_same(kube: KubeClient, setup: Setup) -> None:
    remote = await setup.remote("app", "refresh", "web")
    assert remote.code == 0, remote
    m = re.fullmatch(
        rf"application/web refresh requested \({re.escape(REFRESH_ANNOTATION)}=(\S+)\)\n",
        remote.out,
    )
    assert m is not None, remote.out
    app = await kube.get(API_VERSION, "Application", "web", setup.home) or {}
    assert app["metadata"]["annotations"][REFRESH_ANNOTATION] == m.group(1)
    direct = await setup.direct("app", "refresh", "web")
    assert direct.code == 0
    assert re.sub(r"=\S+\)", "=T)", direct.out) == re.sub(r"=\S+\)", "=T)", remote.out)

    await eventually(lambda: synced_to(kube, setup.home, "web", setup.first), WAIT)
    for args in (("app", "wait", "web", "--timeout", "60"), ("app", "wait", "web", "-o", "json")):
        direct, remote = await stable_pair(setup, *args)
        assert direct.code == remote.code == 0
        assert remote.out == direct.out

    await manual_app(kube, setup, "never-synced")
    direct, remote = await stable_pair(setup, "app", "wait", "never-synced", "--timeout", "1")
    assert direct.code == remote.code == 1
    assert "sync is OutOfSync" in remote.err
    assert remote.err == direct.err


async def test_history_lists_the_same_syncs(setup: Setup) -> None:
    args = ("app", "history", "web", "-o", "json")
    remote = await setup.remote(*args)
    direct = await setup.direct(*args, "--db", str(setup.audit_db))
    assert direct.code == remote.code == 0, (direct.err, remote.err)
    assert remote.json() == direct.json()
    assert remote.json()[-1]["author"].startswith("Alice")
    table = await setup.remote("app", "history", "web")
    assert table.code == 0 and "first deploy" in table.out


# ---- failing clearly --------------------------------------------------------------------


async def test_a_bad_token_is_refused_with_what_to_do(setup: Setup) -> None:
    bad = await setup.remote("app", "list", token="not-a-token")
    assert bad.code == 2 and bad.out == ""
    assert f"error: the tether server at {setup.url} did not accept the token" in bad.err
    assert "--token or $TETHER_TOKEN" in bad.err
    assert "not-a-token" not in bad.err


async def test_a_server_that_does_not_answer_is_named(setup: Setup) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    down = await tether("--server", url, "--token", setup.token, "app", "get", "web")
    assert down.code == 2
    assert f"error: cannot reach the tether server at {url}" in down.err
    assert setup.token not in down.err
    not_http = await tether("--server", "ftp://example", "app", "list")
    assert not_http.code == 2 and "is not an http(s) URL" in not_http.err


async def test_commands_the_api_does_not_serve_refuse_plainly(setup: Setup) -> None:
    for args, path in (
        (("app", "create", "x", "--repo", setup.repo.http_url), "app create"),
        (("app", "delete", "web"), "app delete"),
        (("controller",), "controller"),
        (("app", "sync", "web", "--dest-namespace", "elsewhere"), "app sync --dest-namespace"),
    ):
        refused = await setup.remote(*args)
        assert refused.code == 2, args
        assert (
            f"error: 'tether {path}' talks to the Kubernetes API; it is not available with "
            "--server" in refused.err
        ), refused.err


async def test_audit_and_drift_read_the_same_servers_trail(setup: Setup) -> None:
    """Without --token, the kubeconfig user's token goes to the server."""
    for args in (
        ("audit", "--app", f"{setup.home}/web", "-o", "json"),
        ("app", "drift", "web", "-o", "json"),
    ):
        remote = await tether(
            "--server", setup.url, "--kubeconfig", setup.kubeconfig, "-n", setup.home, *args
        )
        direct = await setup.direct(*args, "--db", str(setup.audit_db))
        assert direct.code == remote.code == 0, (args, direct.err, remote.err)
        assert remote.json() == direct.json()
    synced = await setup.direct(
        "audit", "--app", f"{setup.home}/web", "-o", "json", "--db", str(setup.audit_db)
    )
    assert any(r["kind"] == "sync" for r in synced.json())


async def test_pin_and_unpin_say_the_same_and_record_the_caller(
    kube: KubeClient, setup: Setup
) -> None:
    await manual_app(kube, setup, "pin-kube")
    await manual_app(kube, setup, "pin-http")
    user = f"system:serviceaccount:{setup.home}:operator"

    direct = await setup.direct("app", "pin", "pin-kube", setup.first, "--reason", "freeze")
    remote = await setup.remote("app", "pin", "pin-http", setup.first, "--reason", "freeze")
    assert direct.code == remote.code == 0, (direct.err, remote.err)
    assert f"application/pin-http pinned at {setup.first[:7]} by {user}\n" in remote.out
    by_direct = re.search(r" by (\S+)\n", direct.out)
    assert by_direct is not None
    assert remote.out.replace("pin-http", "X").replace(user, "U") == direct.out.replace(
        "pin-kube", "X"
    ).replace(by_direct.group(1), "U")
    app = await kube.get(API_VERSION, "Application", "pin-http", setup.home) or {}
    assert app["spec"]["pin"]["revisions"] == [setup.first]
    assert app["spec"]["pin"]["by"] == user and app["spec"]["pin"]["reason"] == "freeze"

    direct = await setup.direct("app", "unpin", "pin-kube")
    remote = await setup.remote("app", "unpin", "pin-http", "-o", "json")
    assert direct.code == remote.code == 0, (direct.err, remote.err)
    assert remote.json() == {"unpinned": [setup.first], "by": user}
    assert (
        direct.out
        == f"application/pin-kube unpinned (was at {setup.first[:7]}): it follows HEAD again\n"
    )
    app = await kube.get(API_VERSION, "Application", "pin-http", setup.home) or {}
    assert "pin" not in app["spec"]

    again = await setup.remote("app", "unpin", "pin-http")
    assert again.code == 2 and "is not pinned" in again.err


async def test_without_a_token_the_kubeconfig_users_token_is_sent(setup: Setup) -> None:
    args = ("-n", setup.home, "app", "get", "web", "-o", "json")
    remote = await tether("--server", setup.url, "--kubeconfig", setup.kubeconfig, *args)
    assert remote.code == 0, remote.err
    assert remote.json()["metadata"]["name"] == "web"
    none = await tether("--server", setup.url, *args)  # no token, no kubeconfig
    assert none.code == 2
    assert f"the tether server at {setup.url} did not accept the token" in none.err
