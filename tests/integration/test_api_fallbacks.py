"""The API's two fallbacks, each made to happen for real: an app's history answered from
``status.history`` (and saying so) when the PostgreSQL audit store fails under the running
server, and the application list answered by LISTing the API server while the server's own
watch of Applications is refused (its identity may list Applications but not watch them)."""

from __future__ import annotations

import logging
import urllib.parse
import uuid
from pathlib import Path

import asyncpg
import pytest
from devcluster.gitserver import RepoHandle

from api_fixtures import Serve, api_call, cluster_grant
from audit_stores import pg_schema, server_url
from cluster_helpers import (
    WAIT,
    app_status,
    cm_yaml,
    equals,
    eventually,
    new_app,
    now,
    synced_to,
)
from identities import service_account_token, token_kubeconfig
from tether.kube import KubeClient
from tether.server.api.stream import STREAM

ALL_BUT_WATCH = ["get", "list", "create", "update", "patch", "delete", "deletecollection"]
WATCHED_GROUPS = [
    "",
    "apps",
    "batch",
    "coordination.k8s.io",
    "events.k8s.io",
    "apiextensions.k8s.io",
    "rbac.authorization.k8s.io",
    "networking.k8s.io",
    "policy",
    "autoscaling",
]


async def test_history_comes_from_the_status_when_the_audit_store_fails(
    kube: KubeClient,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    serve: Serve,
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = await kube.bearer_token()
    assert admin
    first = git_repo.commit({"app/cm.yaml": cm_yaml("shop", {"v": "1"})}, message="first")
    await kube.apply(new_app("shop", home, git_repo.http_url, namespace))
    path = f"/api/v1/applications/{home}/shop/history"
    async with pg_schema() as url:
        schema = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["search_path"][0]
        async with serve(audit_url=url) as server:
            base = server.url
            await eventually(lambda: synced_to(kube, home, "shop", first), WAIT, "shop synced")

            async def audited() -> bool:
                status, body = await api_call(base, "GET", path, admin)
                assert status == 200, body
                return body["from"] == "audit" and len(body["items"]) == 1

            await eventually(audited, WAIT, "the sync in the audit trail")

            # The store fails for real: its tables are gone from under the running server.
            admin_db = await asyncpg.connect(server_url(), timeout=5)
            try:
                await admin_db.execute(f"DROP SCHEMA {schema} CASCADE")
            finally:
                await admin_db.close()
            caplog.set_level(logging.WARNING, logger="tether.server.api.history")
            status, body = await api_call(base, "GET", path, admin)

    assert status == 200, body
    assert body["from"] == "status"
    kept = (await app_status(kube, home, "shop"))["history"]
    assert [e["revision"] for e in body["items"]] == [e["revision"] for e in kept] == [first]
    (entry,) = body["items"]
    assert entry["initiatedBy"] == ""  # the status does not keep who asked
    assert entry["commitURL"].startswith(("http://", "https://"))
    assert entry["commitURL"].endswith(first)
    failed = [r.getMessage() for r in caplog.records if "the audit trail failed" in r.getMessage()]
    assert failed and f"{home}/shop" in failed[0]


async def test_the_list_is_right_while_the_servers_watch_is_refused(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    serve: Serve,
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = await kube.bearer_token()
    assert admin
    git_repo.commit({"app/cm.yaml": cm_yaml("shop", {"v": "1"})})
    # The server's identity may do everything but watch Applications.
    token = await service_account_token(kube, home, "no-watch")
    rules = [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ALL_BUT_WATCH},
        {"apiGroups": WATCHED_GROUPS, "resources": ["*"], "verbs": ["watch"]},
        {"apiGroups": ["tether.dev"], "resources": ["projects"], "verbs": ["watch"]},
        {"nonResourceURLs": ["*"], "verbs": ["get"]},
    ]
    config = token_kubeconfig(kubeconfig, token, tmp_path / "no-watch.kubeconfig")
    for name in ("one", "two"):
        await kube.apply(new_app(name, home, git_repo.http_url, namespace, auto_sync=False))
    caplog.set_level(logging.WARNING, logger="tether.server.api.stream")
    async with (
        cluster_grant(kube, (home, "no-watch"), rules, f"no-watch-{uuid.uuid4().hex[:8]}"),
        serve(kubeconfig=str(config)) as server,
    ):
        base = server.url

        async def names() -> list[str]:
            status, body = await api_call(base, "GET", "/api/v1/applications", admin)
            assert status == 200, body
            assert body["total"] == len(body["items"])
            return [i["metadata"]["name"] for i in body["items"]]

        def refusals() -> list[str]:
            return [m for r in caplog.records if "event stream failed" in (m := r.getMessage())]

        assert await names() == ["one", "two"]
        refused = await eventually(lambda: now(refusals()), WAIT, "the watch refused")
        assert "forbidden" in refused[0].lower() or "403" in refused[0]

        # An app made after the start is listed although no watch can bring it: the list
        # asks the API server (the watch's own retries, each refused, list as well).
        await kube.apply(new_app("three", home, git_repo.http_url, namespace, auto_sync=False))
        await eventually(lambda: equals(names(), ["one", "three", "two"]), WAIT, "three listed")
        # The server knows its watch has nothing current to answer from.
        stream = server.rt.runner.app[STREAM]  # type: ignore[union-attr]
        await eventually(lambda: equals(stream.current_apps(), None), WAIT, "the watch failing")
