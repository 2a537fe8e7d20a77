"""``tether app sync``, ``terminate-op`` and ``wait`` as a person runs them, against the real
control plane, git server and (where it matters) a real controller process: who runs a manual
sync (the controller when one runs, else the command, and the output says which), a sync of
selected resources, stopping a sync that waits on a wave that never becomes healthy, and
waiting for an app to be Synced and Healthy."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import yaml
from devcluster.gitserver import RepoHandle

from cluster_helpers import (
    WAIT,
    ControllerProcess,
    app_status,
    cm_yaml,
    eventually,
    new_app,
    run_tether,
)
from tether.kube import KubeClient

POLL = "1h"
"""Apps and controllers poll Git this seldom: what happens within a test was asked for."""


def controller(tmp_path: Path, kubeconfig: str, home: str) -> ControllerProcess:
    return ControllerProcess(tmp_path, "ctl", kubeconfig, home, "--refresh-interval", POLL)


async def manual_app(kube: KubeClient, name: str, home: str, repo: RepoHandle, dest: str) -> None:
    """An app synced only when asked."""
    await kube.apply(new_app(name, home, repo.http_url, dest, "app", POLL, auto_sync=False))


def deployment(name: str, *, wave: int, never_ready: bool) -> str:
    pod_meta: dict[str, Any] = {"labels": {"app": name}}
    if never_ready:
        pod_meta["annotations"] = {"sim.tether.dev/behavior": "never-ready"}
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "annotations": {"tether.dev/sync-wave": str(wave)}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": pod_meta,
                    "spec": {"containers": [{"name": name, "image": "nginx:1.27"}]},
                },
            },
        }
    )


def in_wave(text: str, wave: int) -> str:
    obj = yaml.safe_load(text)
    obj["metadata"]["annotations"] = {"tether.dev/sync-wave": str(wave)}
    return yaml.safe_dump(obj)


async def cm_data(kube: KubeClient, ns: str, name: str) -> dict[str, Any] | None:
    obj = await kube.get("v1", "ConfigMap", name, ns)
    return None if obj is None else dict(obj.get("data") or {})


async def operation_state(kube: KubeClient, ns: str, name: str) -> dict[str, Any]:
    return dict((await app_status(kube, ns, name)).get("operationState") or {})


async def test_sync_with_no_controller_is_run_by_the_command_and_says_so(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"mode": "blue"})})
    await manual_app(kube, "alone", home, git_repo, namespace)

    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "alone", "--timeout", "60")
    assert code == 0, out
    assert f"run by this command: no controller is running for namespace {home}" in out
    assert "Succeeded" in out
    assert await cm_data(kube, namespace, "settings") == {"mode": "blue"}
    op = await operation_state(kube, home, "alone")
    assert (op["phase"], op["runBy"]) == ("Succeeded", "cli")


async def test_sync_while_a_controller_runs_is_recorded_and_run_by_it(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"mode": "green"})})
    await manual_app(kube, "shop", home, git_repo, namespace)
    ctl = controller(tmp_path, kubeconfig, home)
    processes.append(ctl.start())
    # The controller compares the app (and writes its status) once it runs.
    await eventually(
        lambda: app_status(kube, home, "shop"), WAIT, "the controller's first status\n" + ctl.tail()
    )

    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "shop", "--timeout", "60")
    assert code == 0, out + ctl.tail()
    m = re.search(r"run by controller (\S+)", out)
    assert m is not None, out
    assert await cm_data(kube, namespace, "settings") == {"mode": "green"}

    obj = await kube.get("tether.dev/v1alpha1", "Application", "shop", home)
    assert obj is not None
    assert not obj.get("operation"), "the controller took the request up"
    op = obj["status"]["operationState"]
    assert op["phase"] == "Succeeded"
    assert op["runBy"] == m.group(1) != "cli"
    assert op["operation"]["trigger"] == "manual"
    assert "@" in op["operation"]["initiatedBy"]
    # One operation, one history entry: the command did not run a sync of its own.
    assert len(obj["status"]["history"]) == 1


async def test_sync_of_one_resource_leaves_the_others_out_of_sync(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    git_repo.commit(
        {
            "app/a.yaml": cm_yaml("a", {"v": "1"}),
            "app/b.yaml": cm_yaml("b", {"v": "1"}),
        }
    )
    await manual_app(kube, "pair", home, git_repo, namespace)
    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "pair", "--timeout", "60")
    assert code == 0, out
    git_repo.commit(
        {"app/a.yaml": cm_yaml("a", {"v": "2"}), "app/b.yaml": cm_yaml("b", {"v": "2"})}
    )

    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "sync", "pair", "--resource", ":ConfigMap:a"
    )
    assert code == 0, out
    assert await cm_data(kube, namespace, "a") == {"v": "2"}
    assert await cm_data(kube, namespace, "b") == {"v": "1"}
    # b is what keeps the app from being Synced, and `wait --sync` says so.
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "wait", "pair", "--sync", "--timeout", "2"
    )
    assert code == 1, out
    assert "sync is OutOfSync" in out and f"ConfigMap {namespace}/b" in out
    assert f"ConfigMap {namespace}/a" not in out

    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "sync", "pair", "--resource", "ConfigMap/a"
    )
    assert code == 2, out
    assert "expected GROUP:KIND:NAME" in out


async def test_wait_returns_when_reached_and_names_what_is_not(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    git_repo.commit(
        {
            "app/cm.yaml": cm_yaml("settings", {"mode": "blue"}),
            "app/web.yaml": deployment("web", wave=0, never_ready=False),
        }
    )
    await manual_app(kube, "fine", home, git_repo, namespace)
    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "fine", "--timeout", "0")
    assert code == 0, out
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "wait", "fine", "--health", "--sync", "--timeout", "60"
    )
    assert code == 0, out
    assert "Sync: Synced" in out and "Healthy" in out

    git_repo.commit({"app/web.yaml": deployment("stuck", wave=0, never_ready=True)})
    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "fine", "--timeout", "0")
    assert code == 0, out
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "wait", "fine", "--health", "--sync", "--timeout", "3"
    )
    assert code == 1, out
    assert "timed out" in out and "health is Progressing" in out
    assert f"Deployment.apps {namespace}/stuck (Progressing" in out


async def stops_a_sync_waiting_on_a_wave(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    ctl: ControllerProcess | None,
) -> None:
    """Wave 1 never becomes healthy; terminate-op ends the sync before wave 2."""
    git_repo.commit(
        {
            "app/slow.yaml": deployment("slow", wave=1, never_ready=True),
            "app/after.yaml": in_wave(cm_yaml("after", {"v": "1"}), 2),
        }
    )
    await manual_app(kube, "waves", home, git_repo, namespace)
    tail = ctl.tail if ctl is not None else (lambda: "")
    sync = asyncio.create_task(
        run_tether(kubeconfig, "-n", home, "app", "sync", "waves", "--timeout", "300")
    )

    async def waiting_on_wave_1() -> bool:
        op = await operation_state(kube, home, "waves")
        return (op.get("phase"), op.get("syncPhase"), op.get("wave")) == ("Running", "Sync", 1)

    await eventually(waiting_on_wave_1, WAIT, "the sync waiting on wave 1\n" + tail())
    assert await kube.get("apps/v1", "Deployment", "slow", namespace) is not None

    code, out = await run_tether(kubeconfig, "-n", home, "app", "terminate-op", "waves")
    assert code == 0, out + tail()
    assert "Failed" in out and "terminated" in out

    code, out = await asyncio.wait_for(sync, WAIT)
    assert code == 1, out
    assert "terminated" in out
    op = await operation_state(kube, home, "waves")
    assert op["phase"] == "Failed" and "terminated" in op["message"]
    applied = {(r["kind"], r["name"]) for r in op["syncResult"]["resources"]}
    assert ("Deployment", "slow") in applied
    assert ("ConfigMap", "after") not in applied
    assert await cm_data(kube, namespace, "after") is None


async def test_terminate_op_stops_a_sync_the_controller_runs(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    ctl = controller(tmp_path, kubeconfig, home)
    processes.append(ctl.start())
    await stops_a_sync_waiting_on_a_wave(kube, kubeconfig, home, namespace, git_repo, ctl)


async def test_terminate_op_stops_a_sync_the_command_runs(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    await stops_a_sync_waiting_on_a_wave(kube, kubeconfig, home, namespace, git_repo, None)


async def test_terminate_op_with_nothing_running_is_an_error(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"mode": "blue"})})
    await manual_app(kube, "idle", home, git_repo, namespace)
    code, out = await run_tether(kubeconfig, "-n", home, "app", "terminate-op", "idle")
    assert code == 2, out
    assert f"no operation is running on Application {home}/idle" in out


async def test_sync_output_as_json_names_who_ran_it(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    git_repo.commit({"app/cm.yaml": in_wave(cm_yaml("settings", {"mode": "blue"}), 3)})
    await manual_app(kube, "jsonout", home, git_repo, namespace)
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "sync", "jsonout", "--timeout", "60", "-o", "json"
    )
    assert code == 0, out
    body = json.loads(out[out.index("{") :])
    assert (body["phase"], body["runBy"], body["byController"]) == ("Succeeded", "cli", False)
    (rec,) = [r for r in body["resources"] if r["name"] == "settings"]
    assert (rec["syncPhase"], rec["wave"], rec["action"]) == ("Sync", 3, "created")


async def test_terminate_op_ends_a_sync_whose_engine_is_gone(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    """A sync left Running by a command that was stopped, and no controller: terminate-op
    marks it, waits for an engine, and with none left ends it itself."""
    git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"mode": "blue"})})
    await manual_app(kube, "orphaned", home, git_repo, namespace)
    obj = await kube.get("tether.dev/v1alpha1", "Application", "orphaned", home)
    assert obj is not None
    left = {
        "operation": {"id": "op-left-here", "trigger": "manual", "sync": {}},
        "phase": "Running",
        "syncPhase": "Sync",
        "wave": 0,
        "runBy": "cli",
        "message": "sync in progress",
    }
    await kube.patch_status(obj, {"operationState": left})
    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "orphaned")
    assert code == 2, out
    assert "is Running (operation op-left-here, run by cli)" in out

    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "terminate-op", "orphaned", "--timeout", "1"
    )
    assert code == 0, out
    assert "operation op-left-here on orphaned: Failed: terminated" in out
    op = await operation_state(kube, home, "orphaned")
    assert (op["phase"], op["message"]) == ("Failed", "terminated")
    assert await cm_data(kube, namespace, "settings") is None
