"""The tool runner's limits, on real processes: time, output, memory, network, environment."""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tether.sandbox import (
    ISOLATION_PROXY,
    KIND_MEMORY,
    KIND_OUTPUT,
    KIND_START,
    KIND_TIMEOUT,
    Limits,
    MiB,
    Runner,
    ToolError,
    probe_isolation,
)

PY = sys.executable
HELM = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "helm"


def _gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (absent, or a zombie nobody has reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_a_tool_that_hangs_is_killed_with_its_children(tmp_path: Path) -> None:
    script = "sleep 1000 & echo $! > child; echo $$ > parent; wait"
    with pytest.raises(ToolError) as err:
        await Runner().run(
            ["sh", "-c", script], tool="hangs", cwd=tmp_path, limits=Limits(timeout=1)
        )
    assert err.value.kind == KIND_TIMEOUT
    assert str(err.value).startswith("hangs: timed out after 1s")
    parent = int((tmp_path / "parent").read_text())
    child = int((tmp_path / "child").read_text())
    # The tool led its own process group; the kill reached every member, the sleep too.
    await _until(lambda: _gone(parent) and _gone(child), "the tool and its child exit")
    assert _group_members(parent) == []


async def test_a_tool_that_prints_a_gigabyte_is_stopped_at_the_cap() -> None:
    cap = 8 * MiB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with pytest.raises(ToolError) as err:
        await Runner().run(
            ["head", "-c", str(1024 * MiB), "/dev/zero"],
            tool="chatty",
            limits=Limits(output_bytes=cap, timeout=120),
        )
    assert err.value.kind == KIND_OUTPUT
    assert f"printed more than {cap} bytes; stopped" in str(err.value)
    # Reading stopped within one chunk of the cap: the rest of the gigabyte was never read.
    assert cap < err.value.bytes_read <= cap + MiB
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert after - before < 4 * cap


async def test_a_tool_that_allocates_too_much_runs_out_of_memory() -> None:
    with pytest.raises(ToolError) as err:
        await Runner().run(
            [PY, "-c", "b = bytearray(3 * 1024 ** 3)"],
            tool="hungry",
            limits=Limits(memory_bytes=512 * MiB),
        )
    assert err.value.kind == KIND_MEMORY
    assert str(err.value).startswith("hungry: ran out of memory (limit 512 MiB)")
    assert "MemoryError" in str(err.value)


async def test_go_tools_start_under_a_tight_memory_limit() -> None:
    # The reason the limit is RLIMIT_DATA: under RLIMIT_AS helm does not start below 1 GiB.
    result = await Runner().run(
        [str(HELM), "version", "--short"], tool="helm", limits=Limits(memory_bytes=256 * MiB)
    )
    assert result.stdout.decode().startswith("v4.")


async def test_a_chart_that_builds_a_huge_string_runs_helm_out_of_memory(tmp_path: Path) -> None:
    chart = tmp_path / "bomb"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: bomb\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
        'data: {x: "{{ repeat 1000000000 "x" }}"}\n'
    )
    with pytest.raises(ToolError) as err:
        await Runner().run(
            [str(HELM), "template", "bomb", str(chart)],
            tool="helm",
            cwd=tmp_path,
            limits=Limits(memory_bytes=256 * MiB),
        )
    assert err.value.kind == KIND_MEMORY
    assert str(err.value).startswith("helm: ran out of memory (limit 256 MiB)")


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _connect(port: int) -> list[str]:
    return [PY, "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}), 5)"]


def _fetch(port: int) -> list[str]:
    url = f"http://127.0.0.1:{port}/"
    code = f"import urllib.request as u; print(u.urlopen({url!r}, timeout=5).read().decode())"
    return [PY, "-c", code]


async def test_no_network_unless_allowed(http_port: int) -> None:
    runner = Runner()
    isolation = await probe_isolation()
    assert isolation != ISOLATION_PROXY, "this machine can isolate tools (root or userns)"
    with pytest.raises(ToolError) as err:
        await runner.run(_connect(http_port), tool="curious")
    # Inside its own network namespace even loopback is down.
    assert "Network is unreachable" in str(err.value)
    allowed = await runner.run(_fetch(http_port), tool="curious", limits=Limits(network=True))
    assert allowed.stdout.decode().strip() == "hello"


async def test_without_namespaces_proxies_point_at_a_closed_port(http_port: int) -> None:
    runner = Runner(isolation=ISOLATION_PROXY)
    with pytest.raises(ToolError) as err:
        await runner.run(_fetch(http_port), tool="curious", env={"NO_PROXY": "127.0.0.1"})
    assert "Connection refused" in str(err.value)
    allowed = await runner.run(_fetch(http_port), tool="curious", limits=Limits(network=True))
    assert allowed.stdout.decode().strip() == "hello"


async def test_the_environment_is_minimal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_PARENT_TOKEN", "s3cret")
    result = await Runner().run(
        ["env", "-0"], tool="env", cwd=tmp_path, env={"GIVEN": "yes"}, limits=Limits(network=True)
    )
    env = dict(e.split("=", 1) for e in result.stdout.decode().split("\0") if "=" in e)
    assert "TETHER_PARENT_TOKEN" not in env
    assert env["GIVEN"] == "yes"
    assert set(env) == {"PATH", "HOME", "TMPDIR", "LANG", "GIVEN"}
    assert env["HOME"] != os.environ.get("HOME")
    # The private HOME lives only as long as the tool.
    assert not Path(env["HOME"]).exists()


async def test_the_tools_own_message_and_a_missing_tool() -> None:
    with pytest.raises(ToolError) as err:
        await Runner().run(["sh", "-c", "echo 'bad chart: Chart.yaml' >&2; exit 3"], tool="helm")
    assert str(err.value) == "helm: bad chart: Chart.yaml"
    with pytest.raises(ToolError) as missing:
        await Runner().run(["no-such-tool-here"], tool="kustomize")
    assert missing.value.kind == KIND_START
    assert str(missing.value).startswith("kustomize: no-such-tool-here not found")


async def test_input_and_a_flood_of_stderr_do_not_block() -> None:
    # Echoes 4 MiB of stdin while writing 4 MiB to stderr: both pipes overflow unless read.
    code = (
        "import sys; d = sys.stdin.buffer.read(); sys.stderr.write('e' * (4 << 20)); "
        "sys.stdout.buffer.write(d)"
    )
    data = b"x" * (4 * MiB)
    result = await Runner().run([PY, "-c", code], tool="py", stdin=data)
    assert result.stdout == data
    assert len(result.stderr) == 64 * 1024


async def test_at_most_concurrency_tools_run_at_once(tmp_path: Path) -> None:
    runner = Runner(concurrency=2)
    # Each tool records itself, waits until a "go" file appears, then leaves.
    script = "touch started.$$; while [ ! -e go ]; do sleep 0.01; done"
    tasks = [
        asyncio.ensure_future(runner.run(["sh", "-c", script], tool="sh", cwd=tmp_path))
        for _ in range(5)
    ]
    await _until(lambda: len(list(tmp_path.glob("started.*"))) == 2, "two tools start")
    # Two run and hold their slots; the other three wait for one: still exactly two started.
    assert len(list(tmp_path.glob("started.*"))) == 2
    (tmp_path / "go").touch()
    await asyncio.gather(*tasks)
    assert len(list(tmp_path.glob("started.*"))) == 5
