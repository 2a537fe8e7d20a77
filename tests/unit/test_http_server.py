"""The HTTP server on a real localhost port: signed webhooks, size caps, metrics, probes, audit."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tether import metrics
from tether.server import (
    PushEvent,
    WebhookSecrets,
    bound_port,
    create_app,
    serve,
)
from tether.server.auth import AuthSettings

pytestmark = pytest.mark.unit
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
SECRETS = WebhookSecrets(
    github="gh-http-secret",
    gitlab="gl-http-token",
    bitbucket="bb-http-secret",
    gitea="gitea-http-secret",
    generic="generic-http-secret",
)
MAX_BODY = 64 * 1024


def sign(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def webhooks_total(provider: str, outcome: str) -> float:
    labels = {"provider": provider, "outcome": outcome}
    return metrics.REGISTRY.get_sample_value("tether_webhook_requests_total", labels) or 0.0


@dataclass
class Server:
    url: str
    pushes: list[PushEvent] = field(default_factory=list)
    ready: bool = False
    secrets_reads: int = 0


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(url="")

    async def on_push(event: PushEvent) -> int:
        state.pushes.append(event)
        return 3

    async def get_secrets() -> WebhookSecrets:
        state.secrets_reads += 1
        return SECRETS

    app = create_app(
        on_push=on_push,
        get_secrets=get_secrets,
        is_ready=lambda: state.ready,
        max_body=MAX_BODY,
        auth=AuthSettings(metrics_public=True),  # tokens: tests/integration/test_api_auth.py
    )
    runner = await serve(app, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{bound_port(runner)}"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def post(
    http: aiohttp.ClientSession, server: Server, data: Any, headers: dict[str, str]
) -> tuple[int, Any]:
    async with http.post(server.url + "/api/webhook", data=data, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


# --- accepted, per provider -----------------------------------------------------------------


async def test_github_push_is_accepted(server: Server, http: aiohttp.ClientSession) -> None:
    data = (FIXTURES / "github-push.json").read_bytes()
    before = webhooks_total("github", "accepted")
    headers = {
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": "sha256=" + sign(SECRETS.github, data),
        "Content-Type": "application/json",
    }
    assert await post(http, server, data, headers) == (200, {"status": "accepted", "apps": 3})
    [event] = server.pushes
    assert event.provider == "github" and event.branch == "main"
    assert "git@github.com:Acme-Corp/Platform-Config.git" in event.repo_urls
    assert event.after == "9d5c7a1e2b3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b"
    assert webhooks_total("github", "accepted") == before + 1


async def test_gitea_push_is_accepted_as_gitea(server: Server, http: aiohttp.ClientSession) -> None:
    data = (FIXTURES / "gitea-push.json").read_bytes()
    sig = sign(SECRETS.gitea, data)
    headers = {
        "X-Gitea-Event": "push",
        "X-Gitea-Signature": sig,
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": "sha256=" + sig,
        "Content-Type": "application/json",
    }
    status, _ = await post(http, server, data, headers)
    assert status == 200
    [event] = server.pushes
    assert (event.provider, event.pusher) == ("gitea", "ops")


async def test_gitlab_push_is_accepted(server: Server, http: aiohttp.ClientSession) -> None:
    data = (FIXTURES / "gitlab-tag-push.json").read_bytes()
    headers = {"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Token": SECRETS.gitlab}
    assert await post(http, server, data, headers) == (200, {"status": "accepted", "apps": 3})
    [event] = server.pushes
    assert (event.provider, event.tag) == ("gitlab", "v1.4.0")


async def test_bitbucket_push_is_accepted(server: Server, http: aiohttp.ClientSession) -> None:
    data = (FIXTURES / "bitbucket-push.json").read_bytes()
    headers = {
        "X-Event-Key": "repo:push",
        "X-Hub-Signature": "sha256=" + sign(SECRETS.bitbucket, data),
    }
    status, _ = await post(http, server, data, headers)
    assert status == 200
    [event] = server.pushes
    assert event.provider == "bitbucket"
    assert "git@bitbucket.org:acme-team/Helm-Values.git" in event.repo_urls


async def test_generic_push_is_accepted(server: Server, http: aiohttp.ClientSession) -> None:
    data = (FIXTURES / "generic-push.json").read_bytes()
    headers = {"X-Tether-Signature": "sha256=" + sign(SECRETS.generic, data)}
    assert await post(http, server, data, headers) == (200, {"status": "accepted", "apps": 3})
    [event] = server.pushes
    assert event.repo_urls == ["https://git.internal.example.com/platform/apps.git"]


async def test_chunked_push_within_the_limit_is_accepted(
    server: Server, http: aiohttp.ClientSession
) -> None:
    data = (FIXTURES / "generic-push.json").read_bytes()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 16):
            yield data[i : i + 16]

    headers = {"X-Tether-Signature": "sha256=" + sign(SECRETS.generic, data)}
    status, _ = await post(http, server, chunks(), headers)
    assert status == 200 and len(server.pushes) == 1


# --- ignored, refused -----------------------------------------------------------------------


async def test_github_ping_is_ignored(server: Server, http: aiohttp.ClientSession) -> None:
    data = (FIXTURES / "github-ping.json").read_bytes()
    before = webhooks_total("github", "ignored")
    headers = {
        "X-GitHub-Event": "ping",
        "X-Hub-Signature-256": "sha256=" + sign(SECRETS.github, data),
    }
    assert await post(http, server, data, headers) == (200, {"status": "ignored"})
    assert server.pushes == []
    assert webhooks_total("github", "ignored") == before + 1


@pytest.mark.parametrize(
    "headers",
    [
        {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-GitHub-Event": "push"},
        {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "guess"},
        {"X-Event-Key": "repo:push", "X-Hub-Signature": "sha256=" + "a" * 64},
        {"X-Gitea-Event": "push", "X-GitHub-Event": "push"},
        {"Content-Type": "application/json"},
    ],
    ids=[
        "github-wrong",
        "github-missing",
        "gitlab-wrong",
        "bitbucket-wrong",
        "gitea-missing",
        "none",
    ],
)
async def test_bad_signatures_are_401_and_push_nothing(
    server: Server, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    data = (FIXTURES / "github-push.json").read_bytes()
    assert await post(http, server, data, headers) == (401, {"error": "invalid signature"})
    assert server.pushes == []


async def test_provider_without_secret_is_401(http: aiohttp.ClientSession) -> None:
    pushes: list[PushEvent] = []

    async def on_push(event: PushEvent) -> int:
        pushes.append(event)
        return 1

    async def no_secrets() -> WebhookSecrets:
        return WebhookSecrets(gitlab="only-gitlab")

    runner = await serve(
        create_app(on_push=on_push, get_secrets=no_secrets, is_ready=lambda: True),
        "127.0.0.1",
        0,
    )
    try:
        data = (FIXTURES / "github-push.json").read_bytes()
        before = webhooks_total("github", "unauthorized")
        headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sign("", data)}
        url = f"http://127.0.0.1:{bound_port(runner)}/api/webhook"
        async with http.post(url, data=data, headers=headers) as resp:
            assert resp.status == 401
            assert await resp.json() == {"error": "invalid signature"}
        assert pushes == []
        assert webhooks_total("github", "unauthorized") == before + 1
    finally:
        await runner.cleanup()


async def test_malformed_json_is_400(server: Server, http: aiohttp.ClientSession) -> None:
    data = b'{"ref": "refs/heads/main", '
    before = webhooks_total("generic", "bad")
    headers = {"X-Tether-Signature": "sha256=" + sign(SECRETS.generic, data)}
    status, body = await post(http, server, data, headers)
    assert status == 400 and "not JSON" in body["error"]
    assert server.pushes == []
    assert webhooks_total("generic", "bad") == before + 1


async def test_get_on_the_webhook_is_405(server: Server, http: aiohttp.ClientSession) -> None:
    async with http.get(server.url + "/api/webhook") as resp:
        assert resp.status == 405
    assert server.pushes == []


# --- size caps ------------------------------------------------------------------------------


def oversize_signed_body() -> tuple[bytes, dict[str, str]]:
    # Correctly signed, so only the size can be the reason for refusing it.
    payload = json.loads((FIXTURES / "generic-push.json").read_bytes())
    payload["padding"] = "x" * MAX_BODY
    data = json.dumps(payload).encode()
    return data, {"X-Tether-Signature": "sha256=" + sign(SECRETS.generic, data)}


async def test_oversize_body_with_content_length_is_413(
    server: Server, http: aiohttp.ClientSession
) -> None:
    data, headers = oversize_signed_body()
    before = webhooks_total("generic", "too-large")
    status, body = await post(http, server, data, headers)
    assert status == 413 and "larger than" in body["error"]
    assert server.pushes == [] and server.secrets_reads == 0
    assert webhooks_total("generic", "too-large") == before + 1


async def test_content_length_over_the_cap_is_refused_before_the_body_is_sent(
    server: Server,
) -> None:
    # A raw request that announces 100 MB and sends none of it: the answer must not wait.
    port = int(server.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST /api/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"X-GitHub-Event: push\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857600\r\n\r\n"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert status_line.startswith(b"HTTP/1.1 413 ")
    assert server.pushes == []


async def test_oversize_chunked_body_is_413_without_reading_to_the_end(
    server: Server, http: aiohttp.ClientSession
) -> None:
    data, headers = oversize_signed_body()
    answered = asyncio.Event()
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]
            sent = i + 4096
        # Hold the rest back until the server has answered: a server that reads to the end
        # before answering would never see the end, and the test would time out.
        await answered.wait()
        yield b" " * 4096

    async with http.post(server.url + "/api/webhook", data=chunks(), headers=headers) as resp:
        assert resp.headers.get("Transfer-Encoding") is None  # the answer is not chunked
        status = resp.status
        body = await resp.json()
        answered.set()
    assert status == 413 and "larger than" in body["error"]
    assert sent >= MAX_BODY
    assert server.pushes == [] and server.secrets_reads == 0


# --- metrics, probes, audit (access checks: tests/integration/test_audit_access.py) ---


async def test_metrics_are_served_in_prometheus_format(
    server: Server, http: aiohttp.ClientSession
) -> None:
    data = (FIXTURES / "github-ping.json").read_bytes()
    headers = {
        "X-GitHub-Event": "ping",
        "X-Hub-Signature-256": "sha256=" + sign(SECRETS.github, data),
    }
    await post(http, server, data, headers)
    async with http.get(server.url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    assert "# TYPE tether_webhook_requests_total counter" in text
    assert 'tether_webhook_requests_total{outcome="ignored",provider="github"}' in text
    # Nothing from the default registry (process, platform) leaks in: one registry, ours.
    assert "python_info" not in text


async def test_healthz_and_readyz_flip(server: Server, http: aiohttp.ClientSession) -> None:
    async with http.get(server.url + "/healthz") as resp:
        assert (resp.status, await resp.text()) == (200, "ok")
    async with http.get(server.url + "/readyz") as resp:
        assert resp.status == 503
    server.ready = True
    async with http.get(server.url + "/readyz") as resp:
        assert resp.status == 200
    server.ready = False
    async with http.get(server.url + "/readyz") as resp:
        assert resp.status == 503
    async with http.get(server.url + "/healthz") as resp:
        assert resp.status == 200


async def test_audit_without_a_store_is_404(http: aiohttp.ClientSession) -> None:
    async def on_push(event: PushEvent) -> int:
        return 0

    async def get_secrets() -> WebhookSecrets:
        return SECRETS

    runner = await serve(
        create_app(on_push=on_push, get_secrets=get_secrets, is_ready=lambda: True),
        "127.0.0.1",
        0,
    )
    try:
        url = f"http://127.0.0.1:{bound_port(runner)}/api/v1/audit"
        async with http.get(url) as resp:
            assert resp.status == 404
    finally:
        await runner.cleanup()


async def test_logs_carry_no_secrets_or_signatures(
    server: Server, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    data = (FIXTURES / "gitlab-push.json").read_bytes()
    await post(http, server, data, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "guess-1"})
    await post(
        http, server, data, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRETS.gitlab}
    )
    data = (FIXTURES / "github-push.json").read_bytes()
    signature = sign(SECRETS.github, data)
    await post(
        http, server, data, {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + signature}
    )
    assert len(server.pushes) == 2
    assert "refused gitlab webhook" in caplog.text and "gitlab push to" in caplog.text
    for secret in (SECRETS.gitlab, SECRETS.github, "guess-1", signature):
        assert secret not in caplog.text


async def test_clients_dropping_mid_body_leave_one_line_and_no_traceback(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    drops = 5

    async def drop_mid_body() -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /api/webhook HTTP/1.1\r\nHost: t\r\nX-GitHub-Event: push\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"ref":'
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    before = webhooks_total("github", "dropped")
    caplog.set_level(logging.DEBUG)
    for _ in range(drops):
        await drop_mid_body()
    # Each drop is counted once the server has read what the client sent and seen it leave.
    async with asyncio.timeout(30):
        while True:
            if webhooks_total("github", "dropped") >= before + drops:
                break
            await asyncio.sleep(0.02)

    assert webhooks_total("github", "dropped") == before + drops
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    lines = [r.getMessage() for r in caplog.records if "closed the connection" in r.getMessage()]
    assert lines == [
        "github webhook from 127.0.0.1: the client closed the connection after 7 of 1000 bytes"
    ]
    assert not server.pushes
