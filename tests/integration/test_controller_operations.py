"""Operations in the controller: resumed after a kill at the wave it stood at, a manual request
run exactly once while the controller runs, and the presence Lease the CLI reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devcluster.gitserver import RepoHandle

from cluster_helpers import (
    ControllerProcess,
    app_status,
    cm_yaml,
    eventually,
    new_app,
    runtime_options,
)
from tether.api.application import API_VERSION
from tether.controller.presence import active_controller
from tether.controller.runtime import Runtime
from tether.kube import KubeClient
from tether.model import Obj
from tether.sync.state import OperationRequest


def cm(name: str, wave: int) -> str:
    return (
        f"apiVersion: v1\nkind: ConfigMap\n"
        f"metadata: {{name: {name}, annotations: {{tether.dev/sync-wave: '{wave}'}}}}\n"
        f"data: {{wave: '{wave}'}}\n"
    )


NEVER_READY_WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, annotations: {tether.dev/sync-wave: '2'}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {sim.tether.dev/behavior: never-ready}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
"""


async def operation_state(kube: KubeClient, ns: str, name: str) -> dict[str, Any]:
    return dict((await app_status(kube, ns, name)).get("operationState") or {})


async def make_ready(kube: KubeClient, ns: str) -> int:
    """Reports the ``web`` pods Ready, as a kubelet would once their probe passed."""
    pods, _ = await kube.list("v1", "Pod", ns, label_selector="app=web")
    for pod in pods:
        t = "2026-01-01T00:00:00Z"
        conditions = [
            {"type": c, "status": "True", "lastTransitionTime": t}
            for c in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
        statuses = [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": "",
                "ready": True,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": t}},
            }
            for c in pod["spec"]["containers"]
        ]
        await kube.patch_status(pod, {"conditions": conditions, "containerStatuses": statuses})
    return len(pods)


async def test_a_controller_killed_in_wave_2_resumes_at_wave_2(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    git_repo.commit(
        {
            "app/one.yaml": cm("one", 1),
            "app/web.yaml": NEVER_READY_WEB,
            "app/three.yaml": cm("three", 3),
        },
        message="three waves",
    )
    await kube.apply(new_app("waves", home, git_repo.http_url, namespace))
    first = ControllerProcess(tmp_path, "first", kubeconfig, home, "--identity", "first")
    processes.append(first.start())

    async def at_wave_2() -> dict[str, Any] | None:
        op = await operation_state(kube, home, "waves")
        here = (op.get("phase"), op.get("syncPhase"), op.get("wave"), op.get("runBy"))
        return op if here == ("Running", "Sync", 2, "first") else None

    op = await eventually(at_wave_2, timeout=60, what="the operation waiting in wave 2")
    started = op["operation"]["id"]
    first.kill()

    one = await kube.get("v1", "ConfigMap", "one", namespace)
    assert one is not None, "wave 1 was applied before wave 2"
    assert await kube.get("v1", "ConfigMap", "three", namespace) is None, "wave 3 waits"
    assert await eventually(lambda: make_ready(kube, namespace), what="the web pod")

    second = ControllerProcess(tmp_path, "second", kubeconfig, home, "--identity", "second")
    processes.append(second.start())

    async def ended() -> dict[str, Any] | None:
        op = await operation_state(kube, home, "waves")
        return op if op.get("phase") not in (None, "Running", "Terminating") else None

    op = await eventually(ended, timeout=90, what="the operation resumed and ended")
    assert op["phase"] == "Succeeded", (op, second.tail())
    assert op["runBy"] == "second"
    assert op["operation"]["id"] == started, "the same operation went on, no new one"
    after = await kube.get("v1", "ConfigMap", "one", namespace)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == one["metadata"]["resourceVersion"], (
        "wave 1 was not applied again"
    )
    three = await kube.get("v1", "ConfigMap", "three", namespace)
    assert three is not None and three["data"] == {"wave": "3"}
    history = (await app_status(kube, home, "waves")).get("history") or []
    assert [h["result"] for h in history] == ["Succeeded"]


async def request_sync(kube: KubeClient, ns: str, name: str, request: OperationRequest) -> Obj:
    """What ``tether app sync`` does when a controller runs: leave the request on the app."""
    app = await kube.get(API_VERSION, "Application", name, ns)
    assert app is not None
    return await kube.merge_patch(app, {"operation": request.to_dict()})


async def test_b_a_manual_sync_while_the_controller_runs_is_one_operation(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    sha = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "blue"})})
    await kube.apply(new_app("manual", home, git_repo.http_url, namespace, auto_sync=False))
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:

        async def out_of_sync() -> bool:
            st = await app_status(kube, home, "manual")
            return (st.get("sync") or {}).get("status") == "OutOfSync"

        assert await eventually(out_of_sync, what="the app compared, not synced")
        request = OperationRequest(trigger="manual", initiated_by="alice@laptop")
        await request_sync(kube, home, "manual", request)

        async def done() -> Obj | None:
            app = await kube.get(API_VERSION, "Application", "manual", home)
            op = ((app or {}).get("status") or {}).get("operationState") or {}
            return app if op.get("phase") == "Succeeded" and "operation" not in app else None

        app = await eventually(done, what="the request run and cleared")
        status = app["status"]
        op = status["operationState"]
        assert op["operation"]["id"] == request.id
        assert op["operation"]["initiatedBy"] == "alice@laptop"
        assert op["runBy"] == rt.identity
        assert [(h["trigger"], h["revision"]) for h in status["history"]] == [("manual", sha)]
        assert (status["sync"]["status"], status["sync"]["revision"]) == ("Synced", sha)
        assert status["observedGeneration"] == app["metadata"]["generation"]
        live = await kube.get("v1", "ConfigMap", "settings", namespace)
        assert live is not None and live["data"] == {"color": "blue"}


async def test_b_a_request_claimed_before_a_crash_is_resumed_not_run_twice(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    """An engine claimed a request (Running, same id) and stopped before clearing it: the
    controller takes that operation up and only clears the request."""
    sha = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "red"})})
    await kube.apply(new_app("claimed", home, git_repo.http_url, namespace, auto_sync=False))
    request = OperationRequest(trigger="manual", initiated_by="bob@laptop")
    app = await request_sync(kube, home, "claimed", request)
    claimed = {"operation": request.to_dict(), "phase": "Running", "runBy": "cli"}
    await kube.patch_status(app, {"operationState": claimed})
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:

        async def done() -> Obj | None:
            app = await kube.get(API_VERSION, "Application", "claimed", home)
            op = ((app or {}).get("status") or {}).get("operationState") or {}
            return app if op.get("phase") == "Succeeded" and "operation" not in app else None

        app = await eventually(done, what="the claimed operation resumed, its request cleared")
        status = app["status"]
        assert status["operationState"]["operation"]["id"] == request.id
        assert status["operationState"]["runBy"] == rt.identity
        assert [(h["trigger"], h["revision"]) for h in status["history"]] == [("manual", sha)]


async def test_c_the_active_controller_announces_itself_until_it_stops(
    kube: KubeClient, kubeconfig: str, home: str, tmp_path: Path
) -> None:
    assert await active_controller(kube, home) is None
    async with Runtime(runtime_options(home, tmp_path, kubeconfig, identity="announced")):

        async def announced() -> bool:
            return await active_controller(kube, home) == "announced"

        assert await eventually(announced, what="the presence lease")
    assert await active_controller(kube, home) is None


async def test_an_operation_waiting_for_a_wave_is_terminated(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    git_repo.commit({"app/web.yaml": NEVER_READY_WEB, "app/three.yaml": cm("three", 3)})
    await kube.apply(new_app("stuck", home, git_repo.http_url, namespace))
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)):

        async def waiting() -> Obj | None:
            app = await kube.get(API_VERSION, "Application", "stuck", home)
            op = ((app or {}).get("status") or {}).get("operationState") or {}
            return app if (op.get("phase"), op.get("wave")) == ("Running", 2) else None

        app = await eventually(waiting, what="the operation waiting in wave 2")
        # What `tether app terminate-op` writes.
        await kube.patch_status(app, {"operationState": {"phase": "Terminating"}})

        async def ended() -> dict[str, Any] | None:
            op = await operation_state(kube, home, "stuck")
            return op if op.get("phase") not in ("Running", "Terminating") else None

        op = await eventually(ended, what="the operation terminated")
        assert op["phase"] == "Failed"
        assert "terminated" in op["message"]
        assert await kube.get("v1", "ConfigMap", "three", namespace) is None
