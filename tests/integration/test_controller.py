"""The continuous engine on the real control plane and git server: the whole GitOps loop."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import aiohttp
from devcluster.gitserver import RepoHandle

from cluster_helpers import (
    WEB_DEPLOYMENT,
    Receiver,
    cm_yaml,
    equals,
    eventually,
    first_polls_done,
    github_push,
    new_app,
    notify_to,
    now,
    runtime_options,
)
from tether.api.application import API_VERSION, REFRESH_ANNOTATION
from tether.controller.runtime import Runtime
from tether.kube import KubeClient


async def test_full_gitops_round_trip(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    receiver: Receiver,
) -> None:
    await notify_to(kube, home, receiver)
    git_repo.commit(
        {"app/cm.yaml": cm_yaml("settings", {"color": "blue"}), "app/deploy.yaml": WEB_DEPLOYMENT},
        message="first",
        author=("Alice", "alice@example.com"),
    )
    await kube.apply(new_app("shop", home, git_repo.http_url, namespace, self_heal=True))

    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:

        async def live_color() -> str:
            o = await kube.get("v1", "ConfigMap", "settings", namespace)
            return str((o or {}).get("data", {}).get("color", ""))

        # The app syncs by itself on start.
        assert await eventually(lambda: equals(live_color(), "blue"), what="initial sync")
        await first_polls_done(rt, (home, "shop"), git_repo.http_url)

        # 1. commit → webhook → applied
        sha = git_repo.commit(
            {"app/cm.yaml": cm_yaml("settings", {"color": "green"})},
            message="go green",
            author=("Bob", "bob@example.com"),
        )
        body, headers = github_push(git_repo, sha)
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{rt.port}/api/webhook"
            async with http.post(url, data=body, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                assert (await resp.json()) == {"status": "accepted", "apps": 1}
            # A bad signature is refused and does nothing.
            async with http.post(
                url, data=body, headers={**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}
            ) as resp:
                assert resp.status == 401
        assert await eventually(lambda: equals(live_color(), "green"), what="webhook sync")

        # 2. live edit → drift with author → self-heal
        live = await kube.get("v1", "ConfigMap", "settings", namespace)
        assert live is not None
        await kube.merge_patch(live, {"data": {"color": "hacked"}}, field_manager="kubectl-edit")
        assert await eventually(lambda: equals(live_color(), "green"), what="self-heal")

        # 3. the drift alert carries the diff and who made the change
        async def drift_alert() -> dict[str, Any] | None:
            return next((n for n in receiver.received if n["event"] == "drift"), None)

        alert = await eventually(drift_alert, what="drift notification")
        assert alert["fieldManager"] == "kubectl-edit"
        assert "-  color: hacked" in alert["diff"] and "+  color: green" in alert["diff"]
        assert alert["app"] == "shop"

        # 4. the audit trail shows all of it, and so does the HTTP API
        assert rt.store is not None
        store = rt.store

        async def audit_kinds() -> set[str]:
            recs = await store.query(app=f"{home}/shop")
            return (
                {r.kind for r in recs}
                if {"sync", "drift", "correction"} <= {r.kind for r in recs}
                else set()
            )

        await eventually(audit_kinds, what="audit records")
        recs = await store.query(app=f"{home}/shop")
        webhook_sync = next(r for r in recs if r.kind == "sync" and r.trigger == "webhook")
        assert webhook_sync.revision == sha and webhook_sync.author == "Bob <bob@example.com>"
        assert webhook_sync.message == "go green" and webhook_sync.result == "Succeeded"
        drift = next(r for r in recs if r.kind == "drift")
        assert drift.objects[0]["manager"] == "kubectl-edit"
        assert drift.objects[0]["fields"] == ["data.color"]
        correction = next(r for r in recs if r.kind == "correction")
        assert correction.trigger == "self-heal"
        # The audit API answers a caller with a Kubernetes token (the admin's here).
        token = await kube.bearer_token()
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"http://127.0.0.1:{rt.port}/api/v1/audit",
                params={"app": f"{home}/shop"},
                headers={"Authorization": f"Bearer {token}"},
            ) as resp,
        ):
            assert {r["kind"] for r in await resp.json()} >= {"sync", "drift", "correction"}

        # 5. Kubernetes Events on the Application
        events, _ = await kube.list("v1", "Event", home)
        reasons = {e["reason"] for e in events if e["involvedObject"]["name"] == "shop"}
        assert {"SyncStarted", "SyncSucceeded", "DriftDetected", "DriftCorrected"} <= reasons

        # 6. status is current
        app = await kube.get(API_VERSION, "Application", "shop", home)
        assert app is not None
        assert app["status"]["sync"] == {"status": "Synced", "revision": sha}
        assert app["status"]["operationState"]["phase"] == "Succeeded"
        assert app["status"]["reconciledAt"]
        # 7. metrics (a scrape needs a token allowed to get /metrics: the admin's)
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"http://127.0.0.1:{rt.port}/metrics",
                headers={"Authorization": f"Bearer {token}"},
            ) as resp,
        ):
            text = await resp.text()
        for name in (
            "tether_reconcile_duration_seconds",
            "tether_applications_reconciled",
            "tether_app_info",
            "tether_syncs_total",
            "tether_drift_detected_total",
            "tether_self_heals_total",
            "tether_git_request_duration_seconds",
            "tether_kube_requests_total",
            "tether_queue_depth",
        ):
            assert name in text, name
        # One info series per app, carrying its status; reconciles counted per controller.
        info = [x for x in text.splitlines() if x.startswith("tether_app_info{")]
        assert any(
            f'namespace="{home}",name="shop"' in x and 'sync_status="Synced"' in x for x in info
        ), info
        assert f'tether_reconcile_duration_seconds_count{{namespace="{home}"' not in text


async def test_polling_refresh_and_no_self_heal_without_opt_in(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"v": "1"})})
    await kube.apply(
        new_app("poller", home, git_repo.http_url, namespace, interval="1s", prune=False)
    )
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:

        async def value() -> str:
            o = await kube.get("v1", "ConfigMap", "settings", namespace)
            return str((o or {}).get("data", {}).get("v", ""))

        assert await eventually(lambda: equals(value(), "1"))
        git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"v": "2"})})
        assert await eventually(lambda: equals(value(), "2"), what="poll picks up the commit")
        # Without selfHeal a live edit is reported (OutOfSync) but left alone.
        live = await kube.get("v1", "ConfigMap", "settings", namespace)
        assert live is not None
        edited = await kube.merge_patch(live, {"data": {"v": "edited"}}, field_manager="someone")

        async def out_of_sync() -> bool:
            a = await kube.get(API_VERSION, "Application", "poller", home)
            return bool(a and a.get("status", {}).get("sync", {}).get("status") == "OutOfSync")

        await eventually(out_of_sync, what="drift reported as OutOfSync")
        # The controller saw the edit (a drift record naming its writer)...
        assert rt.store is not None
        store = rt.store
        drift = await eventually(
            lambda: _first_of(store.query(app=f"{home}/poller", kinds=["drift"])),
            what="drift record",
        )
        assert drift.objects[0]["manager"] == "someone"
        # ...and, made to look again, still left it alone: nothing wrote the ConfigMap.
        await refresh_and_wait(kube, rt, home, "poller")
        after = await kube.get("v1", "ConfigMap", "settings", namespace)
        assert after is not None
        assert after["metadata"]["resourceVersion"] == edited["metadata"]["resourceVersion"]
        assert not await store.query(app=f"{home}/poller", kinds=["correction"])


async def test_self_heal_fighting_stops_and_names_the_other_writer(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    git_repo.commit({"app/cm.yaml": cm_yaml("contested", {"owner": "git"})})
    await kube.apply(
        new_app("fight", home, git_repo.http_url, namespace, prune=False, self_heal=True)
    )
    opts = runtime_options(home, tmp_path, kubeconfig, fight_limit=3, fight_window=600)
    async with Runtime(opts) as rt:

        async def owner() -> str:
            o = await kube.get("v1", "ConfigMap", "contested", namespace)
            return str((o or {}).get("data", {}).get("owner", ""))

        assert await eventually(lambda: equals(owner(), "git"))
        for i in range(4):
            live = await kube.get("v1", "ConfigMap", "contested", namespace)
            assert live is not None
            await kube.merge_patch(
                live, {"data": {"owner": f"rogue-{i}"}}, field_manager="rogue-operator"
            )
            if i < 3:
                assert await eventually(lambda: equals(owner(), "git"), what=f"correction {i}")

        async def fighting() -> dict[str, Any] | None:
            a = await kube.get(API_VERSION, "Application", "fight", home)
            conds = (a or {}).get("status", {}).get("conditions") or []
            return next((c for c in conds if c["type"] == "SelfHealFighting"), None)

        cond = await eventually(fighting, what="SelfHealFighting condition")
        assert "rogue-operator" in cond["message"]
        # A refresh makes the controller look again; it must still leave the object alone.
        before = await kube.get("v1", "ConfigMap", "contested", namespace)
        assert before is not None and before["data"]["owner"] == "rogue-3"
        await refresh_and_wait(kube, rt, home, "fight")
        after = await kube.get("v1", "ConfigMap", "contested", namespace)
        assert after is not None  # no longer corrected: not written at all
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def _first(items: list[Any]) -> Any:
    return items[0] if items else None


async def _first_of(items: Awaitable[list[Any]]) -> Any:
    return await _first(await items)


async def refresh_and_wait(kube: KubeClient, rt: Runtime, namespace: str, name: str) -> None:
    """Asks the in-process controller to look at the app again (as ``tether app refresh``
    does) and returns once it has finished a reconcile after the request."""
    seen = reconciles(rt, namespace, name)
    app = await kube.get(API_VERSION, "Application", name, namespace)
    assert app is not None
    await kube.merge_patch(
        app, {"metadata": {"annotations": {REFRESH_ANNOTATION: uuid.uuid4().hex}}}
    )
    await eventually(lambda: now(reconciles(rt, namespace, name) > seen), what="a reconcile")


def reconciles(rt: Runtime, namespace: str, app: str) -> int:
    """Reconciles of the app the in-process controller finished (its per-app state)."""
    assert rt.controller is not None
    st = rt.controller.state.get((namespace, app))
    return st.reconciles if st is not None else 0


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()
