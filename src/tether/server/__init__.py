"""The controller's HTTP face: the server (webhooks, metrics, probes, audit) and webhook parsing."""

from tether.server.access import AccessReview, Caller, KubeAccessReview
from tether.server.http import AuditReader, bound_port, create_app, create_metrics_app, serve
from tether.server.webhooks import (
    PushEvent,
    WebhookBadRequest,
    WebhookError,
    WebhookSecrets,
    WebhookUnauthorized,
    detect_provider,
    matches,
    normalize_repo_url,
    parse_webhook,
)

__all__ = [
    "AccessReview",
    "AuditReader",
    "Caller",
    "KubeAccessReview",
    "PushEvent",
    "WebhookBadRequest",
    "WebhookError",
    "WebhookSecrets",
    "WebhookUnauthorized",
    "bound_port",
    "create_app",
    "create_metrics_app",
    "detect_provider",
    "matches",
    "normalize_repo_url",
    "parse_webhook",
    "serve",
]
