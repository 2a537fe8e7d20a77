"""Notifications: telling people when an Application drifts, fails to sync or degrades."""

from tether.notify.config import CONFIG_NAME, load_sinks, parse_sinks
from tether.notify.model import EVENTS, SEVERITIES, Notification
from tether.notify.notifier import Notifier
from tether.notify.sinks import NotifyError, Sink, SlackSink, WebhookSink

__all__ = [
    "CONFIG_NAME",
    "EVENTS",
    "SEVERITIES",
    "Notification",
    "Notifier",
    "NotifyError",
    "Sink",
    "SlackSink",
    "WebhookSink",
    "load_sinks",
    "parse_sinks",
]
