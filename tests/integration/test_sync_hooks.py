"""Hooks run by a whole sync operation on the real control plane: PreSync, Sync and PostSync in
that order, a failing PreSync hook stopping the sync and running the SyncFail hooks, and a
chart's Helm hooks: pre-install on the first sync only, pre-upgrade on later ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from devcluster.gitserver import RepoHandle

from cluster_helpers import app_status, cm_yaml, new_app
from tether.engine import Engine
from tether.kube import KubeClient
from tether.source import GitCache


def hook_job(name: str, hook: str, *, fail: bool = False, key: str = "tether.dev/hook") -> str:
    pod_meta: dict[str, Any] = {"annotations": {"sim.tether.dev/behavior": "fail"}} if fail else {}
    return yaml.safe_dump(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "annotations": {key: hook}},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": pod_meta,
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "run", "image": "busybox", "command": ["true"]}],
                    },
                },
            },
        }
    )


async def sync(
    kube: KubeClient, tmp_path: Path, home: str, obj: dict[str, Any]
) -> tuple[bool, str, list[dict[str, Any]]]:
    """Syncs once through the engine: (ok, message, the operation's recorded resources)."""
    await kube.apply(obj)
    engine = Engine(kube, GitCache(tmp_path / "git"))
    res = await engine.sync(await engine.get_app(obj["metadata"]["name"], home))
    st = await app_status(kube, home, obj["metadata"]["name"])
    records = ((st.get("operationState") or {}).get("syncResult") or {}).get("resources") or []
    return res.ok, res.message, list(records)


def names(records: list[dict[str, Any]]) -> list[str]:
    return [r["name"] for r in records]


async def test_hooks_run_pre_sync_then_sync_then_post_sync(
    kube: KubeClient, home: str, namespace: str, git_repo: RepoHandle, tmp_path: Path
) -> None:
    git_repo.commit(
        {
            "app/pre.yaml": hook_job("pre", "PreSync"),
            "app/data.yaml": cm_yaml("data", {"k": "v"}),
            "app/during.yaml": hook_job("during", "Sync"),
            "app/post.yaml": hook_job("post", "PostSync"),
        }
    )
    app = new_app("shop", home, git_repo.http_url, namespace, auto_sync=False, prune=False)
    ok, message, records = await sync(kube, tmp_path, home, app)
    assert ok, message
    order = names(records)
    assert order.index("pre") < order.index("data") < order.index("during") < order.index("post")
    hooks = {r["name"]: r for r in records if r.get("hookType")}
    assert {n: (r["syncPhase"], r["hookPhase"]) for n, r in hooks.items()} == {
        "pre": ("PreSync", "Succeeded"),
        "during": ("Sync", "Succeeded"),
        "post": ("PostSync", "Succeeded"),
    }
    jobs = {}
    for n in ("pre", "during", "post"):
        j = await kube.get("batch/v1", "Job", n, namespace)
        assert j is not None
        jobs[n] = j["metadata"]["creationTimestamp"]
    data = await kube.get("v1", "ConfigMap", "data", namespace)
    assert data is not None
    assert jobs["pre"] <= data["metadata"]["creationTimestamp"] <= jobs["post"]


async def test_a_failing_pre_sync_hook_stops_the_sync_and_runs_sync_fail(
    kube: KubeClient, home: str, namespace: str, git_repo: RepoHandle, tmp_path: Path
) -> None:
    git_repo.commit(
        {
            "app/pre.yaml": hook_job("pre", "PreSync", fail=True),
            "app/data.yaml": cm_yaml("data", {"k": "v"}),
            "app/cleanup.yaml": hook_job("cleanup", "SyncFail"),
        }
    )
    app = new_app("shop", home, git_repo.http_url, namespace, auto_sync=False, prune=False)
    ok, message, records = await sync(kube, tmp_path, home, app)
    assert not ok
    assert "pre" in message, message
    by_name = {r["name"]: r for r in records}
    assert by_name["pre"]["hookPhase"] == "Failed"
    assert "BackoffLimitExceeded" in by_name["pre"]["message"]
    assert by_name["cleanup"]["syncPhase"] == "SyncFail"
    assert by_name["cleanup"]["hookPhase"] == "Succeeded"
    # The Sync phase never came: its objects were not applied.
    assert "data" not in by_name
    assert await kube.get("v1", "ConfigMap", "data", namespace) is None
    assert await kube.get("batch/v1", "Job", "cleanup", namespace) is not None


CHART = {
    "chart/Chart.yaml": "apiVersion: v2\nname: hooked\nversion: 0.1.0\n",
    "chart/values.yaml": "message: one\n",
    "chart/templates/data.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-data\n"
        "data:\n  message: {{ .Values.message | quote }}\n"
    ),
    "chart/templates/install.yaml": hook_job("install", "pre-install", key="helm.sh/hook"),
    "chart/templates/upgrade.yaml": hook_job("upgrade", "pre-upgrade", key="helm.sh/hook"),
}


async def test_helm_pre_install_runs_first_and_pre_upgrade_after(
    kube: KubeClient, home: str, namespace: str, git_repo: RepoHandle, tmp_path: Path
) -> None:
    git_repo.commit(CHART)
    app = new_app("rel", home, git_repo.http_url, namespace, path="chart", auto_sync=False)
    app["spec"]["source"]["helm"] = {"releaseName": "rel"}
    ok, message, records = await sync(kube, tmp_path, home, app)
    assert ok, message
    hooks = {r["name"]: r["hookType"] for r in records if r.get("hookType")}
    assert hooks == {"install": "pre-install"}
    assert await kube.get("batch/v1", "Job", "install", namespace) is not None
    assert await kube.get("batch/v1", "Job", "upgrade", namespace) is None

    git_repo.commit({"chart/values.yaml": "message: two\n"})
    ok, message, records = await sync(kube, tmp_path, home, app)
    assert ok, message
    hooks = {r["name"]: r["hookType"] for r in records if r.get("hookType")}
    assert hooks == {"upgrade": "pre-upgrade"}
    assert await kube.get("batch/v1", "Job", "upgrade", namespace) is not None
    data = await kube.get("v1", "ConfigMap", "rel-data", namespace)
    assert data is not None and data["data"]["message"] == "two"
