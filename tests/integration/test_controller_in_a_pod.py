"""`tether controller` as a real process, configured the way the shipped Deployment runs it:
its namespace from $POD_NAMESPACE, leader election on, and what it does when it loses the
Lease."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from devcluster.gitserver import RepoHandle
from devcluster.procs import free_port
from test_controller import cm_yaml, eventually, home  # noqa: F401  (home is a fixture)
from test_robustness import new_app, synced_to

from tether.controller.leader import LEASE_API_VERSION, format_micro_time
from tether.kube import KubeClient

REPO = Path(__file__).resolve().parents[2]
TETHER = str(REPO / ".venv" / "bin" / "tether")
WAIT = 90.0


class Pod:
    """`tether controller --leader-elect` with only the environment a Pod gives it."""

    def __init__(self, tmp: Path, kubeconfig: str, namespace: str, identity: str) -> None:
        self.log = tmp / f"{identity}.log"
        self.args = [
            TETHER,
            "controller",
            "--kubeconfig",
            kubeconfig,
            "--leader-elect",
            "--http-host",
            "127.0.0.1",
            "--http-port",
            str(free_port()),
            "--audit-db",
            str(tmp / f"{identity}.db"),
            "--cache-dir",
            str(tmp / f"{identity}-git"),
        ]
        self.env = {**os.environ, "POD_NAME": identity, "POD_NAMESPACE": namespace}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Pod:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.args,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def pods() -> Iterator[list[Pod]]:
    started: list[Pod] = []
    yield started
    for p in started:
        p.stop()


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
    pods: list[Pod],
) -> Pod:
    """A Pod "pod-a" told nothing but its namespace, once it holds the Lease there and has
    synced an Application of that namespace."""
    sha = repo.commit({"app/cm.yaml": cm_yaml("pod", {})})
    await kube.apply(new_app("pod", ns, repo.http_url, dest))
    pod = Pod(tmp, kubeconfig, ns, "pod-a")
    pods.append(pod.start())
    try:
        await eventually(lambda: _eq(lease_holder(kube, ns), "pod-a"), WAIT, "the Lease")
        await eventually(lambda: synced_to(kube, ns, "pod", sha), WAIT, "the app synced")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{pod.output()}") from None
    return pod


async def test_pod_namespace_holds_the_applications_and_the_lease_by_default(
    kube: KubeClient,
    kubeconfig: str,
    home: str,  # noqa: F811
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    pods: list[Pod],
) -> None:
    await leading_and_synced(kube, kubeconfig, home, namespace, git_repo, tmp_path, pods)


async def test_a_leader_that_loses_its_lease_stops_and_exits(
    kube: KubeClient,
    kubeconfig: str,
    home: str,  # noqa: F811
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    pods: list[Pod],
) -> None:
    pod = await leading_and_synced(kube, kubeconfig, home, namespace, git_repo, tmp_path, pods)
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


async def _eq(value: Awaitable[object], want: object) -> bool:
    return bool(await value == want)
