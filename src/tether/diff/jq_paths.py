"""jq path expressions of ignore rules, each run bounded in time and memory.

As in Argo CD, an expression names the fields to ignore and is applied as ``del(EXPRESSION)``.
jq itself cannot be stopped once it runs (``until(false; .)`` runs for ever) and aborts its whole
process when memory runs out (``[range(1e9)]``), so expressions run in one long-lived worker
process (``jq_worker.py``) with an address-space limit; an answer that takes longer than the
time limit kills the worker (a new one starts for the next expression) and fails the comparison
of that one application with an error that says so. Nothing else waits on it for longer.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import selectors
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tether.errors import InvalidSpec

TIME_LIMIT = 1.0
"""Seconds one expression may take on one object (Argo CD's default as well)."""
MEMORY_LIMIT = 256 * 2**20
"""Bytes of address space for the worker: far above what deleting fields from an object of
the API server's 1.5 MiB maximum needs."""
_START_LIMIT = 30.0
_WORKER = Path(__file__).with_name("jq_worker.py")
# jq quotes values in its run-time errors ("Cannot iterate over string (\"s3cret\")"), and the
# object may be a Secret.
_VALUES = re.compile(r"\((?:[^()]|\([^()]*\))*\)|\"(?:[^\"\\]|\\.)*\"")


class JqRunner:
    """One worker process, started on first use, replaced after a timeout or a crash."""

    def __init__(self, time_limit: float = TIME_LIMIT, memory_limit: int = MEMORY_LIMIT) -> None:
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self.restarts = 0
        """Workers killed or lost (timeouts, memory): what tests and operators look at."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._lock = threading.Lock()

    def delete(self, expression: str, documents: list[Any]) -> list[Any]:
        """Each document with ``del(expression)`` applied. Raises ``InvalidSpec`` saying why
        the expression failed, ran too long or used too much memory."""
        request = (json.dumps({"expression": expression, "inputs": documents}) + "\n").encode()
        with self._lock:
            proc = self._proc or self._start()
            try:
                assert proc.stdin is not None
                proc.stdin.write(request)
                proc.stdin.flush()
                # Deleting fields only shrinks the documents: a longer answer is not one.
                line = self._read_line(proc, self.time_limit, max_bytes=len(request) + 4096)
            except BrokenPipeError:
                line = b""
            except _TooLong:
                self._stop(failed=True)
                raise _failed(expression, "gave a result larger than the object") from None
            if line is None:
                self._stop(failed=True)
                raise _failed(expression, f"took longer than {self.time_limit:g}s, the limit")
            if not line:
                self._stop(failed=True)
                raise _failed(
                    expression,
                    f"stopped jq: it needed more than {self.memory_limit // 2**20} MiB of memory",
                )
        reply = json.loads(line)
        if "error" in reply:
            message = str(reply["error"])
            if reply.get("stage") == "run":
                message = _VALUES.sub("(value not shown)", message)
            raise _failed(expression, message)
        outputs: list[Any] = reply["outputs"]
        return outputs

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _start(self) -> subprocess.Popen[bytes]:
        # An empty environment: nothing of tether's (tokens, kubeconfig paths) for $ENV to show.
        proc = subprocess.Popen(
            [sys.executable, "-I", str(_WORKER), str(self.memory_limit)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={},
        )
        self._proc, self._buffer = proc, b""
        ready = self._read_line(proc, _START_LIMIT)
        if not ready or not json.loads(ready).get("ready"):
            self._stop()
            raise InvalidSpec(
                "ignoreDifferences: the jq worker did not start",
                hint="check that the jq package is installed with tether",
            )
        return proc

    def _read_line(
        self, proc: subprocess.Popen[bytes], limit: float, max_bytes: int = 1 << 20
    ) -> bytes | None:
        """The next line from the worker; b"" if it exited, None if none came within ``limit``.
        Raises ``_TooLong`` past ``max_bytes``."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + limit
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return b""
                self._buffer += chunk
                if len(self._buffer) > max_bytes:
                    raise _TooLong
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _stop(self, *, failed: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        self.restarts += failed
        proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


class _TooLong(Exception):
    """The worker's answer is longer than any honest one."""


def _failed(expression: str, why: str) -> InvalidSpec:
    return InvalidSpec(
        f"ignoreDifferences: jqPathExpressions {expression!r}: {why}",
        hint="an expression should only select the fields to ignore, "
        'like .spec.template.spec.containers[] | select(.name == "sidecar")',
    )


_runner: JqRunner | None = None
_runner_lock = threading.Lock()


def runner() -> JqRunner:
    """The process-wide runner, closed at exit."""
    global _runner
    with _runner_lock:
        if _runner is None:
            _runner = JqRunner()
            atexit.register(_runner.close)
        return _runner
