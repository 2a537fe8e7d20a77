"""One way to run an external tool (git, kustomize, helm): limits, isolation, clear errors.

Every tool runs in its own process group with a wall-clock timeout, a cap on the bytes it
may print, a memory limit, a minimal environment (never the controller's own, which may hold
tokens) and, unless the caller allows it, no network; a limit on how many run at once keeps a
burst of renders from starving the controller.

How each limit is enforced, and why:

* Memory: ``RLIMIT_DATA``, set by util-linux ``prlimit`` before it execs the tool. Measured
  with helm 4.3 and kubectl 1.37 (Go): under ``RLIMIT_AS`` neither even starts below 1 GiB,
  because the Go runtime reserves address space it never touches; under ``RLIMIT_DATA``
  (which since Linux 4.7 counts private writable mappings, i.e. the Go and Python heaps but
  not reservations) both run at 128 MiB, and a Go or Python program that allocates past the
  limit fails at once ("fatal error: runtime: out of memory", ``MemoryError``). A watchdog
  on VmRSS would only notice after the fact and costs a /proc scan per tick. The limit is per
  process: a tool that starts another (kustomize running helm) may use it in each.
  A wrapper binary rather than ``preexec_fn``: the controller runs threads, and Python
  documents ``preexec_fn`` as unsafe in their presence.
* Network: ``unshare --net`` (as root) or ``unshare --net --map-root-user`` (otherwise, where
  user namespaces are allowed) gives the tool a network namespace whose only interface,
  loopback, is down: nothing is reachable, not even 127.0.0.1. Which one works is probed once
  per process. Where neither does, the proxy variables point at a local port that refuses
  every connection, which stops tools that honour them (git, helm, curl), and a warning says
  once that the stronger isolation is unavailable.
* Time and output: the process group is killed at the timeout or once stdout passes the cap,
  so children the tool started die with it, and the controller never holds more than the cap
  (plus one read) of a tool's output in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tether.errors import TetherError

log = logging.getLogger("tether.sandbox")

MiB = 1024 * 1024
_CHUNK = MiB
"""Bytes read from a tool's stdout at once: the most the output cap can be overshot by."""
_STDERR_KEEP = 64 * 1024
"""Bytes of stderr kept (the last ones): enough for any tool's own message."""
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_KILL_GRACE = 5.0
"""Seconds a killed tool's pipes are drained before they are closed on our side."""

KIND_EXIT = "exit"
KIND_TIMEOUT = "timeout"
KIND_OUTPUT = "output"
KIND_MEMORY = "memory"
KIND_START = "start"

# What tools print when an allocation fails (Go runtime, Python, C/C++ runtimes, glibc).
_OOM_PATTERNS = (
    "out of memory",
    "memoryerror",
    "cannot allocate memory",
    "std::bad_alloc",
    "memory exhausted",
    "failed to reserve page summary memory",
)

ISOLATION_ROOT = "netns"
ISOLATION_USERNS = "netns-userns"
ISOLATION_PROXY = "proxy"


class ToolError(TetherError):
    """A tool failed, timed out, printed too much or ran out of memory.

    ``kind`` says which (``KIND_*``); ``bytes_read`` is how much of its stdout was read."""

    reason = "ToolError"

    def __init__(
        self,
        tool: str,
        message: str,
        *,
        stderr: str = "",
        hint: str = "",
        kind: str = KIND_EXIT,
        bytes_read: int = 0,
    ) -> None:
        super().__init__(f"{tool}: {message}", hint=hint)
        self.tool = tool
        self.stderr = stderr
        self.kind = kind
        self.bytes_read = bytes_read


@dataclass(frozen=True)
class Limits:
    timeout: float = 60.0
    """Seconds of wall-clock time before the process group is killed."""
    output_bytes: int = 256 * MiB
    """Most bytes accepted on stdout; more kills the tool."""
    memory_bytes: int = 2 * 1024 * MiB
    """Most memory (heap) one process of the tool may use; 0: no limit."""
    network: bool = False
    """Whether the tool may reach the network."""


@dataclass
class RunResult:
    stdout: bytes
    stderr: str
    returncode: int


class Runner:
    """Runs tools under ``Limits``; at most ``concurrency`` at once.

    ``isolation`` forces one way of cutting the network (``ISOLATION_*``); by default the
    strongest that works here is probed once per process."""

    def __init__(
        self, concurrency: int = 4, limits: Limits | None = None, *, isolation: str = ""
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self.limits = limits or Limits()
        self.concurrency = concurrency
        self.isolation = isolation
        self._slots = asyncio.Semaphore(concurrency)

    async def run(
        self,
        argv: Sequence[str],
        *,
        tool: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        limits: Limits | None = None,
        check: bool = True,
    ) -> RunResult:
        """Runs ``argv``; with ``check`` a non-zero exit raises ToolError with the tool's
        own message (its stderr, cut to a readable length). A timeout, output past the cap,
        running out of memory and a missing program raise ToolError even without ``check``.

        The tool sees only PATH, LANG, a private HOME and TMPDIR (removed afterwards), what
        ``env`` adds, and without ``limits.network`` the variables that keep it offline."""
        lim = limits or self.limits
        async with self._slots:
            home = Path(tempfile.mkdtemp(prefix="tether-run-"))
            try:
                isolation = "" if lim.network else (self.isolation or await probe_isolation())
                full_env = tool_env(home, env, isolation)
                cmd = [*_wrappers(lim, isolation), _locate(argv[0], tool, full_env), *argv[1:]]
                out, err, code = await _run_process(cmd, tool, cwd, full_env, stdin, lim)
            finally:
                shutil.rmtree(home, ignore_errors=True)
        stderr = err.decode(errors="replace")
        if code != 0 and _out_of_memory(stderr, lim):
            raise ToolError(
                tool,
                f"ran out of memory (limit {lim.memory_bytes // MiB} MiB)"
                + (f": {tool_message(stderr, 500)}" if stderr.strip() else ""),
                stderr=stderr,
                kind=KIND_MEMORY,
                hint="the input makes the tool use far more memory than a render should; "
                "check the source, or raise the render memory limit",
            )
        if check and code != 0:
            raise ToolError(tool, tool_message(stderr) or _exit_text(code), stderr=stderr)
        return RunResult(out, stderr, code)


def tool_env(home: Path, extra: Mapping[str, str] | None, isolation: str) -> dict[str, str]:
    """The whole environment a tool gets: nothing is inherited but PATH."""
    tmp = home / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH") or _DEFAULT_PATH,
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
    }
    env.update(extra or {})
    if isolation == ISOLATION_PROXY:
        proxy = f"http://127.0.0.1:{_refusing_port()}"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env[name] = env[name.lower()] = proxy
        env["NO_PROXY"] = env["no_proxy"] = ""
    return env


def _locate(program: str, tool: str, env: Mapping[str, str]) -> str:
    """The program's path, checked before the wrappers run it (their error would be theirs)."""
    found = shutil.which(program, path=env.get("PATH"))
    if found is None:
        raise ToolError(
            tool,
            f"{program} not found (PATH={env.get('PATH', '')})",
            kind=KIND_START,
            hint="install it, or put it on the controller's PATH",
        )
    return found


def _wrappers(lim: Limits, isolation: str) -> list[str]:
    cmd: list[str] = []
    if lim.memory_bytes > 0:
        cmd += ["prlimit", f"--data={lim.memory_bytes}:{lim.memory_bytes}", "--"]
    if isolation == ISOLATION_ROOT:
        cmd += ["unshare", "--net", "--"]
    elif isolation == ISOLATION_USERNS:
        cmd += ["unshare", "--net", "--map-root-user", "--"]
    return cmd


async def _run_process(
    cmd: Sequence[str],
    tool: str,
    cwd: Path | None,
    env: Mapping[str, str],
    stdin: bytes | None,
    lim: Limits,
) -> tuple[bytes, bytes, int]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            cwd=str(cwd) if cwd else None,
            env=dict(env),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own group, so a kill reaches what it started
        )
    except OSError as e:
        raise ToolError(
            tool,
            f"could not start {cmd[0]}: {e.strerror or e}",
            kind=KIND_START,
            hint="check that the tool is installed and on PATH",
        ) from None
    try:
        out, err = await asyncio.wait_for(
            _communicate(proc, stdin, lim.output_bytes, tool), lim.timeout
        )
    except TimeoutError:
        await kill_group(proc)
        raise ToolError(
            tool,
            f"timed out after {lim.timeout:g}s",
            kind=KIND_TIMEOUT,
            hint="the render may loop or wait on the network; check the source",
        ) from None
    except BaseException:
        await kill_group(proc)
        raise
    return out, err, proc.returncode or 0


async def _communicate(
    proc: asyncio.subprocess.Process, stdin: bytes | None, cap: int, tool: str
) -> tuple[bytes, bytes]:
    assert proc.stdout is not None and proc.stderr is not None
    # stdin is written, and stderr drained, beside the stdout read: a tool that prints
    # before it has read all its input, or fills the stderr pipe, must not block.
    feed = asyncio.ensure_future(_feed(proc, stdin))
    err_task = asyncio.ensure_future(_tail(proc.stderr))
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := await proc.stdout.read(_CHUNK):
            size += len(chunk)
            if size > cap:
                # The caller kills the group; nothing more of it is kept.
                raise ToolError(
                    tool,
                    f"printed more than {cap} bytes; stopped",
                    kind=KIND_OUTPUT,
                    bytes_read=size,
                    hint="the render output is far larger than any set of manifests should be",
                )
            chunks.append(chunk)
        err = await err_task
        await feed
        await proc.wait()
    finally:
        # Stopped early (cap, timeout): the helpers stop reading, so kill_group may drain.
        for task in (feed, err_task):
            task.cancel()
        await asyncio.gather(feed, err_task, return_exceptions=True)
    return b"".join(chunks), err


async def _feed(proc: asyncio.subprocess.Process, data: bytes | None) -> None:
    if data is None or proc.stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(data)
        await proc.stdin.drain()
    proc.stdin.close()


async def _tail(stream: asyncio.StreamReader) -> bytes:
    kept = b""
    while chunk := await stream.read(_CHUNK):
        kept = (kept + chunk)[-_STDERR_KEEP:]
    return kept


def _out_of_memory(stderr: str, lim: Limits) -> bool:
    if lim.memory_bytes <= 0:
        return False
    text = stderr.lower()
    return any(p in text for p in _OOM_PATTERNS)


def _exit_text(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exited with {code}"


def tool_message(stderr: str, limit: int = 2000) -> str:
    """The tool's own words, trimmed: the last lines matter most."""
    text = stderr.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


async def kill_group(proc: asyncio.subprocess.Process) -> None:
    """Kills the tool's process group, then waits for it.

    asyncio's ``wait()`` returns only once the tool's pipes are closed, and the loop notices
    that only while it reads them: what the dead group left in them is read and dropped.
    Should a process that left the group (a daemon) still hold a pipe, the pipes are closed
    on our side after a few seconds instead of waiting for it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    try:
        await asyncio.wait_for(_drain_and_wait(proc), _KILL_GRACE)
    except TimeoutError:
        transport = getattr(proc, "_transport", None)
        if transport is not None:
            transport.close()


async def _drain_and_wait(proc: asyncio.subprocess.Process) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            while await stream.read(_CHUNK):
                pass
    with contextlib.suppress(ProcessLookupError):
        await proc.wait()


# ---- network isolation, probed once per process -------------------------------------------

_probed: list[str] = []
_refusing: list[socket.socket] = []


async def probe_isolation() -> str:
    """The strongest way to cut a tool off the network that works here (``ISOLATION_*``).

    Probed on first use; two first uses at once both probe (a few milliseconds) and agree."""
    if not _probed:
        found, failures = await _probe()
        if not _probed:
            _probed.append(found)
            if found == ISOLATION_PROXY:
                log.warning(
                    "render tools cannot be put in their own network namespace (%s); they "
                    "are kept off the network only by proxy variables pointing at a closed "
                    "port, which a tool may ignore. Run the controller as root, or allow "
                    "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1"
                    " or user.max_user_namespaces), for full isolation.",
                    "; ".join(failures),
                )
    return _probed[0]


async def _probe() -> tuple[str, list[str]]:
    candidates = [(ISOLATION_USERNS, ["unshare", "--net", "--map-root-user", "--", "true"])]
    if os.geteuid() == 0:
        candidates.insert(0, (ISOLATION_ROOT, ["unshare", "--net", "--", "true"]))
    failures: list[str] = []
    for name, argv in candidates:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await proc.communicate()
        except OSError as e:
            failures.append(f"{' '.join(argv[:-2])}: {e.strerror or e}")
            continue
        if proc.returncode == 0:
            return name, failures
        failures.append(f"{' '.join(argv[:-2])}: {err.decode(errors='replace').strip()}")
    return ISOLATION_PROXY, failures


def _refusing_port() -> int:
    """A loopback port bound but never listening: every connection to it is refused."""
    if not _refusing:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        _refusing.append(s)
    port: int = _refusing[0].getsockname()[1]
    return port
