"""One way to run an external tool (git, kustomize, helm): limits, isolation, clear errors.

Every tool runs in its own process group with a wall-clock timeout, a cap on the bytes it
may print, a memory limit and, unless the caller allows it, no network; a limit on how
many run at once keeps a burst of renders from starving the controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tether.errors import TetherError


class ToolError(TetherError):
    """A tool failed, timed out, printed too much or ran out of memory."""

    reason = "ToolError"

    def __init__(self, tool: str, message: str, *, stderr: str = "", hint: str = "") -> None:
        super().__init__(f"{tool}: {message}", hint=hint)
        self.tool = tool
        self.stderr = stderr


@dataclass(frozen=True)
class Limits:
    timeout: float = 60.0
    """Seconds of wall-clock time before the process group is killed."""
    output_bytes: int = 256 * 1024 * 1024
    """Most bytes accepted on stdout; more kills the tool."""
    memory_bytes: int = 2 * 1024 * 1024 * 1024
    """Most memory the tool may use."""
    network: bool = False
    """Whether the tool may reach the network."""


@dataclass
class RunResult:
    stdout: bytes
    stderr: str
    returncode: int


class Runner:
    """Runs tools under ``Limits``; at most ``concurrency`` at once."""

    def __init__(self, concurrency: int = 4, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
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
        own message (its stderr, cut to a readable length)."""
        lim = limits or self.limits
        async with self._slots:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=str(cwd) if cwd else None,
                env=dict(env) if env is not None else None,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
            try:
                out, err = await asyncio.wait_for(
                    _communicate(proc, stdin, lim.output_bytes, tool), lim.timeout
                )
            except TimeoutError:
                await kill_group(proc)
                raise ToolError(
                    tool,
                    f"timed out after {lim.timeout:g}s",
                    hint="the render may loop or wait on the network; check the source",
                ) from None
            except BaseException:
                await kill_group(proc)
                raise
        stderr = err.decode(errors="replace")
        if check and proc.returncode != 0:
            raise ToolError(tool, tool_message(stderr) or f"exited with {proc.returncode}")
        return RunResult(out, stderr, proc.returncode or 0)


async def _communicate(
    proc: asyncio.subprocess.Process, stdin: bytes | None, cap: int, tool: str
) -> tuple[bytes, bytes]:
    assert proc.stdout is not None and proc.stderr is not None
    if stdin is not None and proc.stdin is not None:
        proc.stdin.write(stdin)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await proc.stdin.drain()
        proc.stdin.close()
    err_task = asyncio.ensure_future(proc.stderr.read(1024 * 1024))
    chunks: list[bytes] = []
    size = 0
    while chunk := await proc.stdout.read(1024 * 1024):
        size += len(chunk)
        if size > cap:
            err_task.cancel()
            await kill_group(proc)
            raise ToolError(
                tool,
                f"printed more than {cap} bytes; stopped",
                hint="the render output is far larger than any set of manifests should be",
            )
        chunks.append(chunk)
    err = await err_task
    await proc.wait()
    return b"".join(chunks), err


def tool_message(stderr: str, limit: int = 2000) -> str:
    """The tool's own words, trimmed: the last lines matter most."""
    text = stderr.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


async def kill_group(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        await proc.wait()
