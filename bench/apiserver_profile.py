"""A CPU profile of kube-apiserver over a benchmark's timed phase, and where its samples went.

kube-apiserver serves Go's profiler at ``/debug/pprof/profile`` (``--profiling``, on by
default); ``kubectl get --raw`` fetches it with the kubeconfig's credentials (the local
control plane's admin may read it). The profile covers a fixed number of seconds from its
start, so a phase shorter than that leaves an idle tail in it (few samples), and a longer one
is profiled in part.

The split printed comes from ``go tool pprof -top -cum`` (the Go toolchain the local control
plane is built with); without ``go`` on the PATH only the file is written. Each row is the
cumulative CPU of one function of the API server, as a share of all samples; the rows overlap
nowhere but are not everything (authentication, HTTP and TLS, request decoding and the
response's encoding are the rest).

    go tool pprof -top -cum FILE      # the whole profile
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

STATUS_WRITES = "customresource.(*StatusREST).Update"
UPDATES = "registry.(*Store).Update"
ROWS = (
    ("writes of a custom resource's status (an Application's claim and end)", STATUS_WRITES),
    ("other updates and server-side applies (the objects, finalizers)", UPDATES),
    ("creates (Events, Namespaces)", "registry.(*Store).Create"),
    ("reads (get, list)", "handlers.ListResource.func1"),
    ("watches served", "handlers.serveWatch"),
    ("each write read back from etcd for the watch cache", "etcd3.(*watchChan).processEvent"),
    ("Go's garbage collector (the allocations of all of the above)", "runtime.gcBgMarkWorker"),
)
"""(what, the function whose cumulative CPU it is). Updates are counted without the status
writes inside them, reads without the watches."""

_LINE = re.compile(r"^\s*\S+\s+\S+%\s+\S+%\s+(\S+)\s+\S+%\s+(.+?)\s*$")


@dataclass
class ApiServerProfile:
    """``seconds`` of kube-apiserver's CPU profile, from when it is started, into ``path``."""

    kubectl: Path
    kubeconfig: str
    path: Path
    seconds: int
    _proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("wb") as out:
            self._proc = subprocess.Popen(
                [
                    str(self.kubectl),
                    "--kubeconfig",
                    self.kubeconfig,
                    "get",
                    "--raw",
                    f"/debug/pprof/profile?seconds={self.seconds}",
                ],
                stdout=out,
                stderr=subprocess.PIPE,
            )

    async def finish(self) -> list[str]:
        """Waits for the profile to end; returns the lines to print: where it is, and the
        split of its samples (when ``go`` is there to read it)."""
        assert self._proc is not None, "start() first"
        _, err = await asyncio.to_thread(self._proc.communicate)
        if self._proc.returncode != 0:
            return [f"kube-apiserver profile failed: {err.decode(errors='replace').strip()}"]
        lines = [f"kube-apiserver CPU profile ({self.seconds} s): {self.path}"]
        go = shutil.which("go")
        if go is None:
            return [*lines, "  (no `go` on the PATH to read it: go tool pprof -top -cum FILE)"]
        out = subprocess.run(
            [go, "tool", "pprof", "-top", "-cum", "-nodecount=100000", str(self.path)],
            capture_output=True,
            text=True,
            check=False,
        )
        return lines + [f"  {row}" for row in split(out.stdout)]


def split(top: str) -> list[str]:
    """The rows of ``ROWS`` from ``go tool pprof -top -cum`` output: each function's
    cumulative seconds and share of the profile's samples."""
    total_m = re.search(r"Total samples = (\S+)", top)
    if total_m is None:
        return ["(empty profile)"]
    total = seconds(total_m.group(1))
    cum: dict[str, float] = {}
    for line in top.splitlines():
        m = _LINE.match(line)
        if m:
            cum[m.group(2)] = seconds(m.group(1))

    def of(suffix: str) -> float:
        return sum(v for name, v in cum.items() if name.endswith(suffix))

    got = {fn: of(fn) for _, fn in ROWS}
    got[UPDATES] -= got[STATUS_WRITES]
    got["handlers.ListResource.func1"] -= got["handlers.serveWatch"]
    rows = [f"{total:.2f} s of samples"]
    rows += [f"{got[fn]:6.2f} s {got[fn] / total:6.1%}  {what}" for what, fn in ROWS]
    return rows


def seconds(text: str) -> float:
    """``1.5s``, ``950ms``, ``12us`` in seconds."""
    for unit, scale in (("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9), ("s", 1.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)
