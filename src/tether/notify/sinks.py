"""Notification sinks: where a notification goes (a generic JSON webhook, Slack or Mattermost).

A sink's URL usually carries its credential (Slack's and Mattermost's hook paths are the
token), so a sink is only ever named by ``name``: in errors, logs and its ``repr``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

import aiohttp

from tether import __version__
from tether.errors import TetherError
from tether.notify.model import Notification, truncate

SIGNATURE_HEADER = "X-Tether-Signature"
EVENT_HEADER = "X-Tether-Event"
USER_AGENT = f"tether/{__version__}"
DEFAULT_TIMEOUT = 10.0
SLACK_DIFF_CHARS = 3000
"""Slack collapses long attachments and rejects very long ones; the head of the diff is enough
to see what changed, the full diff is in the Application."""
SLACK_MAX_OBJECTS = 10

_EMOJI = {"info": ":white_check_mark:", "warning": ":warning:", "error": ":rotating_light:"}
_COLOR = {"info": "#2eb67d", "warning": "#ecb22e", "error": "#e01e5a"}


class NotifyError(TetherError):
    """A sink did not accept a notification. Names the sink, never its URL."""

    reason = "NotifyFailed"

    def __init__(self, detail: str, *, sink: str, status: int = 0) -> None:
        super().__init__(f"notification sink {sink}: {detail}")
        self.detail = detail
        self.sink = sink
        self.status = status


class Sink(Protocol):
    """A destination for notifications. ``events`` empty means every event."""

    name: str
    events: set[str]

    async def send(self, session: aiohttp.ClientSession, n: Notification) -> None:
        """Deliver one notification; raise ``NotifyError`` when it was not accepted."""
        ...


def accepts(sink: Sink, n: Notification) -> bool:
    return not sink.events or n.event in sink.events


async def post(
    session: aiohttp.ClientSession,
    sink: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
) -> None:
    """POST ``body``; any outcome but a 2xx raises ``NotifyError`` naming ``sink`` only."""
    try:
        async with session.post(
            url, data=body, headers=dict(headers), timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            status = resp.status
            # Read the body so the connection goes back to the pool. It is not reported: a
            # receiver's error page may echo the request path, which is the token.
            await resp.read()
    except TimeoutError:
        raise NotifyError(f"no response within {timeout:g}s", sink=sink) from None
    except (aiohttp.ClientError, OSError, ValueError) as e:
        # Only the exception's type: aiohttp puts the URL in the text of most of its errors,
        # and ``from None`` keeps that text out of tracebacks too.
        raise NotifyError(f"cannot deliver ({type(e).__name__})", sink=sink) from None
    if not 200 <= status < 300:
        raise NotifyError(f"receiver answered HTTP {status}", sink=sink, status=status)


class WebhookSink:
    """POSTs ``Notification.to_json()``; with ``secret``, signs the exact body it sends.

    The signature header is ``X-Tether-Signature: sha256=<hex HMAC-SHA256 of the body>``.
    """

    def __init__(
        self,
        name: str,
        url: str,
        events: Iterable[str] = (),
        headers: Mapping[str, str] | None = None,
        secret: str = "",
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.name = name
        self.events = set(events)
        self.headers = dict(headers or {})
        self.timeout = timeout
        self._url = url
        self._secret = secret

    def __repr__(self) -> str:
        return f"WebhookSink(name={self.name!r}, events={sorted(self.events)!r})"

    def body(self, n: Notification) -> bytes:
        return json.dumps(n.to_json(), ensure_ascii=False, separators=(",", ":")).encode()

    async def send(self, session: aiohttp.ClientSession, n: Notification) -> None:
        body = self.body(n)
        # Configured headers first, so they cannot replace the content type or the signature.
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: n.event,
        }
        if self._secret:
            digest = hmac.new(self._secret.encode(), body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        await post(session, self.name, self._url, body, headers, self.timeout)


def slack_escape(text: str) -> str:
    """Slack reads ``<...>`` as links and mentions (``<!channel>``), and so does Mattermost:
    text from a manifest must not be able to ping a channel."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(n: Notification) -> dict[str, Any]:
    """An incoming-webhook message that Slack and Mattermost both render."""
    summary = f"{_EMOJI[n.severity]} {n.namespace}/{n.app}: {n.event}"
    if n.revision:
        summary += f" at {n.revision[:8]}"
    if n.message:
        summary += " — " + " ".join(n.message.split())
    fields: list[dict[str, Any]] = []
    if n.field_manager:
        fields.append(
            {"title": "Changed by", "value": slack_escape(n.field_manager), "short": True}
        )
    if n.revision:
        fields.append({"title": "Revision", "value": slack_escape(n.revision), "short": True})
    if n.objects:
        names = [_object_name(o) for o in n.objects[:SLACK_MAX_OBJECTS]]
        if len(n.objects) > SLACK_MAX_OBJECTS:
            names.append(f"… and {len(n.objects) - SLACK_MAX_OBJECTS} more")
        fields.append({"title": "Objects", "value": slack_escape("\n".join(names)), "short": False})
    attachment: dict[str, Any] = {
        "color": _COLOR[n.severity],
        "fallback": slack_escape(summary),
        "fields": fields,
        "ts": _epoch(n.time),
    }
    if n.diff:
        # A ``` inside the diff would end the code block early; a zero-width space breaks it.
        diff = truncate(n.diff, SLACK_DIFF_CHARS).replace("```", "``\u200b`")
        attachment["text"] = f"```\n{slack_escape(diff)}\n```"
        attachment["mrkdwn_in"] = ["text"]
    return {"text": slack_escape(summary), "attachments": [attachment]}


def _object_name(o: Mapping[str, str]) -> str:
    kind = f"{o.get('kind', '')}.{o['group']}" if o.get("group") else o.get("kind", "")
    ns = o.get("namespace", "")
    return f"{kind} {ns}/{o.get('name', '')}" if ns else f"{kind} {o.get('name', '')}"


def _epoch(rfc3339: str) -> int:
    try:
        return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


class SlackSink:
    """Posts to a Slack (or Mattermost) incoming webhook: a one-line summary, then the diff."""

    def __init__(
        self,
        name: str,
        url: str,
        events: Iterable[str] = (),
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.name = name
        self.events = set(events)
        self.timeout = timeout
        self._url = url

    def __repr__(self) -> str:
        return f"SlackSink(name={self.name!r}, events={sorted(self.events)!r})"

    async def send(self, session: aiohttp.ClientSession, n: Notification) -> None:
        body = json.dumps(slack_payload(n), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        await post(session, self.name, self._url, body, headers, self.timeout)
