"""Process and port helpers shared by the test-bed tools: everything is found by PID, never
by name, and ports are picked free on loopback."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still "exists" (PID 1 in a container may never reap it): count it as dead.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None when it is gone.

    Recorded next to a PID, it tells the process we started from a later one that was
    given the same PID: only the former may be signalled.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; fields are counted after the command name, which may hold spaces and ")".
    return int(stat.rsplit(")", 1)[1].split()[19])


def _signal(pid: int, sig: int) -> None:
    """``sig`` to ``pid`` and, when it leads a process group (start_new_session), to the whole
    group: a child it left behind must not outlive the stop."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pid: int) -> bool:
    if pid_alive(pid):
        return True
    # The leader is gone; are members of its group left?
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pid and pid_alive(int(entry.name)):
                    return True
            except (ProcessLookupError, PermissionError):
                continue
    return False


def stop_pids(pids: list[int], grace: float = 10.0, kill_wait: float = 10.0) -> list[int]:
    """Stops ``pids`` (and their process groups): SIGTERM, wait up to ``grace`` seconds for
    them to exit, SIGKILL what is left, wait up to ``kill_wait``. Returns the PIDs whose
    process or group is still alive (empty when everything is gone)."""
    live = [p for p in pids if _group_alive(p)]
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, kill_wait)):
        for pid in live:
            _signal(pid, sig)
        deadline = time.monotonic() + wait
        while live and time.monotonic() < deadline:
            time.sleep(0.05)
            live = [p for p in live if _group_alive(p)]
    return live


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; returns once the process is gone."""
    left = stop_pids([pid], grace=timeout)
    if left:
        raise RuntimeError(f"process {pid} is still running after SIGKILL")
