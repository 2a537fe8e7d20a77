"""The test bed is real: a kube-apiserver with etcd, controllers and simulated nodes."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import pytest

from cluster_helpers import REPO, eventually, widget_crd
from tether.kube import KubeClient, WatchEvent
from tether.model import Obj


def cm(name: str, ns: str, data: dict[str, str]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data,
    }


def deployment(name: str, ns: str, image: str = "nginx:1.27", replicas: int = 2) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


async def test_server_side_apply_records_field_manager(kube: KubeClient, namespace: str) -> None:
    out = await kube.apply(cm("a", namespace, {"k": "v"}))
    managers = {m["manager"] for m in out["metadata"]["managedFields"]}
    assert managers == {"tether"}
    assert out["data"] == {"k": "v"}
    # A second manager owning another field is merged, not overwritten.
    await kube.apply(cm("a", namespace, {"other": "x"}), field_manager="someone-else")
    live = await kube.get("v1", "ConfigMap", "a", namespace)
    assert live is not None and live["data"] == {"k": "v", "other": "x"}


async def test_dry_run_changes_nothing(kube: KubeClient, namespace: str) -> None:
    predicted = await kube.apply(cm("dry", namespace, {"k": "v"}), dry_run=True)
    assert predicted["data"] == {"k": "v"}
    assert predicted["metadata"].get("uid")  # the server filled it in as if created
    assert await kube.get("v1", "ConfigMap", "dry", namespace) is None
    # dry-run of a Deployment returns server defaults.
    d = await kube.apply(deployment("d", namespace), dry_run=True)
    assert d["spec"]["strategy"]["type"] == "RollingUpdate"
    assert d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert await kube.get("apps/v1", "Deployment", "d", namespace) is None


async def test_crd_and_custom_resources(kube: KubeClient, namespace: str) -> None:
    plural = f"widgets{uuid.uuid4().hex[:6]}"
    group = "testbed.tether.dev"
    kind = "Widget" + plural[-6:].capitalize()
    crd = widget_crd(group, plural, kind)
    await kube.apply(crd)
    try:
        await kube.wait_for_resource(f"{group}/v1", kind)
        cr = {
            "apiVersion": f"{group}/v1",
            "kind": kind,
            "metadata": {"name": "w1", "namespace": namespace},
            "spec": {"size": 3},
        }
        out = await kube.apply(cr)
        assert out["spec"]["size"] == 3
        items, _ = await kube.list(f"{group}/v1", kind, namespace)
        assert [i["metadata"]["name"] for i in items] == ["w1"]
        # The schema is enforced by the API server itself.
        bad = {**cr, "metadata": {"name": "w2", "namespace": namespace}, "spec": {"size": 0}}
        with pytest.raises(Exception, match="size"):
            await kube.apply(bad)
    finally:
        await kube.delete(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            f"{plural}.{group}",
            propagation="Background",
        )


async def test_watch_receives_events(kube: KubeClient, namespace: str) -> None:
    _, rv = await kube.list("v1", "ConfigMap", namespace)
    seen: list[WatchEvent] = []

    async def consume() -> None:
        async for ev in kube.watch("v1", "ConfigMap", namespace=namespace, resource_version=rv):
            if ev.object["metadata"]["name"] == "watched":
                seen.append(ev)
                if ev.type == "DELETED":
                    return

    task = asyncio.create_task(consume())
    await kube.apply(cm("watched", namespace, {"a": "1"}))
    await kube.apply(cm("watched", namespace, {"a": "2"}))
    await kube.delete("v1", "ConfigMap", "watched", namespace, propagation="Background")
    await asyncio.wait_for(task, 20)
    assert [e.type for e in seen] == ["ADDED", "MODIFIED", "DELETED"]


async def test_namespace_deletion_completes(kube: KubeClient) -> None:
    name = f"t-del-{uuid.uuid4().hex[:6]}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    await kube.apply(deployment("web", name, replicas=1))
    await kube.apply(cm("c", name, {"x": "y"}))

    async def has_pod() -> bool:
        items, _ = await kube.list("v1", "Pod", name)
        return bool(items)

    await eventually(has_pod)
    await kube.delete("v1", "Namespace", name, propagation="Background")

    async def gone() -> bool:
        return await kube.get("v1", "Namespace", name) is None

    await eventually(gone, timeout=60)


async def test_deployment_becomes_available(kube: KubeClient, namespace: str) -> None:
    await kube.apply(deployment("web", namespace, replicas=2))

    async def available() -> bool:
        d = await kube.get("apps/v1", "Deployment", "web", namespace)
        conds = {c["type"]: c["status"] for c in (d or {}).get("status", {}).get("conditions", [])}
        return (
            conds.get("Available") == "True"
            and d is not None
            and (d["status"].get("availableReplicas") == 2)
        )

    await eventually(available)
    pods, _ = await kube.list("v1", "Pod", namespace)
    assert len(pods) == 2
    assert all(p["spec"]["nodeName"].startswith("sim-node-") for p in pods)


async def test_job_completes(kube: KubeClient, namespace: str) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once", "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}],
                }
            },
        },
    }
    await kube.apply(job)

    async def complete() -> bool:
        j = await kube.get("batch/v1", "Job", "once", namespace)
        conds = {c["type"]: c["status"] for c in (j or {}).get("status", {}).get("conditions", [])}
        return conds.get("Complete") == "True"

    await eventually(complete)


async def test_failing_pod_stays_not_ready(kube: KubeClient, namespace: str) -> None:
    await kube.apply(deployment("broken", namespace, image="example/crashloop:1", replicas=1))

    async def crashlooping() -> bool:
        pods, _ = await kube.list("v1", "Pod", namespace)
        if not pods:
            return False
        st = pods[0].get("status", {}).get("containerStatuses") or [{}]
        return st[0].get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff"

    await eventually(crashlooping)

    async def counted_unavailable() -> bool:
        # The Deployment controller has seen the crash-looping pod and counts it unavailable.
        d = await kube.get("apps/v1", "Deployment", "broken", namespace)
        return ((d or {}).get("status") or {}).get("unavailableReplicas") == 1

    await eventually(counted_unavailable)
    d = await kube.get("apps/v1", "Deployment", "broken", namespace)
    assert d is not None
    assert d["status"].get("availableReplicas", 0) == 0
    pods, _ = await kube.list("v1", "Pod", namespace)
    ready = next(c for c in pods[0]["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"


def test_kubectl_reaches_the_cluster(kubeconfig: str) -> None:
    out = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "kubectl"),
            "--kubeconfig",
            kubeconfig,
            "get",
            "ns",
            "-o",
            "name",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert "namespace/default" in out
