"""Notification sinks from the cluster: the ``tether-notifications`` ConfigMap and Secret.

The ConfigMap, in the controller's namespace, holds the sinks in ``data.sinks``, a YAML list;
the Secret of the same name holds what must stay secret, the URLs and signing keys, which the
ConfigMap refers to by key::

    apiVersion: v1
    kind: ConfigMap
    metadata: {name: tether-notifications, namespace: tether-system}
    data:
      sinks: |
        - name: team-chat            # unique; the only way a sink is named in logs
          type: slack                # slack (Slack or Mattermost incoming webhook) | webhook
          events: [drift, sync-failed, health-degraded]   # omit or [] for every event
          urlKey: slack-url          # key in the Secret holding the webhook URL
        - name: audit
          type: webhook              # POSTs the notification as JSON
          urlKey: audit-url
          secretKey: audit-hmac      # optional: key holding the HMAC-SHA256 signing secret
          headers: {X-Team: platform}  # optional, webhook only; not secret (it is a ConfigMap)
    ---
    apiVersion: v1
    kind: Secret
    metadata: {name: tether-notifications, namespace: tether-system}
    stringData:
      slack-url: https://hooks.slack.com/services/T000/B000/XXXX
      audit-url: https://audit.example.com/tether
      audit-hmac: a-long-random-string

Events: ``drift``, ``sync-failed``, ``health-degraded``, ``self-heal-fighting``,
``sync-succeeded``. No ConfigMap (or no ``sinks`` in it) means no sinks. Any mistake raises
``InvalidSpec`` naming the sink and the field or Secret key, never a value from the Secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from tether.errors import InvalidSpec
from tether.kube.secrets import decode_secret_data
from tether.notify.model import EVENTS
from tether.notify.sinks import SlackSink, WebhookSink

if TYPE_CHECKING:
    from tether.kube import KubeClient
    from tether.notify.sinks import Sink

CONFIG_NAME = "tether-notifications"
SINK_TYPES = ("webhook", "slack")
_FIELDS = {
    "webhook": {"name", "type", "events", "urlKey", "secretKey", "headers"},
    "slack": {"name", "type", "events", "urlKey"},
}


async def load_sinks(kube: KubeClient, namespace: str) -> list[Sink]:
    """The sinks configured in ``namespace``; ``[]`` when the ConfigMap does not exist."""
    cm = await kube.get("v1", "ConfigMap", CONFIG_NAME, namespace)
    if cm is None:
        return []
    config_yaml = str((cm.get("data") or {}).get("sinks") or "")
    if not config_yaml.strip():
        return []
    secret_obj = await kube.get("v1", "Secret", CONFIG_NAME, namespace)
    # A binary value (a file added with --from-file) is skipped with a warning naming it.
    secret = decode_secret_data(secret_obj) if secret_obj else {}
    try:
        return parse_sinks(config_yaml, secret)
    except InvalidSpec as e:
        if secret_obj is None and not e.hint:
            raise InvalidSpec(
                e.message, hint=f"Secret {namespace}/{CONFIG_NAME} does not exist"
            ) from None
        raise


def parse_sinks(config_yaml: str, secret: dict[str, str]) -> list[Sink]:
    """Sinks from the ConfigMap's ``sinks`` YAML and the Secret's decoded ``data``."""
    try:
        doc = yaml.safe_load(config_yaml)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidSpec(f"ConfigMap {CONFIG_NAME}: data.sinks is not valid YAML{where}") from None
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise InvalidSpec(f"ConfigMap {CONFIG_NAME}: data.sinks must be a YAML list of sinks")
    sinks: list[Sink] = []
    seen: set[str] = set()
    for i, item in enumerate(doc):
        sink = _parse_one(i, item, secret)
        if sink.name in seen:
            raise InvalidSpec(f"ConfigMap {CONFIG_NAME}: two sinks are named {sink.name!r}")
        seen.add(sink.name)
        sinks.append(sink)
    return sinks


def _parse_one(i: int, item: Any, secret: dict[str, str]) -> Sink:
    where = f"ConfigMap {CONFIG_NAME}: data.sinks[{i}]"
    if not isinstance(item, dict):
        raise InvalidSpec(f"{where} must be a mapping with name, type and urlKey")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidSpec(f"{where} has no name")
    where = f"ConfigMap {CONFIG_NAME}: sink {name!r}"
    kind = item.get("type")
    if kind not in SINK_TYPES:
        raise InvalidSpec(f"{where}: type must be one of {', '.join(SINK_TYPES)}, not {kind!r}")
    # Unknown fields are refused, and only their names are reported: the usual mistake is
    # ``url: https://...`` in the ConfigMap, and that value is a credential.
    unknown = sorted(str(k) for k in item if k not in _FIELDS[kind])
    if unknown:
        raise InvalidSpec(
            f"{where}: unknown field(s) {', '.join(unknown)} for a {kind} sink",
            hint="URLs and signing secrets go in the Secret, named by urlKey and secretKey",
        )
    events = item.get("events") or []
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise InvalidSpec(f"{where}: events must be a list of event names")
    bad = sorted(set(events) - EVENTS)
    if bad:
        raise InvalidSpec(
            f"{where}: unknown event(s) {', '.join(bad)}",
            hint=f"events are {', '.join(sorted(EVENTS))}",
        )
    url = _secret_value(where, item, "urlKey", secret, required=True)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSpec(
            f"{where}: key {item['urlKey']!r} of Secret {CONFIG_NAME} does not hold an http(s) URL"
        )
    if kind == "slack":
        return SlackSink(name, url, events)
    signing = _secret_value(where, item, "secretKey", secret, required=False)
    return WebhookSink(name, url, events, _headers(where, item.get("headers")), signing)


def _secret_value(
    where: str, item: dict[str, Any], field: str, secret: dict[str, str], *, required: bool
) -> str:
    key = item.get(field)
    if key is None and not required:
        return ""
    if not isinstance(key, str) or not key:
        raise InvalidSpec(f"{where}: {field} must name a key of Secret {CONFIG_NAME}")
    if key not in secret:
        raise InvalidSpec(f"{where}: {field} {key!r} is not a key of Secret {CONFIG_NAME}")
    # ``kubectl create secret --from-file`` keeps the file's trailing newline.
    value = secret[key].strip()
    if not value:
        raise InvalidSpec(f"{where}: key {key!r} of Secret {CONFIG_NAME} is empty")
    return value


def _headers(where: str, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidSpec(f"{where}: headers must be a mapping of header name to value")
    out: dict[str, str] = {}
    for k, v in raw.items():
        if not isinstance(k, str) or isinstance(v, dict | list) or v is None:
            raise InvalidSpec(f"{where}: header {k!r} must have a single text value")
        value = str(v)
        # A newline would let a value start a header of its own.
        if any(c in k + value for c in "\r\n") or not k.strip():
            raise InvalidSpec(f"{where}: header {k!r} has a line break or an empty name")
        out[k] = value
    return out
