"""Deleting an Application with ``kubectl delete`` (a DELETE of the Application) and with
``tether app delete`` while a real ``tether controller`` runs: the finalizer makes the
controller delete what the app deployed, in reverse waves, before the Application goes."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import yaml
from devcluster.gitserver import RepoHandle

from cluster_helpers import (
    WAIT,
    WEB_DEPLOYMENT,
    ControllerProcess,
    app_status,
    condition,
    eventually,
    new_app,
    now,
    run_tether,
    synced_to,
)
from identities import grant, service_account_token, token_kubeconfig
from tether.api.application import API_VERSION
from tether.deletion import FINALIZER, POLICY_ANNOTATION
from tether.deletion.policy import ARGOCD_FINALIZER
from tether.kube import KubeClient
from tether.model import Obj

HOLD = "example.com/hold"


def cm(name: str, **annotations: str) -> str:
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta})


async def start(
    kube: KubeClient,
    processes: list[ControllerProcess],
    tmp_path: Path,
    kubeconfig: str,
    home: str,
    app: Obj,
    sha: str,
) -> ControllerProcess:
    """The app applied, a controller started, and the app synced and holding a finalizer."""
    await kube.apply(app)
    ctl = ControllerProcess(tmp_path, "ctl", kubeconfig, home).start()
    processes.append(ctl)
    name = app["metadata"]["name"]

    async def ready() -> bool:
        obj = await kube.get(API_VERSION, "Application", name, home)
        return bool(await synced_to(kube, home, name, sha)) and bool(
            obj and FINALIZER in (obj["metadata"].get("finalizers") or [])
        )

    await eventually(ready, WAIT, f"{name} synced with its finalizer\n{ctl.tail()}")
    return ctl


async def gone(kube: KubeClient, home: str, name: str) -> bool:
    return await kube.get(API_VERSION, "Application", name, home) is None


async def names(kube: KubeClient, ns: str) -> set[str]:
    items, _ = await kube.list("v1", "ConfigMap", ns)
    return {o["metadata"]["name"] for o in items if o["metadata"]["name"] != "kube-root-ca.crt"}


def audit_kinds(ctl: ControllerProcess, app: str) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(ctl.audit_db)) as db:
        rows = db.execute(
            "SELECT kind, result FROM audit_records WHERE app = ? ORDER BY id", (app,)
        ).fetchall()
    return [(str(k), str(r)) for k, r in rows]


async def events(kube: KubeClient, home: str, name: str) -> list[tuple[str, str]]:
    items, _ = await kube.list("v1", "Event", home)
    return [
        (str(e.get("reason")), str(e.get("message")))
        for e in items
        if (e.get("involvedObject") or {}).get("name") == name
    ]


async def test_kubectl_delete_cascades_keeps_delete_false_and_records_it(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    sha = git_repo.commit(
        {
            "app/web.yaml": WEB_DEPLOYMENT,
            "app/a.yaml": cm("a"),
            "app/kept.yaml": cm("kept", **{"tether.dev/sync-options": "Delete=false"}),
            "app/argo-kept.yaml": cm(
                "argo-kept", **{"argocd.argoproj.io/sync-options": "Delete=false"}
            ),
        }
    )
    ctl = await start(
        kube,
        processes,
        tmp_path,
        kubeconfig,
        home,
        new_app("shop", home, git_repo.http_url, namespace),
        sha,
    )
    assert await kube.get("apps/v1", "Deployment", "web", namespace) is not None

    await kube.delete(API_VERSION, "Application", "shop", home)  # as kubectl delete does
    await eventually(lambda: gone(kube, home, "shop"), WAIT, f"the app gone\n{ctl.tail()}")
    # Everything it deleted went before it (the finalizer comes off last); Delete=false stays.
    assert await kube.get("apps/v1", "Deployment", "web", namespace) is None
    assert await names(kube, namespace) == {"kept", "argo-kept"}

    async def recorded() -> list[tuple[str, str]]:
        return [k for k in audit_kinds(ctl, f"{home}/shop") if k[0] == "delete"]

    assert await eventually(recorded, WAIT, "the audit record") == [("delete", "Deleted")]
    reasons = dict(await events(kube, home, "shop"))
    assert "Deleted" in reasons, reasons
    assert "Delete=false" in reasons["Deleted"]


async def test_orphan_policy_takes_no_finalizer_and_leaves_the_objects(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    sha = git_repo.commit({"app/a.yaml": cm("a"), "app/b.yaml": cm("b")})
    app = new_app("keepers", home, git_repo.http_url, namespace)
    app["metadata"]["annotations"][POLICY_ANNOTATION] = "orphan"
    app["metadata"]["finalizers"] = [ARGOCD_FINALIZER]  # the annotation wins: it goes too
    await kube.apply(app)
    ctl = ControllerProcess(tmp_path, "ctl", kubeconfig, home).start()
    processes.append(ctl)

    async def synced_without_finalizer() -> bool:
        obj = await kube.get(API_VERSION, "Application", "keepers", home)
        return bool(await synced_to(kube, home, "keepers", sha)) and not (
            (obj or {}).get("metadata", {}).get("finalizers")
        )

    await eventually(synced_without_finalizer, WAIT, f"synced, no finalizer\n{ctl.tail()}")
    await kube.delete(API_VERSION, "Application", "keepers", home)
    await eventually(lambda: gone(kube, home, "keepers"), WAIT, "the app gone")
    assert await names(kube, namespace) == {"a", "b"}


async def test_argo_cd_finalizer_cascades_in_reverse_wave_order_and_does_not_hang(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    waves = {"first": "-1", "middle": "0", "last": "2", "last-too": "2"}
    sha = git_repo.commit(
        {f"app/{n}.yaml": cm(n, **{"argocd.argoproj.io/sync-wave": w}) for n, w in waves.items()}
    )
    app = new_app("ported", home, git_repo.http_url, namespace)
    app["metadata"]["finalizers"] = [ARGOCD_FINALIZER]
    ctl = await start(kube, processes, tmp_path, kubeconfig, home, app, sha)

    # Every deletion in the namespace, in the order the API server reports them.
    _, rv = await kube.list("v1", "ConfigMap", namespace)
    order: list[str] = []

    async def watch() -> None:
        async for ev in kube.watch("v1", "ConfigMap", namespace=namespace, resource_version=rv):
            if ev.type == "DELETED":
                order.append(ev.object["metadata"]["name"])

    watcher = asyncio.create_task(watch())
    try:
        await kube.delete(API_VERSION, "Application", "ported", home)
        await eventually(lambda: gone(kube, home, "ported"), WAIT, f"the app gone\n{ctl.tail()}")
        await eventually(lambda: now(len(order) == 4), WAIT, f"4 deletions seen: {order}")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    assert sorted(order[:2]) == ["last", "last-too"] and order[2:] == ["middle", "first"], order


async def test_a_blocked_deletion_names_the_object_and_finishes_once_it_goes(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    sha = git_repo.commit(
        {
            "app/held.yaml": cm("held"),
            "app/first.yaml": cm("first", **{"tether.dev/sync-wave": "-1"}),
        }
    )
    ctl = await start(
        kube,
        processes,
        tmp_path,
        kubeconfig,
        home,
        new_app("stuck", home, git_repo.http_url, namespace),
        sha,
    )
    held = await kube.get("v1", "ConfigMap", "held", namespace)
    assert held is not None
    await kube.merge_patch(held, {"metadata": {"finalizers": [HOLD]}}, field_manager="someone")

    await kube.delete(API_VERSION, "Application", "stuck", home)

    async def blocked() -> dict[str, Any] | None:
        c = condition(await app_status(kube, home, "stuck"), "Deleting")
        return c if c and f"ConfigMap {namespace}/held" in c["message"] else None

    cond = await eventually(blocked, WAIT, f"the condition naming the object\n{ctl.tail()}")
    assert HOLD in cond["message"], cond
    # The later step (wave -1) waits for it; the Application stays.
    assert await kube.get("v1", "ConfigMap", "first", namespace) is not None
    assert not await gone(kube, home, "stuck")

    # A controller started afresh takes the deletion up where the cluster stands.
    ctl.kill()
    ctl = ControllerProcess(tmp_path, "ctl-2", kubeconfig, home).start()
    processes.append(ctl)
    held = await kube.get("v1", "ConfigMap", "held", namespace)
    assert held is not None
    await kube.merge_patch(held, {"metadata": {"finalizers": None}}, field_manager="someone")
    await eventually(lambda: gone(kube, home, "stuck"), WAIT, f"the app gone\n{ctl.tail()}")
    assert await names(kube, namespace) == set()


async def test_tether_app_delete_hands_the_cascade_to_the_running_controller(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    sha = git_repo.commit({"app/a.yaml": cm("a"), "app/b.yaml": cm("b")})
    await start(
        kube,
        processes,
        tmp_path,
        kubeconfig,
        home,
        new_app("handed", home, git_repo.http_url, namespace),
        sha,
    )
    code, out = await run_tether(kubeconfig, "-n", home, "app", "delete", "handed")
    assert code == 0, out
    assert f"ConfigMap {namespace}/a deleted" in out and f"ConfigMap {namespace}/b deleted" in out
    assert "application/handed deleted (by the controller)" in out, out
    assert await gone(kube, home, "handed")
    assert await names(kube, namespace) == set()


async def test_tether_app_delete_without_a_controller_cascades_itself(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
) -> None:
    git_repo.commit(
        {
            "app/a.yaml": cm("a"),
            "app/k.yaml": cm("k", **{"tether.dev/sync-options": "Delete=false"}),
        }
    )
    await kube.apply(new_app("alone", home, git_repo.http_url, namespace, auto_sync=False))
    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "alone")
    assert code == 0, out
    code, out = await run_tether(kubeconfig, "-n", home, "app", "delete", "alone")
    assert code == 0, out
    assert "no controller manages this Application" in out, out
    assert f"ConfigMap {namespace}/a deleted" in out
    assert f"ConfigMap {namespace}/k kept: annotated Delete=false" in out
    assert "application/alone deleted (by this command)" in out, out
    assert await gone(kube, home, "alone")
    assert await names(kube, namespace) == {"k"}


async def test_a_delete_the_controller_may_not_make_keeps_the_app_and_is_retried_until_it_may(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    # A controller whose ServiceAccount may do everything to the app's ConfigMaps but delete.
    account = (home, "limited")
    token = await service_account_token(kube, *account)
    everything = ["get", "list", "watch", "create", "update", "patch", "delete"]
    await grant(
        kube,
        home,
        account,
        [
            {"apiGroups": ["tether.dev"], "resources": ["applications"], "verbs": everything},
            {
                "apiGroups": ["tether.dev"],
                "resources": ["applications/status"],
                "verbs": everything,
            },
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
            {
                "apiGroups": [""],
                "resources": ["secrets", "configmaps"],
                "verbs": ["get", "list", "watch"],
            },
        ],
        name="controller-home",
    )
    await grant(
        kube,
        namespace,
        account,
        [{"apiGroups": [""], "resources": ["configmaps"], "verbs": everything[:-1]}],
        name="controller-no-delete",
    )
    config = str(token_kubeconfig(kubeconfig, token, tmp_path / "limited.kubeconfig"))
    sha = git_repo.commit({"app/a.yaml": cm("a")})
    ctl = await start(
        kube,
        processes,
        tmp_path,
        config,
        home,
        new_app("guarded", home, git_repo.http_url, namespace),
        sha,
    )
    await kube.delete(API_VERSION, "Application", "guarded", home)

    async def refused() -> dict[str, Any] | None:
        c = condition(await app_status(kube, home, "guarded"), "DeletionError")
        return c if c and f"ConfigMap {namespace}/a" in c["message"] else None

    cond = await eventually(refused, WAIT, f"the DeletionError condition\n{ctl.tail()}")
    assert "forbidden" in cond["message"] and "retrying in" in cond["message"], cond
    assert await names(kube, namespace) == {"a"}
    assert not await gone(kube, home, "guarded")

    await grant(
        kube,
        namespace,
        account,
        [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["delete"]}],
        name="controller-delete",
    )
    await eventually(lambda: gone(kube, home, "guarded"), WAIT, f"the app gone\n{ctl.tail()}")
    assert await names(kube, namespace) == set()


async def test_tether_app_delete_orphan_with_a_running_controller_leaves_the_objects(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    sha = git_repo.commit({"app/a.yaml": cm("a")})
    app = new_app("left", home, git_repo.http_url, namespace)
    await start(kube, processes, tmp_path, kubeconfig, home, app, sha)
    code, out = await run_tether(kubeconfig, "-n", home, "app", "delete", "left", "--orphan")
    assert code == 0, out
    assert "application/left deleted (orphan: its objects were left in place)" in out, out
    await eventually(lambda: gone(kube, home, "left"), WAIT, "the app gone")
    assert await names(kube, namespace) == {"a"}
