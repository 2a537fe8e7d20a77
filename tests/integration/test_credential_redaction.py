"""A token in an Application's repoURL never reaches what tether writes: status and history,
Events, audit records, notifications, logs and metrics."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import aiohttp
import pytest
from devcluster.gitserver import GitServer, RepoHandle

from cluster_helpers import Receiver, app_status, cm_yaml, eventually, notify_to, runtime_options
from tether.api.application import API_VERSION, new_application
from tether.controller.runtime import Runtime
from tether.kube import KubeClient


async def test_token_in_repo_url_is_never_written(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    git_server: GitServer,
    tmp_path: Path,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = git_server.token
    await notify_to(kube, home, receiver)
    git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "blue"})}, message="first")
    url = git_server.http_url_with_token(git_repo.name)
    assert token in url
    obj = new_application(
        "leaky",
        home,
        repo_url=url,
        path="app",
        dest_namespace=namespace,
        auto_sync=True,
        self_heal=True,
    )
    await kube.apply(obj)
    caplog.set_level(logging.DEBUG)

    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:

        async def synced() -> bool:
            return bool((await app_status(kube, home, "leaky")).get("history"))

        await eventually(synced, what="first sync")
        # A live edit: drift, its notification, a self-heal and their audit records.
        live = await kube.get("v1", "ConfigMap", "settings", namespace)
        assert live is not None
        await kube.merge_patch(live, {"data": {"color": "red"}}, field_manager="kubectl-edit")

        async def drift_noticed() -> bool:
            return any(n["event"] == "drift" for n in receiver.received)

        await eventually(drift_noticed, what="drift notification")
        # A source error quotes the repository URL in a condition.
        app_obj = await kube.get(API_VERSION, "Application", "leaky", home)
        assert app_obj is not None
        await kube.merge_patch(app_obj, {"spec": {"source": {"targetRevision": "nope"}}})

        async def source_error() -> bool:
            conds = (await app_status(kube, home, "leaky")).get("conditions") or []
            return any(c["type"] == "SourceError" for c in conds)

        await eventually(source_error, what="SourceError condition")

        assert rt.store is not None
        records = [dataclasses.asdict(r) for r in await rt.store.query(app=f"{home}/leaky")]
        assert {r["kind"] for r in records} >= {"sync", "drift", "correction"}
        events, _ = await kube.list("v1", "Event", home)
        scrape = {"Authorization": f"Bearer {await kube.bearer_token()}"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{rt.port}/metrics", headers=scrape) as resp,
        ):
            metrics_text = await resp.text()

    status = await app_status(kube, home, "leaky")
    source = status["history"][0]["source"]
    assert source["repoURL"] == url.replace(f"git:{token}@", "***@")
    assert source["targetRevision"] == "HEAD"  # a controller sync records the spec's target
    sync_record = next(r for r in records if r["kind"] == "sync")
    assert sync_record["details"]["source"]["repoURL"] == source["repoURL"]
    written = {
        "status": json.dumps(status),
        "events": json.dumps(events),
        "audit": json.dumps(records, default=str),
        "notifications": json.dumps(receiver.received),
        "logs": caplog.text,
        "metrics": metrics_text,
    }
    for where, text in written.items():
        assert token not in text, f"the token is in the {where}"
