"""What a tool is started with: its environment and the wrappers that limit it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tether.sandbox import (
    ISOLATION_PROXY,
    ISOLATION_ROOT,
    ISOLATION_USERNS,
    Limits,
    MiB,
    Runner,
    _wrappers,
    tool_env,
)

pytestmark = pytest.mark.unit


def test_the_environment_holds_only_what_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("PATH", "/opt/tools/bin:/usr/bin")
    env = tool_env(tmp_path, {"HELM_CACHE_HOME": "/c"}, ISOLATION_ROOT)
    assert env == {
        "PATH": "/opt/tools/bin:/usr/bin",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path / "tmp"),
        "LANG": "C.UTF-8",
        "HELM_CACHE_HOME": "/c",
    }
    assert (tmp_path / "tmp").is_dir()


def test_without_namespaces_every_proxy_points_at_a_refusing_port(tmp_path: Path) -> None:
    env = tool_env(tmp_path, {"NO_PROXY": "*", "https_proxy": "http://corp:3128"}, ISOLATION_PROXY)
    proxies = {env[k] for k in ("HTTP_PROXY", "https_proxy", "ALL_PROXY", "http_proxy")}
    assert len(proxies) == 1
    assert env["NO_PROXY"] == env["no_proxy"] == ""
    port = int(proxies.pop().rsplit(":", 1)[1])
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


@pytest.mark.parametrize(
    ("limits", "isolation", "expected"),
    [
        (Limits(memory_bytes=0, network=True), "", []),
        (
            Limits(memory_bytes=512 * MiB),
            ISOLATION_ROOT,
            ["prlimit", f"--data={512 * MiB}:{512 * MiB}", "--", "unshare", "--net", "--"],
        ),
        (
            Limits(memory_bytes=0),
            ISOLATION_USERNS,
            ["unshare", "--net", "--map-root-user", "--"],
        ),
        (Limits(memory_bytes=0), ISOLATION_PROXY, []),
    ],
)
def test_wrappers(limits: Limits, isolation: str, expected: list[str]) -> None:
    assert _wrappers(limits, isolation) == expected


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        Runner(concurrency=0)
    assert Runner(concurrency=3).concurrency == 3
