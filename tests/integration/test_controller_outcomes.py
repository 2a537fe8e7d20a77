"""What the controller records, on the real control plane and git server: giving up after
retry.limit, self-healing a deleted object, and Secret values masked in audit records and
notifications."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml
from devcluster.gitserver import RepoHandle

from cluster_helpers import (
    WAIT,
    Receiver,
    app_status,
    cm_yaml,
    condition,
    eventually,
    new_app,
    notify_to,
    now,
    runtime_options,
    synced_to,
)
from tether.controller.runtime import Runtime
from tether.kube import KubeClient


async def test_giving_up_after_retry_limit_is_logged_and_recorded_once(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    caplog: Any,
) -> None:
    sha = git_repo.commit({"app/cm.yaml": cm_yaml("Not_A_Valid_Name", {})}, message="bad")
    obj = new_app("stubborn", home, git_repo.http_url, namespace)
    obj["spec"]["syncPolicy"]["retry"] = {"limit": 1, "backoff": {"duration": "1s"}}
    await kube.apply(obj)
    key = (home, "stubborn")
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
        ctl = rt.controller
        assert ctl is not None and rt.store is not None
        store = rt.store

        async def records(kind: str) -> list[Any]:
            return [r for r in await store.query(app=f"{home}/stubborn") if r.kind == kind]

        async def gave_up() -> list[Any]:
            return await records("retries-exhausted")

        (rec,) = await eventually(gave_up, WAIT, "the retries-exhausted record")
        assert rec.revision == sha and rec.result == "Failed"
        assert "failed 2 time(s)" in rec.message and "retry.limit (1)" in rec.message
        # No retry is pending any more, and there were exactly the first try and one retry.
        await eventually(lambda: now(ctl.queue.idle(key)), WAIT, "no retry pending")
        assert [r.result for r in await records("sync")] == ["Failed", "Failed"]

        cond = condition(await app_status(kube, home, "stubborn"), "RetriesExhausted")
        assert cond is not None and "retry.limit is 1" in cond["message"], cond
        events, _ = await kube.list("v1", "Event", home)
        exhausted = [
            e
            for e in events
            if e["involvedObject"]["name"] == "stubborn" and e["reason"] == "SyncRetriesExhausted"
        ]
        assert len(exhausted) == 1 and exhausted[0]["type"] == "Warning"
    lines = [r.getMessage() for r in caplog.records if "retry.limit (1) reached" in r.getMessage()]
    assert len(lines) == 1, lines


async def test_self_heal_recreates_a_deleted_object_and_secret_values_never_leave(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    receiver: Receiver,
) -> None:
    await notify_to(kube, home, receiver)
    in_git = "git-canary-7c1f0e"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "stringData": {"password": in_git},
    }
    sha = git_repo.commit(
        {"app/cm.yaml": cm_yaml("settings", {"a": "1"}), "app/secret.yaml": yaml.safe_dump(secret)}
    )
    obj = new_app("heal", home, git_repo.http_url, namespace)
    obj["spec"]["syncPolicy"]["automated"]["selfHeal"] = True
    await kube.apply(obj)
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
        assert rt.store is not None
        store = rt.store
        await eventually(lambda: synced_to(kube, home, "heal", sha), WAIT, "synced")

        # 1. A deleted object is recreated, and the drift says it was deleted.
        before = await kube.get("v1", "ConfigMap", "settings", namespace)
        assert before is not None
        await kube.delete("v1", "ConfigMap", "settings", namespace)

        async def recreated() -> bool:
            cm = await kube.get("v1", "ConfigMap", "settings", namespace)
            return bool(cm and cm["metadata"]["uid"] != before["metadata"]["uid"])

        await eventually(recreated, WAIT, "the deleted ConfigMap recreated")

        async def recs(kind: str) -> list[Any]:
            return [r for r in await store.query(app=f"{home}/heal") if r.kind == kind]

        async def deletion_drift() -> Any:
            return next(
                (
                    r
                    for r in await recs("drift")
                    if any(
                        o["name"] == "settings" and o["operation"] == "Delete" for o in r.objects
                    )
                ),
                None,
            )

        drift = await eventually(deletion_drift, WAIT, "drift record of the deletion")
        assert drift.objects[0]["status"] == "Missing"

        async def corrected() -> bool:
            return any(
                o["name"] == "settings" and o["action"] == "created"
                for r in await recs("correction")
                for o in r.objects
            )

        await eventually(corrected, WAIT, "the correction record")

        # 2. A live edit of the Secret: drift and correction, values masked everywhere.
        hacked = "live-canary-93ab42"
        live = await kube.get("v1", "Secret", "db", namespace)
        assert live is not None
        await kube.merge_patch(
            live,
            {"data": {"password": base64.b64encode(hacked.encode()).decode()}},
            field_manager="kubectl-edit",
        )

        async def secret_drift() -> Any:
            return next(
                (r for r in await recs("drift") if any(o["kind"] == "Secret" for o in r.objects)),
                None,
            )

        record = await eventually(secret_drift, WAIT, "drift record of the Secret")
        assert "password" in record.details["diff"]

        async def secret_alert() -> Any:
            return next(
                (
                    n
                    for n in receiver.received
                    if n["event"] == "drift" and "Secret" in n.get("message", "")
                ),
                None,
            )

        alert = await eventually(secret_alert, WAIT, "drift notification of the Secret")

        async def healed() -> bool:
            s = await kube.get("v1", "Secret", "db", namespace)
            return bool(s and base64.b64decode(s["data"]["password"]).decode() == in_git)

        await eventually(healed, WAIT, "the Secret healed")
        every_record = [r.to_dict() for r in await store.query(app=f"{home}/heal")]
        for canary in (in_git, hacked):
            for encoded in (canary, base64.b64encode(canary.encode()).decode()):
                assert encoded not in str(every_record)
                assert encoded not in str(alert) and encoded not in str(receiver.received)
