"""Git polling on the real control plane and git server: each repository on its own, a hung
one reported once, the current cause of a failure shown, and a failing poll not flooding
the log."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from devcluster.gitserver import GitServer, RepoHandle
from test_robustness import own_git_server, repo_secret  # noqa: F401  (a fixture)

from cluster_helpers import (
    WAIT,
    app_status,
    cm_yaml,
    condition,
    equals,
    eventually,
    new_app,
    runtime_options,
    synced_to,
)
from tether.controller.runtime import Runtime
from tether.kube import KubeClient


class HangingServer:
    """A real TCP server that accepts connections and never answers: a Git host that hangs."""

    def __init__(self) -> None:
        self.accepted = 0
        self.open = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        try:
            await reader.read()  # until the client gives up and closes
        finally:
            self.open -= 1
            writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.git"


@pytest.fixture
async def hanging() -> AsyncIterator[HangingServer]:
    server = HangingServer()
    await server.start()
    yield server
    await server.stop()


async def test_a_hanging_repository_does_not_delay_another_repositorys_poll(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    hanging: HangingServer,
) -> None:
    first = git_repo.commit({"app/cm.yaml": cm_yaml("fast", {"v": "1"})})
    await kube.apply(new_app("fast", home, git_repo.http_url, namespace, interval="1s"))
    await kube.apply(new_app("hung", home, hanging.url("hung"), namespace, interval="1s"))
    # A git timeout far beyond the test: the hung repository's poll stays in flight.
    opts = runtime_options(home, tmp_path, kubeconfig, git_timeout=3600.0)
    async with Runtime(opts):
        await eventually(lambda: synced_to(kube, home, "fast", first), WAIT, "first sync")
        second = git_repo.commit({"app/cm.yaml": cm_yaml("fast", {"v": "2"})})
        await eventually(lambda: synced_to(kube, home, "fast", second), WAIT, "polled commit")
        # Picked up by polling while the hung repository's request was still unanswered.
        assert hanging.open >= 1
        assert condition(await app_status(kube, home, "hung"), "SourceError") is None


async def test_a_hung_repository_is_reported_once_per_poll_not_again_by_each_reconcile(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    tmp_path: Path,
    hanging: HangingServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "tether.controller")
    await kube.apply(new_app("slow", home, hanging.url("slow"), namespace, interval="1h"))
    opts = runtime_options(home, tmp_path, kubeconfig, git_timeout=5.0)
    async with Runtime(opts) as rt:
        ctl = rt.controller
        assert ctl is not None

        async def timed_out() -> dict[str, Any] | None:
            cond = condition(await app_status(kube, home, "slow"), "SourceError")
            return cond if cond and cond.get("reason") == "Timeout" else None

        cond = await eventually(timed_out, WAIT, "the Timeout condition")
        assert "timed out after 5s" in cond["message"]
        # Settled: the poll failed and no poll or reconcile of the app is pending.
        await eventually(
            lambda: _settled(ctl, (home, "slow"), hanging.url("slow")), WAIT, "all settled"
        )
    # The startup reconcile, the first poll and the reconcile the poll's failure triggered
    # all shared one attempt: the host saw one connection, the log one line.
    assert hanging.accepted == 1
    lines = [r.getMessage() for r in caplog.records if "polling" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "Timeout" in lines[0]


async def test_the_current_cause_of_a_failing_repository_is_reported_and_logged_once(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    own_git_server: GitServer,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "tether.controller")
    gs = own_git_server
    port = gs.http_port
    repo = gs.create_repo("causes")
    sha = repo.commit({"app/cm.yaml": cm_yaml("causes", {})})
    url = repo.http_url
    base = f"http://127.0.0.1:{port}"
    await repo_secret(kube, home, "causes-creds", base, gs.token)
    await kube.apply(new_app("causes", home, url, namespace, interval="1s"))
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
        ctl = rt.controller
        assert ctl is not None
        git = ctl.engine.git
        await eventually(lambda: synced_to(kube, home, "causes", sha), WAIT, "initial sync")

        async def reason() -> str:
            cond = condition(await app_status(kube, home, "causes"), "SourceError")
            return str((cond or {}).get("reason") or "")

        def failure_lines(cause: str) -> list[str]:
            return [
                r.getMessage()
                for r in caplog.records
                if r.getMessage().startswith("polling") and cause in r.getMessage()
            ]

        async def polls_after(n: int) -> bool:
            return git.ls_remote_count >= n

        # 1. The server goes away.
        await asyncio.to_thread(gs.stop)
        await eventually(lambda: equals(reason(), "RepositoryUnreachable"), WAIT, "unreachable")
        polled = git.ls_remote_count
        await eventually(lambda: polls_after(polled + 3), WAIT, "three more failed polls")
        assert len(failure_lines("RepositoryUnreachable")) == 1

        # 2. It comes back, but the credentials were revoked meanwhile: a new cause, at once.
        await repo_secret(kube, home, "causes-creds", base, "revoked-" + uuid.uuid4().hex)
        await asyncio.to_thread(GitServer(tmp_path / "gs", http_port=port).start)
        await eventually(lambda: equals(reason(), "AuthenticationFailed"), WAIT, "current cause")
        polled = git.ls_remote_count
        await eventually(lambda: polls_after(polled + 3), WAIT, "three more failed polls")
        assert len(failure_lines("AuthenticationFailed")) == 1
        assert len(failure_lines("RepositoryUnreachable")) == 1
        assert gs.token not in caplog.text

        # 3. Fixed: it recovers by itself.
        await repo_secret(kube, home, "causes-creds", base, gs.token)
        await eventually(lambda: synced_to(kube, home, "causes", sha), WAIT, "recovery")


async def _settled(ctl: Any, key: tuple[str, str], url: str) -> bool:
    return bool(ctl.queue.idle(key) and url in ctl.poller.failures and not ctl.poller.in_flight)
