"""Notifications: payloads, signatures, retries, isolation between sinks, config, no URL leaks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import logging
import re
import socket
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tether.api.application import Application, new_application
from tether.errors import InvalidSpec
from tether.metrics import REGISTRY
from tether.notify import (
    CONFIG_NAME,
    Notification,
    Notifier,
    NotifyError,
    Sink,
    SlackSink,
    WebhookSink,
    parse_sinks,
)
from tether.notify.model import MAX_DIFF_CHARS
from tether.notify.sinks import SLACK_DIFF_CHARS

pytestmark = pytest.mark.unit

# Webhook URLs carry their credential in the path, like Slack's and Mattermost's.
TOKEN = "s3cr3t-T0K3N-do-not-log"
HOOK_PATH = f"/hooks/T000/B000/{TOKEN}"
WAIT = 10.0  # guards against a hung test only; no assertion depends on elapsed time


# ---- a real HTTP receiver -----------------------------------------------------------------


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records every request; can fail the first N, fail all, or hold requests open."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.fail_first = 0
        self.fail_always = False
        self.hold = False
        self.base = ""
        self._released = asyncio.Event()
        self._changed = asyncio.Condition()

    @property
    def url(self) -> str:
        return self.base + HOOK_PATH

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Seen(request.path, dict(request.headers), await request.read()))
        index = len(self.requests)
        async with self._changed:
            self._changed.notify_all()
        if self.hold:
            await self._released.wait()
        if self.fail_always or index <= self.fail_first:
            # Like many real servers, the error page echoes the path, which holds the token.
            return web.Response(status=500, text=f"Cannot POST {request.path}")
        return web.Response(text="ok")

    def release(self) -> None:
        self.hold = False
        self._released.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(WAIT), self._changed:
            await self._changed.wait_for(lambda: len(self.requests) >= count)

    def bodies(self) -> list[Any]:
        return [r.json() for r in self.requests]


@pytest.fixture
async def receiver_factory() -> AsyncIterator[Callable[[], Awaitable[Receiver]]]:
    runners: list[tuple[Receiver, web.AppRunner]] = []

    async def make() -> Receiver:
        rec = Receiver()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", rec.handle)
        # No access log: it is the receiver's, and it prints the path, the token included.
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        rec.base = f"http://{host}:{port}"
        runners.append((rec, runner))
        return rec

    yield make
    for rec, runner in runners:
        rec.release()
        await runner.cleanup()


@pytest.fixture
async def receiver(receiver_factory: Callable[[], Awaitable[Receiver]]) -> Receiver:
    return await receiver_factory()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def unique(prefix: str) -> str:
    """Sink names are metric labels in a process-wide registry: keep each test's apart."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def metric(sink: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "tether_notifications_total", {"sink": sink, "outcome": outcome}
    )
    return value or 0.0


def note(event: str = "drift", message: str = "Live objects differ from Git.", **kw: Any) -> Any:
    fields: dict[str, Any] = {
        "event": event,
        "app": "web",
        "namespace": "shop",
        "revision": "4f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f",
        "message": message,
        "diff": "--- live\n+++ git\n-  replicas: 5\n+  replicas: 3\n",
        "field_manager": "kubectl-edit",
        "objects": [{"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "web"}],
    }
    fields.update(kw)
    return Notification(**fields)


def messages(rec: Receiver) -> list[str]:
    return [b["message"] for b in rec.bodies()]


# ---- the model ----------------------------------------------------------------------------


def test_notification_json_has_stable_camelcase_keys_and_defaults() -> None:
    n = note()
    body = n.to_json()
    assert list(body) == [
        "event",
        "app",
        "namespace",
        "revision",
        "message",
        "diff",
        "fieldManager",
        "objects",
        "time",
        "severity",
    ]
    assert body["fieldManager"] == "kubectl-edit"
    assert body["objects"] == [
        {"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "web"}
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["time"])
    assert body["severity"] == "warning"  # drift
    assert note("sync-failed").severity == "error"
    assert note("sync-succeeded").severity == "info"
    assert note("sync-succeeded", severity="warning").severity == "warning"


def test_notification_caps_the_diff_and_refuses_unknown_events() -> None:
    n = note(diff="x" * (MAX_DIFF_CHARS * 3))
    assert len(n.diff) <= MAX_DIFF_CHARS
    assert n.diff.startswith("x" * 1000)
    assert "more characters" in n.diff
    assert note(diff="short").diff == "short"
    with pytest.raises(ValueError, match="synced"):
        note("synced")
    with pytest.raises(ValueError, match="fatal"):
        note(severity="fatal")


# ---- payloads -----------------------------------------------------------------------------


async def test_webhook_gets_every_key_and_a_valid_signature(
    receiver_factory: Callable[[], Awaitable[Receiver]],
) -> None:
    signed, plain = await receiver_factory(), await receiver_factory()
    hmac_key = "hmac-key-for-the-test"
    sinks = [
        WebhookSink(unique("signed"), signed.url, (), {"X-Team": "platform"}, hmac_key),
        WebhookSink(unique("plain"), plain.url),
    ]
    n = note()
    async with Notifier(sinks) as notifier:
        notifier.notify(n)
        await signed.wait_for(1)
        await plain.wait_for(1)

    (req,) = signed.requests
    assert req.path == HOOK_PATH
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["X-Tether-Event"] == "drift"
    assert req.headers["X-Team"] == "platform"
    expected = "sha256=" + hmac.new(hmac_key.encode(), req.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(req.headers["X-Tether-Signature"], expected)
    assert req.json() == n.to_json()
    assert list(req.json()) == list(n.to_json())
    assert "X-Tether-Signature" not in plain.requests[0].headers
    assert plain.requests[0].json() == n.to_json()


async def test_slack_payload_has_a_summary_and_the_diff_in_a_code_block(
    receiver: Receiver,
) -> None:
    long_diff = "".join(f"+  line-{i}: value\n" for i in range(1000))
    sink = SlackSink(unique("slack"), receiver.url)
    async with Notifier([sink]) as notifier:
        notifier.notify(note(diff=long_diff))
        notifier.notify(note("sync-failed", "Apply failed.", diff="+  note: <!channel> & more"))
        await receiver.wait_for(2)

    drift, failed = receiver.bodies()
    assert drift["text"].startswith(":warning: ")
    for part in ("shop/web", "drift", "4f2a9c1d", "Live objects differ from Git."):
        assert part in drift["text"]
    assert "\n" not in drift["text"]
    (att,) = drift["attachments"]
    assert att["text"].startswith("```\n+  line-0: value\n")
    assert att["text"].endswith("\n```")
    inner = att["text"][len("```\n") : -len("\n```")]
    assert len(inner) <= SLACK_DIFF_CHARS
    assert "more characters" in inner
    assert {"title": "Changed by", "value": "kubectl-edit", "short": True} in att["fields"]
    assert att["color"].startswith("#")

    assert failed["text"].startswith(":rotating_light: ")
    # Text from a manifest cannot ping a channel: Slack's control characters are escaped.
    assert "&lt;!channel&gt; &amp; more" in failed["attachments"][0]["text"]
    assert "<!channel>" not in json.dumps(failed)


async def test_sinks_get_only_the_events_they_ask_for(
    receiver_factory: Callable[[], Awaitable[Receiver]],
) -> None:
    drift_only, everything = await receiver_factory(), await receiver_factory()
    a = WebhookSink(unique("drift-only"), drift_only.url, {"drift"})
    b = WebhookSink(unique("all"), everything.url)
    async with Notifier([a, b]) as notifier:
        notifier.notify(note("sync-failed", "first"))
        notifier.notify(note("drift", "second"))
        # Each sink's queue is FIFO: once the later drift arrived, an earlier sync-failed
        # would have arrived before it had it been queued for this sink.
        await drift_only.wait_for(1)
        await everything.wait_for(2)
    assert messages(drift_only) == ["second"]
    assert messages(everything) == ["first", "second"]
    assert notifier.sent[a.name] == 1
    assert notifier.sent[b.name] == 2


async def test_send_takes_the_controllers_call_shape(receiver: Receiver) -> None:
    app = Application.from_obj(
        new_application("web", "shop", repo_url="https://git.example/shop.git", path="web")
    )
    drift_object = {
        "group": "apps",
        "kind": "Deployment",
        "namespace": "shop",
        "name": "web",
        "fields": ["spec.replicas"],  # the controller's richer record: extra keys are dropped
        "manager": "kubectl-edit",
    }
    async with Notifier([WebhookSink(unique("ctl"), receiver.url)]) as notifier:
        notifier.send(
            "drift",
            app,
            "drift: Deployment shop/web changed in the cluster by kubectl-edit",
            revision="abc123",
            diff="-  replicas: 3\n+  replicas: 5\n",
            field_manager="kubectl-edit",
            objects=[drift_object],
            unknown_to_notifications="ignored",
        )
        await receiver.wait_for(1)
    body = receiver.requests[0].json()
    assert (body["app"], body["namespace"], body["event"]) == ("web", "shop", "drift")
    assert (body["revision"], body["fieldManager"]) == ("abc123", "kubectl-edit")
    assert body["objects"] == [
        {"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "web"}
    ]


# ---- delivery -----------------------------------------------------------------------------


async def test_a_failing_sink_is_retried_until_it_succeeds(receiver: Receiver) -> None:
    receiver.fail_first = 2
    name = unique("flaky")
    before = {o: metric(name, o) for o in ("sent", "retried", "dropped")}
    notifier = Notifier([WebhookSink(name, receiver.url)], max_attempts=5, base_delay=0.01)
    await notifier.start()
    notifier.notify(note())
    await receiver.wait_for(3)
    await notifier.stop()

    assert len(receiver.requests) == 3  # 2 failures + 1 success
    assert len({r.body for r in receiver.requests}) == 1  # the same notification each time
    assert (notifier.sent[name], notifier.retried[name], notifier.dropped[name]) == (1, 2, 0)
    assert metric(name, "sent") - before["sent"] == 1
    assert metric(name, "retried") - before["retried"] == 2
    assert metric(name, "dropped") - before["dropped"] == 0


async def test_a_dead_sink_is_dropped_after_max_attempts_without_delaying_a_healthy_one(
    receiver_factory: Callable[[], Awaitable[Receiver]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad, good = await receiver_factory(), await receiver_factory()
    bad.fail_always = True
    bad.hold = True  # each failure is held until the test lets it go
    bad_name, good_name = unique("dead"), unique("healthy")
    notifier = Notifier(
        [WebhookSink(bad_name, bad.url), WebhookSink(good_name, good.url)],
        max_attempts=3,
        base_delay=0.01,
    )
    await notifier.start()
    try:
        notifier.notify(note(message="one"))
        await good.wait_for(1)
        await bad.wait_for(1)
        # The healthy sink has delivered while the dead one is stuck in its first attempt.
        assert len(bad.requests) == 1
        assert notifier.retried[bad_name] == 0

        notifier.notify(note(message="two"))
        await good.wait_for(2)
        assert len(bad.requests) == 1  # still on attempt 1 of "one"; "two" is queued behind it
        assert messages(good) == ["one", "two"]

        bad.release()
        await bad.wait_for(6)  # 3 attempts for each notification, then nothing more
    finally:
        await notifier.stop()

    assert messages(bad) == ["one"] * 3 + ["two"] * 3
    assert notifier.dropped[bad_name] == 2
    assert notifier.retried[bad_name] == 4
    assert notifier.sent[good_name] == 2
    assert metric(bad_name, "dropped") == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum(bad_name in w and "after 3 attempts" in w for w in warnings) == 2
    assert TOKEN not in caplog.text


async def test_notify_returns_at_once_while_the_receiver_hangs_and_drops_the_oldest(
    receiver: Receiver,
) -> None:
    assert not inspect.iscoroutinefunction(Notifier.notify)
    receiver.hold = True
    name = unique("hung")
    notifier = Notifier([WebhookSink(name, receiver.url)], queue_size=2)
    await notifier.start()
    try:
        notifier.notify(note(message="n1"))
        await receiver.wait_for(1)  # n1 is now in flight and will not finish
        for i in range(2, 7):
            notifier.notify(note(message=f"n{i}"))  # sync: no await, returns at once
        # Queue of 2: n2 and n3 were pushed out by n4..n6, and n4 by n6.
        assert notifier.dropped[name] == 3
        assert len(receiver.requests) == 1
        receiver.release()
        await receiver.wait_for(3)
    finally:
        await notifier.stop()
    assert messages(receiver) == ["n1", "n5", "n6"]
    assert notifier.sent[name] == 3


async def test_stop_delivers_what_was_queued(receiver: Receiver) -> None:
    name = unique("ok")
    notifier = Notifier([WebhookSink(name, receiver.url)])
    for i in range(3):
        notifier.notify(note(message=f"m{i}"))  # queued before start: kept, not lost
    await notifier.start()
    await notifier.stop(timeout=WAIT)  # returns as soon as the queue is empty
    assert messages(receiver) == ["m0", "m1", "m2"]
    assert notifier.sent[name] == 3


async def test_stop_gives_up_on_a_hung_sink_and_counts_what_it_dropped(receiver: Receiver) -> None:
    receiver.hold = True
    name = unique("stuck")
    notifier = Notifier([WebhookSink(name, receiver.url)])
    await notifier.start()
    for i in range(3):
        notifier.notify(note(message=f"m{i}"))
    await receiver.wait_for(1)
    await notifier.stop(timeout=0.05)
    assert notifier.dropped[name] == 3  # one in flight, two queued
    assert metric(name, "dropped") == 3
    notifier.notify(note())  # after stop: counted, not queued, no error
    assert notifier.dropped[name] == 4


# ---- secrets stay out of logs and errors --------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _all_text(e: BaseException) -> str:
    return str(e) + repr(e) + "".join(traceback.format_exception(e))


async def test_the_url_never_appears_in_errors_or_logs(
    receiver_factory: Callable[[], Awaitable[Receiver]],
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    failing, hanging = await receiver_factory(), await receiver_factory()
    failing.fail_always = True
    hanging.hold = True
    refused_url = f"http://127.0.0.1:{_closed_port()}{HOOK_PATH}"

    cases: list[tuple[Sink, str]] = [
        (WebhookSink("wh-500", failing.url), "HTTP 500"),
        (SlackSink("slack-500", failing.url), "HTTP 500"),
        (WebhookSink("wh-refused", refused_url), "cannot deliver"),
        (WebhookSink("wh-bad-url", "http://[::1/" + TOKEN), "cannot deliver"),
        (WebhookSink("wh-hung", hanging.url, timeout=0.1), "no response"),
    ]
    for sink, why in cases:
        assert TOKEN not in repr(sink)
        with pytest.raises(NotifyError) as info:
            await sink.send(session, note())
        assert sink.name in str(info.value)
        assert why in str(info.value)
        assert TOKEN not in _all_text(info.value)
        assert info.value.sink == sink.name
    assert NotifyError("x", sink="s", status=500).status == 500

    name = unique("leaky")
    async with Notifier([WebhookSink(name, failing.url)], max_attempts=2, base_delay=0.01) as n:
        n.notify(note())
        await failing.wait_for(len(failing.requests) + 2)
    assert n.dropped[name] == 1
    assert name in caplog.text
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in (record.exc_text or "")
    assert TOKEN not in caplog.text


# ---- configuration ------------------------------------------------------------------------

CONFIG = """
- name: team-chat
  type: slack
  events: [drift, sync-failed]
  urlKey: slack-url
- name: audit
  type: webhook
  urlKey: audit-url
  secretKey: audit-hmac
  headers: {X-Team: platform}
"""
SECRET = {
    "slack-url": f"https://hooks.slack.com/services{HOOK_PATH}\n",
    "audit-url": f"https://audit.example.com{HOOK_PATH}",
    "audit-hmac": "hmac-" + TOKEN,
}


def _parse_error(config: str, secret: dict[str, str] | None = None) -> str:
    with pytest.raises(InvalidSpec) as info:
        parse_sinks(config, SECRET if secret is None else secret)
    text = _all_text(info.value)
    assert TOKEN not in text
    return str(info.value)


def test_parse_sinks_builds_each_sink() -> None:
    chat, audit = parse_sinks(CONFIG, SECRET)
    assert isinstance(chat, SlackSink)
    assert (chat.name, chat.events) == ("team-chat", {"drift", "sync-failed"})
    assert isinstance(audit, WebhookSink)
    assert (audit.name, audit.events, audit.headers) == ("audit", set(), {"X-Team": "platform"})
    assert TOKEN not in repr(chat) + repr(audit)
    assert parse_sinks("", {}) == []
    assert parse_sinks("[]", {}) == []


async def test_parsed_sinks_deliver_to_the_secret_url_and_sign_with_the_secret_key(
    receiver: Receiver,
) -> None:
    config = "- {name: audit, type: webhook, urlKey: url, secretKey: key}"
    (sink,) = parse_sinks(config, {"url": receiver.url + "\n", "key": "k3y"})
    async with Notifier([sink]) as notifier:
        notifier.notify(note())
        await receiver.wait_for(1)
    (req,) = receiver.requests
    assert req.path == HOOK_PATH
    expected = "sha256=" + hmac.new(b"k3y", req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-Tether-Signature"] == expected


def test_parse_sinks_errors_name_the_sink_and_the_key() -> None:
    msg = _parse_error(CONFIG, {k: v for k, v in SECRET.items() if k != "audit-hmac"})
    assert "'audit'" in msg and "'audit-hmac'" in msg and CONFIG_NAME in msg

    msg = _parse_error("- {name: chat, type: slack, urlKey: nope}")
    assert "'chat'" in msg and "'nope'" in msg

    msg = _parse_error("- {name: chat, type: slack, urlKey: audit-hmac}")  # not a URL
    assert "'chat'" in msg and "'audit-hmac'" in msg and "URL" in msg

    # The classic mistake: the URL itself in the ConfigMap. Only the field's name is echoed.
    msg = _parse_error(f"- {{name: chat, type: slack, url: 'https://x.example{HOOK_PATH}'}}")
    assert "'chat'" in msg and "url" in msg

    assert "sync-finished" in _parse_error(
        "- {name: a, type: slack, urlKey: slack-url, events: [sync-finished]}"
    )
    assert "'teams'" in _parse_error("- {name: a, type: teams, urlKey: slack-url}")
    assert "secretKey" in _parse_error(
        "- {name: a, type: slack, urlKey: slack-url, secretKey: audit-hmac}"
    )
    assert "two sinks are named 'a'" in _parse_error(
        "- {name: a, type: slack, urlKey: slack-url}\n- {name: a, type: slack, urlKey: slack-url}"
    )
    assert "has no name" in _parse_error("- {type: slack, urlKey: slack-url}")
    assert "line 1" in _parse_error("- {name: [")
    assert "must be a YAML list" in _parse_error("name: a")
    assert "line break" in _parse_error(
        '- {name: a, type: webhook, urlKey: audit-url, headers: {X-A: "b\\r\\nX-B: c"}}'
    )
