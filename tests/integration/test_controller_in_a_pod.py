"""`tether controller` as a real process, configured the way the shipped Deployment runs it:
its namespace from $POD_NAMESPACE, leader election on, and what it does when it loses the
Lease."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from devcluster.gitserver import RepoHandle

from cluster_helpers import WAIT, ControllerProcess, cm_yaml, equals, eventually, new_app, synced_to
from tether.controller.leader import LEASE_API_VERSION, format_micro_time
from tether.kube import KubeClient


def pod_process(tmp: Path, kubeconfig: str, namespace: str, identity: str) -> ControllerProcess:
    """`tether controller --leader-elect` with only the environment a Pod gives it."""
    env = {"POD_NAME": identity, "POD_NAMESPACE": namespace}
    return ControllerProcess(tmp, identity, kubeconfig, None, "--leader-elect", env=env)


async def lease_holder(kube: KubeClient, ns: str) -> str:
    lease = await kube.get(LEASE_API_VERSION, "Lease", "tether-controller", ns)
    return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")


async def leading_and_synced(
    kube: KubeClient,
    kubeconfig: str,
    ns: str,
    dest: str,
    repo: RepoHandle,
    tmp: Path,
    pods: list[ControllerProcess],
) -> ControllerProcess:
    """A Pod "pod-a" told nothing but its namespace, once it holds the Lease there and has
    synced an Application of that namespace."""
    sha = repo.commit({"app/cm.yaml": cm_yaml("pod", {})})
    await kube.apply(new_app("pod", ns, repo.http_url, dest))
    pod = pod_process(tmp, kubeconfig, ns, "pod-a")
    pods.append(pod.start())
    try:
        await eventually(lambda: equals(lease_holder(kube, ns), "pod-a"), WAIT, "the Lease")
        await eventually(lambda: synced_to(kube, ns, "pod", sha), WAIT, "the app synced")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{pod.output()}") from None
    return pod


async def test_pod_namespace_holds_the_applications_and_the_lease_by_default(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    await leading_and_synced(kube, kubeconfig, home, namespace, git_repo, tmp_path, processes)


async def test_a_leader_that_loses_its_lease_stops_and_exits(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    pod = await leading_and_synced(kube, kubeconfig, home, namespace, git_repo, tmp_path, processes)
    assert pod.proc is not None
    proc = pod.proc
    # Another replica takes the Lease (as after a network partition healed on its side).
    lease = await kube.get(LEASE_API_VERSION, "Lease", "tether-controller", home)
    assert lease is not None
    now = format_micro_time(datetime.now(UTC))
    lease["spec"].update(holderIdentity="usurper", renewTime=now, leaseDurationSeconds=3600)
    await kube.request(
        "PUT",
        f"/apis/{LEASE_API_VERSION}/namespaces/{home}/leases/tether-controller",
        body=lease,
    )
    code = await asyncio.wait_for(asyncio.to_thread(proc.wait), WAIT)
    out = pod.output()
    assert code == 1, out
    assert "pod-a lost leadership; stopping" in out, out
    assert "another replica holds the lease" in out, out
    assert await lease_holder(kube, home) == "usurper"
