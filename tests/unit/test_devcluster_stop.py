"""Stopping the local control plane: every process it started is gone before its data is.

Run against real child processes in a state directory of their own, never the shared
cluster: a process that ignores SIGTERM, one that leaves a child behind, a PID recorded by
another instance, a port still served by something unrecorded, a PID reused by a stranger.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from devcluster.cluster import Cluster, ClusterError
from devcluster.procs import pid_alive, start_time

pytestmark = pytest.mark.unit

# Ignores SIGTERM, then says so by writing its PID to the file named in argv[1].
IGNORES_TERM = (
    "import os, signal, sys\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
    "signal.pause()\n"
)
# Starts a child that ignores SIGTERM (in its own process group), then waits; the parent
# itself dies of SIGTERM.
LEAVES_A_CHILD = (
    "import signal, subprocess, sys\n"
    f"subprocess.Popen([sys.executable, '-c', {IGNORES_TERM!r}, sys.argv[1]])\n"
    "signal.pause()\n"
)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path / "dev")
    c._save()
    yield c
    # Whatever a failing test left running is stopped here, by PID.
    c._reload()
    for pid in c._pids().values():
        # The group too: a child may outlive its leader.
        subprocess.run(["kill", "-9", f"-{pid}", str(pid)], check=False, capture_output=True)


def wait_for_pid_file(path: Path) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.02)
    raise AssertionError(f"{path} was not written")


def test_a_process_ignoring_sigterm_is_killed_before_the_data_is_deleted(
    cluster: Cluster, tmp_path: Path
) -> None:
    ready = tmp_path / "etcd.pid"
    pid = cluster._spawn("etcd", [sys.executable, "-c", IGNORES_TERM, str(ready)])
    wait_for_pid_file(ready)

    cluster.down(quiet=True, grace=0.2)

    assert not pid_alive(pid)
    assert not cluster.p.data.exists()


def test_a_child_left_behind_by_a_stopped_process_is_stopped_too(
    cluster: Cluster, tmp_path: Path
) -> None:
    ready = tmp_path / "child.pid"
    cluster._spawn("kube-apiserver", [sys.executable, "-c", LEAVES_A_CHILD, str(ready)])
    child = wait_for_pid_file(ready)

    cluster.down(quiet=True, grace=0.2)

    assert not pid_alive(child), "a child of the stopped process still runs"
    assert not cluster.p.data.exists()


def test_an_instance_stops_the_processes_another_instance_started_since(
    cluster: Cluster, tmp_path: Path
) -> None:
    # Read before the restart below, as a long-lived test session's instance would be.
    stale = Cluster(cluster.p.root)
    ready = tmp_path / "apiserver.pid"
    pid = cluster._spawn("kube-apiserver", [sys.executable, "-c", IGNORES_TERM, str(ready)])
    wait_for_pid_file(ready)

    stale.down(quiet=True, grace=0.2)

    assert not pid_alive(pid), "the process recorded by the other instance still runs"
    assert not cluster.p.data.exists()


def test_the_data_stays_while_something_unrecorded_still_serves_the_apiserver_port(
    cluster: Cluster,
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        cluster.state["apiserver_port"] = listener.getsockname()[1]
        cluster._save()
        (cluster.p.data / "etcd").mkdir()

        with pytest.raises(ClusterError, match=r"still listens on kube-apiserver port"):
            cluster.down(quiet=True, grace=0.2)

        assert (cluster.p.data / "etcd").is_dir()
        assert (
            json.loads(cluster.p.state.read_text())["apiserver_port"] == (listener.getsockname()[1])
        )


def test_a_recorded_pid_now_held_by_another_process_is_not_signalled(cluster: Cluster) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    try:
        started = start_time(stranger.pid)
        assert started is not None
        # The PID we recorded once, now reused: same number, a different start time.
        cluster.state["pids"] = {"etcd": stranger.pid}
        cluster.state["start_times"] = {"etcd": started - 1}
        cluster._save()

        cluster.down(quiet=True, grace=0.2)

        assert stranger.poll() is None, "an unrelated process was stopped"
        assert not cluster.p.data.exists()
    finally:
        stranger.kill()
        stranger.wait()
