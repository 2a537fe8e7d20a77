"""The HTTP API against the real controller (a ``Runtime`` in this process), the real control
plane and the real git server, with real ServiceAccounts and real RBAC: every route refuses
a missing or bad token, hides what the caller may not read (404 like a missing app), and
does what it says for a caller who may.

One Runtime serves the whole module; each test reads what it needs and changes only the
objects it owns.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import yaml
from devcluster.gitserver import GitServer, RepoHandle

from api_fixtures import (
    NEVER_READY,
    api_call,
    app_account,
    cleanup_namespaces,
    install_crds,
    repo_credentials,
    started,
)
from cluster_helpers import (
    WAIT,
    WEB_DEPLOYMENT,
    app_status,
    cm_yaml,
    eventually,
    first_polls_done,
    github_push,
    new_app,
    release_applications,
    synced_to,
)
from tether.api.application import API_VERSION
from tether.controller.runtime import Runtime
from tether.kube import KubeClient
from tether.server.auth.settings import AuthSettings

READ = ["get", "list"]
SECRET = yaml.safe_dump(
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "stringData": {"password": "s3cr3t-value"},
    }
)
APP_ROUTES = [
    ("GET", ""),
    ("GET", "/tree"),
    ("GET", "/diff"),
    ("GET", "/resource?group=&version=v1&kind=ConfigMap&namespace=x&name=settings"),
    ("GET", "/history"),
    ("GET", "/events"),
    ("GET", "/drift"),
    ("POST", "/sync"),
    ("POST", "/refresh"),
    ("DELETE", "/operation"),
    ("POST", "/rollback"),
    ("POST", "/pin"),
    ("DELETE", "/pin"),
]


@dataclass
class Api:
    url: str
    rt: Runtime
    repo: RepoHandle
    ns_a: str
    ns_b: str
    dest_a: str
    admin: str
    nobody: str
    reader_a: str
    operator_a: str
    first_sha: str
    suffix: str

    def user(self, account: str) -> str:
        return f"system:serviceaccount:{self.ns_a}:{account}"

    async def call(
        self,
        method: str,
        path: str,
        token: str | None,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        return await api_call(self.url, method, path, token, body, params)

    def app(self, ns: str, name: str, sub: str = "") -> str:
        return f"/api/v1/applications/{ns}/{name}{sub}"


@pytest.fixture(scope="module")
async def api(
    kube: KubeClient,
    kubeconfig: str,
    git_server: GitServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Api]:
    await install_crds(kube)
    suffix = uuid.uuid4().hex[:8]
    ns_a, ns_b, dest_a, dest_b, dest_s = (
        f"apa-{suffix}",
        f"apb-{suffix}",
        f"apda-{suffix}",
        f"apdb-{suffix}",
        f"apds-{suffix}",
    )
    extra = tuple(f"api-{i}-{suffix}" for i in (1, 2, 3))
    namespaces = (ns_a, ns_b, dest_a, dest_b, dest_s, *extra)
    for ns in namespaces:
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for ns in (ns_a, ns_b):
        await repo_credentials(kube, git_server, ns)
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "tether-webhook", "namespace": ns_a},
            "stringData": {"github.secret": "webhook-test-secret"},
        }
    )
    repo = git_server.create_repo(f"shop-{suffix}")
    first = repo.commit(
        {
            "app/cm.yaml": cm_yaml("settings", {"color": "blue"}),
            "app/deploy.yaml": WEB_DEPLOYMENT,
            "app/secret.yaml": SECRET,
            "extra/cm.yaml": cm_yaml("extra", {"k": "v"}),
            "slow/cm.yaml": cm_yaml("first", {"k": "v"}),
            "slow/web.yaml": NEVER_READY,
            "slow/three.yaml": cm_yaml("three", {"k": "v"}).replace(
                "name: three", "name: three\n  annotations: {tether.dev/sync-wave: '3'}"
            ),
        },
        message="first deploy",
        author=("Alice", "alice@example.com"),
    )
    await kube.apply(new_app("web", ns_a, repo.http_url, dest_a))
    await kube.apply(new_app("other", ns_b, repo.http_url, dest_b))
    for name in ("api-1", "api-2", "api-3"):
        dest = f"{name}-{suffix}"
        await kube.apply(new_app(name, ns_a, repo.http_url, dest, path="extra", auto_sync=False))
    await kube.apply(new_app("slow", ns_a, repo.http_url, dest_s, path="slow", auto_sync=False))

    tokens = {
        "nobody": await app_account(kube, ns_a, "nobody", []),
        "reader": await app_account(kube, ns_a, "reader", READ, grant_name="api-reader"),
        "operator": await app_account(kube, ns_a, "operator", [*READ, "sync"], "api-op"),
    }
    admin = await kube.bearer_token()
    assert admin
    tmp = tmp_path_factory.mktemp("api")
    # Every route is tried with a bad token from one address: more failures than the login
    # limit allows (the limit has tests of its own).
    auth = AuthSettings(failure_limit=10_000)
    try:
        async with started(kubeconfig, tmp, [ns_a, ns_b], auth=auth) as server:
            await eventually(lambda: synced_to(kube, ns_a, "web", first), WAIT, "web synced")
            yield Api(
                url=server.url,
                rt=server.rt,
                repo=repo,
                ns_a=ns_a,
                ns_b=ns_b,
                dest_a=dest_a,
                admin=admin,
                nobody=tokens["nobody"],
                reader_a=tokens["reader"],
                operator_a=tokens["operator"],
                first_sha=first,
                suffix=suffix,
            )
    finally:
        await cleanup_namespaces(kube, namespaces)


def every_route(api: Api, ns: str, name: str) -> list[tuple[str, str]]:
    return [
        ("GET", "/api/v1/applications"),
        *((m, api.app(ns, name, sub)) for m, sub in APP_ROUTES),
        ("GET", "/api/v1/stream/applications"),
        ("GET", "/api/v1/settings"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/v1/audit"),
    ]


# ---- who may call -----------------------------------------------------------------------


async def test_every_route_refuses_no_token_and_a_bad_token(api: Api) -> None:
    for method, path in every_route(api, api.ns_a, "web"):
        for token in (None, "not-a-token"):
            status, body = await api.call(method, path, token)
            assert status == 401, (method, path, token, body)
            assert set(body) == {"error", "reason", "code", "hint"}
            assert body["code"] == 401 and body["reason"] == "Unauthorized"


async def test_a_token_without_rbac_sees_nothing_and_gets_404_like_a_missing_app(api: Api) -> None:
    status, body = await api.call("GET", "/api/v1/applications", api.nobody)
    assert (status, body["items"], body["total"]) == (200, [], 0)
    status, audit = await api.call("GET", "/api/v1/audit", api.nobody)
    assert (status, audit) == (200, [])
    for method, sub in APP_ROUTES:
        status, hidden = await api.call(method, api.app(api.ns_a, "web", sub), api.nobody)
        # The same answer an existing reader gets for an app that does not exist.
        _, missing = await api.call(method, api.app(api.ns_a, "no-such-app", sub), api.admin)
        assert status == 404, (method, sub, hidden)
        assert hidden == {**missing, "error": missing["error"].replace("no-such-app", "web")}
        assert hidden["error"] == f"Application {api.ns_a}/web not found"


async def test_a_reader_of_one_namespace_sees_only_that_namespace(api: Api) -> None:
    status, body = await api.call("GET", "/api/v1/applications", api.reader_a)
    assert status == 200
    assert {a["metadata"]["namespace"] for a in body["items"]} == {api.ns_a}
    assert "web" in [a["metadata"]["name"] for a in body["items"]]
    status, body = await api.call("GET", "/api/v1/applications", api.admin)
    assert {api.ns_a, api.ns_b} <= {a["metadata"]["namespace"] for a in body["items"]}
    status, body = await api.call("GET", api.app(api.ns_a, "web"), api.reader_a)
    assert status == 200 and body["metadata"]["name"] == "web"
    assert "managedFields" not in body["metadata"]
    for method, sub in APP_ROUTES:
        status, body = await api.call(method, api.app(api.ns_b, "other", sub), api.reader_a)
        assert status == 404 and body["error"] == f"Application {api.ns_b}/other not found"
    status, body = await api.call(
        "GET", "/api/v1/applications", api.reader_a, params={"namespace": api.ns_b}
    )
    assert (status, body["items"]) == (200, [])
    status, records = await api.call("GET", "/api/v1/audit", api.reader_a)
    assert status == 200 and records
    assert {r["app"].split("/")[0] for r in records} == {api.ns_a}


async def test_a_reader_who_may_not_sync_gets_403_for_every_action(api: Api) -> None:
    before = await app_status_rv(api)
    for method, sub in APP_ROUTES:
        if method == "GET" or sub == "/refresh":
            continue
        status, body = await api.call(method, api.app(api.ns_a, "web", sub), api.reader_a, {})
        assert status == 403, (method, sub, body)
        assert body["reason"] == "Forbidden"
        assert f"{api.user('reader')} may not sync" in body["error"]
    assert await app_status_rv(api) == before, "a refused action changed the Application"


async def app_status_rv(api: Api) -> str:
    obj = await api.rt.kube_client.get(API_VERSION, "Application", "web", api.ns_a)
    return str((obj or {})["metadata"]["resourceVersion"])


async def test_the_webhook_still_answers_without_a_bearer_token(api: Api) -> None:
    body, headers = github_push(api.repo, api.first_sha)
    async with (
        aiohttp.ClientSession() as s,
        s.post(api.url + "/api/webhook", data=body, headers=headers) as resp,
    ):
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "accepted"


# ---- reading ----------------------------------------------------------------------------


async def test_the_list_pages_searches_and_filters(api: Api) -> None:
    whole_params = {"namespace": api.ns_a}
    _, whole = await api.call("GET", "/api/v1/applications", api.admin, params=whole_params)
    names = [a["metadata"]["name"] for a in whole["items"]]
    assert {"api-1", "api-2", "api-3", "slow", "web"} <= set(names)
    assert names == sorted(names) and whole["total"] == len(names) and whole["continue"] == ""
    seen: list[str] = []
    token = ""
    while True:
        params = {"namespace": api.ns_a, "limit": "2", **({"continue": token} if token else {})}
        status, body = await api.call("GET", "/api/v1/applications", api.admin, params=params)
        assert status == 200 and len(body["items"]) <= 2
        assert body["total"] == len(names)
        seen += [a["metadata"]["name"] for a in body["items"]]
        token = body["continue"]
        if not token:
            break
    assert seen == names
    _, body = await api.call("GET", "/api/v1/applications", api.admin, params={"search": "api-"})
    assert [a["metadata"]["name"] for a in body["items"]] == ["api-1", "api-2", "api-3"]
    _, body = await api.call("GET", "/api/v1/applications", api.admin, params={"search": "slow"})
    assert [a["metadata"]["name"] for a in body["items"]] == ["slow"]
    params = {"namespace": api.ns_a, "sync": "Synced", "health": "Healthy", "project": "default"}
    _, body = await api.call("GET", "/api/v1/applications", api.admin, params=params)
    assert "web" in [a["metadata"]["name"] for a in body["items"]]
    status, body = await api.call("GET", "/api/v1/applications", api.admin, params={"limit": "0"})
    assert status == 400 and body["reason"] == "BadRequest"


async def test_the_tree_goes_from_deployment_to_replicaset_to_pod(api: Api) -> None:
    async def chain() -> dict[str, dict[str, Any]] | None:
        status, body = await api.call("GET", api.app(api.ns_a, "web", "/tree"), api.reader_a)
        assert status == 200
        by_kind = {n["kind"]: n for n in body["nodes"]}
        return by_kind if {"ReplicaSet", "Pod"} <= set(by_kind) else None

    nodes = await eventually(chain, WAIT, "a Pod in the tree")
    deploy, rs, pod = nodes["Deployment"], nodes["ReplicaSet"], nodes["Pod"]
    assert deploy["managed"] and deploy["status"] == "Synced" and deploy["parents"] == []
    assert rs["parents"] == [deploy["uid"]] and not rs["managed"]
    assert pod["parents"] == [rs["uid"]] and pod["namespace"] == api.dest_a
    assert nodes["Secret"]["managed"] and nodes["ConfigMap"]["managed"]


async def test_diff_and_drift_after_a_live_edit(api: Api) -> None:
    kube = api.rt.kube_client
    live = await kube.get("v1", "ConfigMap", "settings", api.dest_a)
    assert live is not None
    await kube.merge_patch(live, {"data": {"color": "hacked"}}, field_manager="kubectl-edit")
    status, body = await api.call("GET", api.app(api.ns_a, "web", "/diff"), api.reader_a)
    assert status == 200 and body["sync"] == "OutOfSync" and body["revision"] == api.first_sha
    (cm,) = [r for r in body["resources"] if r["kind"] == "ConfigMap"]
    assert cm["changedPaths"] == ["data.color"]
    assert "-  color: hacked" in cm["diff"] and "+  color: blue" in cm["diff"]

    async def drift() -> list[dict[str, Any]]:
        status, body = await api.call("GET", api.app(api.ns_a, "web", "/drift"), api.reader_a)
        assert status == 200
        return [e for e in body["items"] if e["object"]["name"] == "settings"]

    (entry, *_) = await eventually(drift, WAIT, "the drift in the timeline")
    assert entry["manager"] == "kubectl-edit"
    await kube.merge_patch(live, {"data": {"color": "blue"}}, field_manager="kubectl-edit")


async def test_a_resource_of_the_tree_with_its_secret_masked_and_nothing_else(api: Api) -> None:
    q = {"group": "", "version": "v1", "kind": "Secret", "namespace": api.dest_a, "name": "creds"}
    status, body = await api.call(
        "GET", api.app(api.ns_a, "web", "/resource"), api.reader_a, params=q
    )
    assert status == 200, body
    assert body["live"]["data"] == {"password": "********"}
    assert "tether.dev/manifest-hash" not in body["live"]["metadata"]["annotations"]
    assert body["desired"]["metadata"]["name"] == "creds"
    assert "s3cr3t" not in str(body) and "czNjcjN0" not in str(body)  # nor its base64
    q = {**q, "kind": "ConfigMap", "name": "settings"}
    status, body = await api.call(
        "GET", api.app(api.ns_a, "web", "/resource"), api.reader_a, params=q
    )
    assert status == 200 and body["live"]["kind"] == "ConfigMap"
    assert "managedFields" not in body["live"]["metadata"]
    # An object of the cluster that is not in the app's tree: refused, never read.
    for other in (
        {**q, "kind": "Secret", "name": "git-creds", "namespace": api.ns_a},
        {**q, "kind": "ConfigMap", "name": "extra", "namespace": api.dest_a},
    ):
        status, body = await api.call(
            "GET", api.app(api.ns_a, "web", "/resource"), api.admin, params=other
        )
        assert status == 404 and "is not part of Application" in body["error"]


async def test_history_has_the_author_and_a_commit_link(api: Api) -> None:
    status, body = await api.call("GET", api.app(api.ns_a, "web", "/history"), api.reader_a)
    assert status == 200 and body["from"] == "audit"
    first = next(e for e in body["items"] if e["revision"] == api.first_sha)
    assert first["author"] == "Alice <alice@example.com>" and first["message"] == "first deploy"
    repo_path = api.repo.http_url.removesuffix(".git")
    assert first["commitURL"] == f"{repo_path}/commit/{api.first_sha}"
    assert first["initiatedBy"] == ""  # the controller synced it on its own


async def test_events_about_the_app(api: Api) -> None:
    async def events() -> list[dict[str, Any]]:
        status, body = await api.call("GET", api.app(api.ns_a, "web", "/events"), api.reader_a)
        assert status == 200
        return list(body["items"])

    items = await eventually(events, WAIT, "events")
    assert all(
        e["object"] == {"kind": "Application", "name": "web", "namespace": api.ns_a} for e in items
    )
    assert {"type", "reason", "message", "count", "firstTimestamp", "lastTimestamp"} <= set(
        items[0]
    )


async def test_settings_and_the_openapi_document(api: Api) -> None:
    status, body = await api.call("GET", "/api/v1/settings", api.nobody)
    assert status == 200 and body["namespaces"] == sorted([api.ns_a, api.ns_b])
    assert body["identity"] == api.rt.identity
    status, doc = await api.call("GET", "/api/v1/openapi.json", api.nobody)
    assert status == 200 and doc["openapi"] == "3.1.0"
    assert "/api/v1/applications/{namespace}/{name}/tree" in doc["paths"]


# ---- acting -----------------------------------------------------------------------------


async def test_sync_is_requested_and_run_by_the_controller_as_the_caller(api: Api) -> None:
    path = api.app(api.ns_a, "api-1", "/sync")
    status, body = await api.call("POST", path, api.operator_a, {"prune": False})
    assert status == 202, body
    op_id = body["operation"]["id"]
    assert body["operation"]["initiatedBy"] == api.user("operator")
    assert body["controller"] == api.rt.identity
    kube = api.rt.kube_client

    async def ended() -> dict[str, Any] | None:
        op = (await app_status(kube, api.ns_a, "api-1")).get("operationState") or {}
        same = (op.get("operation") or {}).get("id") == op_id
        return op if same and op.get("phase") not in ("Running", "Terminating") else None

    op = await eventually(ended, WAIT, "the requested sync")
    assert op["phase"] == "Succeeded", op
    assert op["operation"]["initiatedBy"] == api.user("operator")
    store = api.rt.store
    assert store is not None

    async def audited() -> list[Any]:
        recs = await store.query(app=f"{api.ns_a}/api-1", kinds=["sync"])
        return [r for r in recs if r.user == api.user("operator")]

    assert await eventually(audited, WAIT, "the sync's audit record with the user")
    _, history = await api.call("GET", api.app(api.ns_a, "api-1", "/history"), api.reader_a)
    assert history["items"][0]["initiatedBy"] == api.user("operator")
    # A sync while one runs is refused with a reason a program can read.
    status, body = await api.call("POST", path, api.operator_a, {"revision": 42})
    assert status == 400 and "'revision' must be a string" in body["error"]


async def test_a_dry_run_answers_at_once_and_changes_nothing(api: Api) -> None:
    path = api.app(api.ns_a, "api-2", "/sync")
    before = await api.rt.kube_client.get(API_VERSION, "Application", "api-2", api.ns_a)
    status, body = await api.call("POST", path, api.operator_a, {"dryRun": True})
    assert status == 200, body
    assert body["outcome"]["dryRun"] is True
    after = await api.rt.kube_client.get(API_VERSION, "Application", "api-2", api.ns_a)
    assert before is not None and after is not None
    assert (after.get("operation"), (after.get("status") or {}).get("operationState")) == (
        before.get("operation"),
        (before.get("status") or {}).get("operationState"),
    )
    assert await api.rt.kube_client.get("v1", "ConfigMap", "extra", f"api-2-{api.suffix}") is None


async def test_refresh_needs_only_get_and_is_audited(api: Api) -> None:
    status, body = await api.call("POST", api.app(api.ns_a, "api-3", "/refresh"), api.reader_a)
    assert status == 202, body
    obj = await api.rt.kube_client.get(API_VERSION, "Application", "api-3", api.ns_a)
    assert obj is not None
    assert obj["metadata"]["annotations"]["tether.dev/refresh"] == body["requested"]
    store = api.rt.store
    assert store is not None
    recs = await store.query(app=f"{api.ns_a}/api-3", kinds=["refresh"])
    assert [r.user for r in recs] == [api.user("reader")]


async def test_terminate_stops_the_running_operation_and_is_audited(api: Api) -> None:
    path = api.app(api.ns_a, "slow", "/operation")
    status, body = await api.call("DELETE", path, api.operator_a)
    assert status == 409 and "no operation is running" in body["error"]
    assert body["reason"] == "NoOperationRunning"
    status, body = await api.call("POST", api.app(api.ns_a, "slow", "/sync"), api.operator_a)
    assert status == 202, body
    op_id = body["operation"]["id"]
    kube = api.rt.kube_client

    async def in_wave_2() -> bool:
        op = (await app_status(kube, api.ns_a, "slow")).get("operationState") or {}
        return (op.get("operation") or {}).get("id") == op_id and op.get("wave") == 2

    await eventually(in_wave_2, WAIT, "the sync waiting in wave 2")
    status, body = await api.call("DELETE", path, api.operator_a)
    assert status == 200, body
    assert body["operationState"]["phase"] == "Terminating"
    assert body["operationState"]["operation"]["id"] == op_id

    async def failed() -> dict[str, Any] | None:
        op = (await app_status(kube, api.ns_a, "slow")).get("operationState") or {}
        return op if op.get("phase") == "Failed" else None

    op = await eventually(failed, WAIT, "the operation ended")
    assert "terminated" in op["message"]
    store = api.rt.store
    assert store is not None
    recs = await store.query(app=f"{api.ns_a}/slow", kinds=["terminate"])
    assert [r.user for r in recs] == [api.user("operator")]


async def test_pin_unpin_and_a_rollback_with_nothing_to_do(api: Api) -> None:
    path = api.app(api.ns_a, "api-3", "/pin")
    status, body = await api.call("POST", path, api.operator_a, {})
    assert status == 400 and "'revision' is required" in body["error"]
    status, body = await api.call(
        "POST", path, api.operator_a, {"revision": api.first_sha, "reason": "freeze"}
    )
    assert status == 200, body
    assert body["pin"]["by"] == api.user("operator")
    obj = await api.rt.kube_client.get(API_VERSION, "Application", "api-3", api.ns_a)
    assert obj is not None and obj["spec"]["pin"]["revisions"] == [api.first_sha]
    status, body = await api.call("DELETE", path, api.operator_a)
    assert status == 200 and body == {"unpinned": [api.first_sha], "by": api.user("operator")}
    status, body = await api.call("DELETE", path, api.operator_a)
    assert status == 409 and "is not pinned" in body["error"]
    assert body["reason"] == "NotPinned"

    status, body = await api.call(
        "POST", api.app(api.ns_a, "web", "/rollback"), api.operator_a, {"to": api.first_sha}
    )
    assert status == 200, body
    assert body["state"] == "nothing"


# ---- the stream --------------------------------------------------------------------------


async def read_events(resp: aiohttp.ClientResponse, until: str) -> list[str]:
    """The stream's lines up to (and with) the first that contains ``until``."""
    lines: list[str] = []
    async with asyncio.timeout(WAIT):
        while True:
            line = (await resp.content.readline()).decode()
            if not line:
                raise AssertionError(f"the stream ended before {until!r}: {lines}")
            lines.append(line.rstrip("\n"))
            if until in line:
                return lines


async def test_the_stream_sends_what_the_caller_may_see_and_then_changes(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.reader_a}"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as s,
        s.get(api.url + "/api/v1/stream/applications", headers=headers) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert resp.headers["Cache-Control"] == "no-cache"
        snapshot = "\n".join(await read_events(resp, ": ready"))
        assert '"type":"ADDED"' in snapshot and f'"namespace":"{api.ns_a}"' in snapshot
        assert f'"namespace":"{api.ns_b}"' not in snapshot, "an app the reader may not get"
        obj = await api.rt.kube_client.get(API_VERSION, "Application", "api-2", api.ns_a)
        assert obj is not None
        mark = uuid.uuid4().hex
        await api.rt.kube_client.merge_patch(obj, {"metadata": {"annotations": {"mark": mark}}})
        lines = await read_events(resp, mark)
        assert lines[-2] == "event: application" and '"type":"MODIFIED"' in lines[-1]

    # Nothing at all for a caller without RBAC: the snapshot ends at once, empty.
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as s,
        s.get(
            api.url + "/api/v1/stream/applications",
            headers={"Authorization": f"Bearer {api.nobody}"},
        ) as resp,
    ):
        assert await read_events(resp, ": ready") == [": ready"]


async def test_a_rollback_writes_git_as_the_caller_and_syncs(
    api: Api, kube: KubeClient, git_repo: RepoHandle
) -> None:
    good = git_repo.commit({"app/cm.yaml": cm_yaml("colour", {"colour": "blue"})}, message="blue")
    dest = f"aprb-{api.suffix}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": dest}})
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "push",
                "namespace": api.ns_a,
                "labels": {"tether.dev/secret-type": "repository"},
            },
            "stringData": {
                "url": git_repo.http_url,
                "write": "true",
                "username": "git",
                "password": git_repo.server.token,
            },
        }
    )
    try:
        await kube.apply(new_app("rb", api.ns_a, git_repo.http_url, dest))
        await eventually(lambda: synced_to(kube, api.ns_a, "rb", good), WAIT, "good deployed")
        # The first poll of a new repository takes its refs as news: it is let pass before
        # the commit, so that only the refresh below brings "red" in.
        await first_polls_done(api.rt, (api.ns_a, "rb"), git_repo.http_url)
        bad = git_repo.commit({"app/cm.yaml": cm_yaml("colour", {"colour": "red"})}, message="red")
        status, _ = await api.call("POST", api.app(api.ns_a, "rb", "/refresh"), api.operator_a)
        assert status == 202
        await eventually(lambda: synced_to(kube, api.ns_a, "rb", bad), WAIT, "bad deployed")

        status, body = await api.call(
            "POST", api.app(api.ns_a, "rb", "/rollback"), api.operator_a, {"steps": 1}
        )
        assert status == 200, body
        assert body["state"] == "synced" and body["sync"]["phase"] == "Succeeded"
        restoring = git_repo.head()
        assert body["repositories"][0]["commit"] == restoring
        assert body["author"].startswith(api.user("operator") + " <")
        live = await kube.get("v1", "ConfigMap", "colour", dest)
        assert live is not None and live["data"] == {"colour": "blue"}
        op = (await app_status(kube, api.ns_a, "rb"))["operationState"]["operation"]
        assert op["trigger"] == "rollback" and op["initiatedBy"] == body["author"]

        async def in_history() -> dict[str, Any] | None:
            _, h = await api.call("GET", api.app(api.ns_a, "rb", "/history"), api.reader_a)
            return next((e for e in h["items"] if e["revision"] == restoring), None)

        entry = await eventually(in_history, WAIT, "the rollback in the history")
        assert entry["trigger"] == "rollback" and entry["initiatedBy"] == body["author"]
    finally:
        await kube.delete(API_VERSION, "Application", "rb", api.ns_a, propagation="Background")
        await release_applications(kube, api.ns_a, "rb")
        await kube.delete("v1", "Namespace", dest, propagation="Background")
