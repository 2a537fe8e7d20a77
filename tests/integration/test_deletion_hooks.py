"""PreDelete and PostDelete hooks on the real control plane: deleting an Application runs its
PreDelete hook Jobs (run by the node simulator) before any object goes and its PostDelete hooks
once all are gone; a failing hook stops the deletion with the DeletionError condition, and
``tether.dev/deletion-hooks: skip`` is the way out. Through ``tether app delete`` with no
controller, and through a ``kubectl delete`` of the Application finished by the controller's
finalizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from devcluster.gitserver import RepoHandle

from cluster_helpers import (
    WAIT,
    app_status,
    cm_yaml,
    condition,
    eventually,
    new_app,
    run_tether,
)
from tether.api.application import API_VERSION
from tether.controller.finalizer import AppFinalizer
from tether.deletion import FINALIZER
from tether.deletion.hooks import SKIP_ANNOTATION, RenderedHooks
from tether.engine import Engine
from tether.kube import KubeClient
from tether.source import GitCache


def hook_job(name: str, phase: str, *, fail: bool = False) -> str:
    pod_meta: dict[str, Any] = {"annotations": {"sim.tether.dev/behavior": "fail"}} if fail else {}
    return yaml.safe_dump(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "annotations": {"tether.dev/hook": phase}},
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


async def synced(
    kube: KubeClient, tmp_path: Path, name: str, home: str, repo: RepoHandle, dest: str
) -> None:
    await kube.apply(new_app(name, home, repo.http_url, dest, auto_sync=False, prune=False))
    engine = Engine(kube, GitCache(tmp_path / "git"))
    res = await engine.sync(await engine.get_app(name, home))
    assert res.ok, res.message


async def job(kube: KubeClient, ns: str, name: str) -> dict[str, Any] | None:
    return await kube.get("batch/v1", "Job", name, ns)


async def has_cm(kube: KubeClient, ns: str, name: str) -> bool:
    return await kube.get("v1", "ConfigMap", name, ns) is not None


async def test_delete_runs_pre_delete_then_post_delete(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    git_repo.commit(
        {
            "app/data.yaml": cm_yaml("data", {"k": "v"}),
            "app/backup.yaml": hook_job("backup", "PreDelete"),
            "app/farewell.yaml": hook_job("farewell", "PostDelete"),
        }
    )
    await synced(kube, tmp_path, "shop", home, git_repo, namespace)
    assert await has_cm(kube, namespace, "data")
    # A sync never runs deletion hooks.
    assert await job(kube, namespace, "backup") is None
    assert await job(kube, namespace, "farewell") is None

    code, out = await run_tether(kubeconfig, "-n", home, "app", "delete", "shop")
    assert code == 0, out
    assert await kube.get(API_VERSION, "Application", "shop", home) is None
    assert not await has_cm(kube, namespace, "data")
    backup, farewell = await job(kube, namespace, "backup"), await job(kube, namespace, "farewell")
    assert backup is not None and farewell is not None
    # Both ran to completion (their instances stay: BeforeHookCreation is the default).
    for j in (backup, farewell):
        conds = {c["type"]: c["status"] for c in j["status"].get("conditions") or []}
        assert conds.get("Complete") == "True", j["status"]
    assert backup["metadata"]["creationTimestamp"] <= farewell["metadata"]["creationTimestamp"]


async def test_a_failing_pre_delete_hook_stops_the_deletion_before_any_object_goes(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    git_repo.commit(
        {
            "app/data.yaml": cm_yaml("data", {"k": "v"}),
            "app/backup.yaml": hook_job("backup", "PreDelete", fail=True),
        }
    )
    await synced(kube, tmp_path, "shop", home, git_repo, namespace)
    code, out = await run_tether(kubeconfig, "-n", home, "app", "delete", "shop")
    assert code != 0, out
    assert f"PreDelete hook Job {namespace}/backup failed" in out, out
    assert "BackoffLimitExceeded" in out, out
    # Nothing was deleted; the Application stays, held by its finalizer, and says why.
    assert await has_cm(kube, namespace, "data")
    app = await kube.get(API_VERSION, "Application", "shop", home)
    assert app is not None and FINALIZER in app["metadata"]["finalizers"]
    cond = condition(await app_status(kube, home, "shop"), "DeletionError")
    assert cond is not None and cond["reason"] == "HookFailed", cond
    assert "PreDelete hook" in cond["message"] and SKIP_ANNOTATION in cond["message"]

    # The way out: delete without the hooks.
    await kube.merge_patch(app, {"metadata": {"annotations": {SKIP_ANNOTATION: "skip"}}})
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "delete", "shop", "--controller-wait", "1"
    )
    assert code == 0, out
    assert not await has_cm(kube, namespace, "data")
    assert await kube.get(API_VERSION, "Application", "shop", home) is None


async def test_a_failing_post_delete_hook_holds_the_application_after_its_objects_went(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    git_repo.commit(
        {
            "app/data.yaml": cm_yaml("data", {"k": "v"}),
            "app/farewell.yaml": hook_job("farewell", "PostDelete", fail=True),
        }
    )
    await synced(kube, tmp_path, "shop", home, git_repo, namespace)
    code, out = await run_tether(kubeconfig, "-n", home, "app", "delete", "shop")
    assert code != 0, out
    assert f"PostDelete hook Job {namespace}/farewell failed" in out, out
    assert not await has_cm(kube, namespace, "data")
    assert await kube.get(API_VERSION, "Application", "shop", home) is not None


async def test_kubectl_delete_runs_the_hooks_in_the_controllers_finalizer(
    kube: KubeClient,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    """The Application deleted as ``kubectl delete`` does; the controller's finalizer code
    (``AppFinalizer``, given the deletion hooks) finishes it, one step per reconcile."""
    git_repo.commit(
        {
            "app/data.yaml": cm_yaml("data", {"k": "v"}),
            "app/backup.yaml": hook_job("backup", "PreDelete"),
            "app/farewell.yaml": hook_job("farewell", "PostDelete"),
        }
    )
    await synced(kube, tmp_path, "shop", home, git_repo, namespace)
    engine = Engine(kube, GitCache(tmp_path / "git"))
    finalizer = AppFinalizer(kube, "test", lambda k, r, d: None, hooks=RenderedHooks(engine))
    app = await kube.get(API_VERSION, "Application", "shop", home)
    assert app is not None
    app = await finalizer.ensure(app)
    assert FINALIZER in app["metadata"]["finalizers"]
    await kube.delete(API_VERSION, "Application", "shop", home, propagation="Background")
    seen: list[str] = []

    async def reconciled() -> bool:
        obj = await kube.get(API_VERSION, "Application", "shop", home)
        if obj is None:
            return True
        if await has_cm(kube, namespace, "data"):
            seen.append("data there")
        elif await job(kube, namespace, "backup") is None:
            seen.append("data gone before backup ran")
        await finalizer.finalize((home, "shop"), obj)
        return await kube.get(API_VERSION, "Application", "shop", home) is None

    await eventually(reconciled, WAIT, "the Application gone")
    assert "data gone before backup ran" not in seen
    assert not await has_cm(kube, namespace, "data")
    backup, farewell = await job(kube, namespace, "backup"), await job(kube, namespace, "farewell")
    assert backup is not None and farewell is not None
    assert backup["metadata"]["creationTimestamp"] <= farewell["metadata"]["creationTimestamp"]


async def test_a_charts_pre_delete_hook_runs_on_deletion(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    pre_delete = yaml.safe_load(hook_job("{{ .Release.Name }}-backup", "PreDelete"))
    pre_delete["metadata"]["annotations"] = {"helm.sh/hook": "pre-delete"}
    git_repo.commit(
        {
            "chart/Chart.yaml": "apiVersion: v2\nname: hooked\nversion: 0.1.0\n",
            "chart/templates/data.yaml": (
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-data\n"
            ),
            "chart/templates/backup.yaml": yaml.safe_dump(pre_delete),
        }
    )
    app = new_app("rel", home, git_repo.http_url, namespace, path="chart", auto_sync=False)
    app["spec"]["source"]["helm"] = {"releaseName": "rel"}
    await kube.apply(app)
    engine = Engine(kube, GitCache(tmp_path / "git"))
    res = await engine.sync(await engine.get_app("rel", home))
    assert res.ok, res.message
    assert await has_cm(kube, namespace, "rel-data")
    assert await job(kube, namespace, "rel-backup") is None

    code, out = await run_tether(kubeconfig, "-n", home, "app", "delete", "rel")
    assert code == 0, out
    assert not await has_cm(kube, namespace, "rel-data")
    backup = await job(kube, namespace, "rel-backup")
    assert backup is not None
    assert backup["metadata"]["annotations"]["tether.dev/hook-run"].endswith("/PreDelete")
