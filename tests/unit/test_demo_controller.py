"""The controller `make demo` leaves running stays out of the tests' way: it watches only the
demo's namespace, and `make test` stops it first, saying so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from devcluster import demo
from devcluster.procs import pid_alive, start_time

from tether.cli.main import controller_cmd

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def test_the_demo_controller_watches_only_the_demo_namespace(tmp_path: Path) -> None:
    argv = demo.controller_command(tmp_path, str(tmp_path / "kubeconfig"), 8080)
    assert argv[1] == "controller"
    # Parsed by the real command, as the demo's process parses it.
    ctx = controller_cmd.make_context("controller", argv[2:])
    assert ctx.params["namespaces"] == demo.HOME
    assert demo.HOME != "tether-system", "the tests' Applications live in tether-system"


@pytest.fixture
def recorded_controller(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real long-running process recorded as the demo records its controller."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import signal; signal.pause()"], start_new_session=True
    )
    (tmp_path / "controller.json").write_text(
        json.dumps({"pid": proc.pid, "port": 1, "start_time": start_time(proc.pid)})
    )
    yield proc
    proc.kill()
    proc.wait()


def stop_controller(dev: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devcluster.demo", "stop-controller"],
        cwd=REPO,
        env={**os.environ, "TETHER_DEV_DIR": str(dev)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_stopping_the_demo_controller_stops_its_process_and_says_so(
    tmp_path: Path, recorded_controller: subprocess.Popen[bytes]
) -> None:
    out = stop_controller(tmp_path).stdout
    recorded_controller.wait(timeout=30)  # reaped here: it was our child
    assert f"stopped the demo's controller (pid {recorded_controller.pid})" in out
    assert not (tmp_path / "controller.json").exists()


def test_stopping_the_demo_controller_leaves_a_reused_pid_alone(
    tmp_path: Path, recorded_controller: subprocess.Popen[bytes]
) -> None:
    state = json.loads((tmp_path / "controller.json").read_text())
    state["start_time"] -= 1  # the recorded PID now belongs to another process
    (tmp_path / "controller.json").write_text(json.dumps(state))

    out = stop_controller(tmp_path).stdout

    assert out == ""
    assert recorded_controller.poll() is None and pid_alive(recorded_controller.pid)
    assert not (tmp_path / "controller.json").exists()
