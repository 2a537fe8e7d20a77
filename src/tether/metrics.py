"""Prometheus metrics of the engine, in one registry the controller serves on /metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILE_DURATION = Histogram(
    "tether_reconcile_duration_seconds",
    "Time to reconcile one Application (compare, and sync when needed).",
    ["namespace", "app"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "tether_queue_depth", "Applications waiting in the work queue.", registry=REGISTRY
)
SYNCS = Counter(
    "tether_syncs_total",
    "Syncs by result (Succeeded, Failed) and trigger (poll, webhook, manual, self-heal, auto).",
    ["namespace", "app", "result", "trigger"],
    registry=REGISTRY,
)
DRIFT = Counter(
    "tether_drift_detected_total",
    "Live changes that made a tracked object differ from Git.",
    ["namespace", "app"],
    registry=REGISTRY,
)
SELF_HEALS = Counter(
    "tether_self_heals_total",
    "Objects re-applied to undo a live change.",
    ["namespace", "app"],
    registry=REGISTRY,
)
GIT_DURATION = Histogram(
    "tether_git_request_duration_seconds",
    "Duration of git ls-remote and fetch.",
    ["operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
GIT_ERRORS = Counter(
    "tether_git_request_errors_total",
    "Failed git ls-remote and fetch, by reason.",
    ["operation", "reason"],
    registry=REGISTRY,
)
WEBHOOKS = Counter(
    "tether_webhook_requests_total",
    "Webhook requests by provider and outcome (accepted, ignored, unauthorized, too-large, bad, "
    "dropped).",
    ["provider", "outcome"],
    registry=REGISTRY,
)
API_AUTH_FAILURES = Counter(
    "tether_api_auth_failures_total",
    "Refused authentications of the HTTP API and /metrics, by reason (invalid-token, "
    "rate-limited, no-credentials, session-ended, csrf-token).",
    ["reason"],
    registry=REGISTRY,
)
API_TOKEN_REVIEWS = Counter(
    "tether_api_token_reviews_total",
    "TokenReviews sent to the Kubernetes API to check a caller's token (cache misses).",
    registry=REGISTRY,
)
NOTIFICATIONS = Counter(
    "tether_notifications_total",
    "Notifications sent, by sink and outcome (sent, retried, dropped).",
    ["sink", "outcome"],
    registry=REGISTRY,
)
APPS = Gauge(
    "tether_applications",
    "Applications by sync and health status.",
    ["sync", "health"],
    registry=REGISTRY,
)
APP_PINNED = Gauge(
    "tether_app_pinned",
    "1 while an Application is pinned by 'tether app pin' (no series for one that is not).",
    ["namespace", "name"],
    registry=REGISTRY,
)
APP_PIN_COMMITS_BEHIND = Gauge(
    "tether_app_pin_commits_behind",
    "Commits the branches of a pinned Application have moved past its pin.",
    ["namespace", "name"],
    registry=REGISTRY,
)
LEADER = Gauge("tether_leader", "1 when this controller holds the leader lease.", registry=REGISTRY)
AUDIT_RECORDS_LOST = Counter(
    "tether_audit_records_lost_total",
    "Audit records the store could not write after retries (each is logged whole instead).",
    ["kind"],
    registry=REGISTRY,
)
AUDIT_RECORDS_EXPIRED = Counter(
    "tether_audit_records_expired_total",
    "Audit records removed by retention (--audit-retention), older than the window.",
    registry=REGISTRY,
)

RENDERS = Counter(
    "tether_renders",
    "Renders done (not served from the render cache), by render type.",
    ["type"],
    registry=REGISTRY,
)
RENDER_CACHE_HITS = Counter(
    "tether_render_cache_hits",
    "Renders served from the render cache (same inputs, tool versions and parameters).",
    registry=REGISTRY,
)
RENDER_DURATION = Histogram(
    "tether_render_duration_seconds",
    "Time to render one source (kustomize build, helm template, ...), by render type.",
    ["type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 90),
    registry=REGISTRY,
)


def record_render(render_type: str, seconds: float) -> None:
    """One render done (a render-cache miss) of type ``render_type`` taking ``seconds``."""
    RENDERS.labels(render_type).inc()
    RENDER_DURATION.labels(render_type).observe(seconds)


class KubeRequestsCollector(Collector):
    """Kubernetes API requests by verb and status code, read from the client's counters."""

    def __init__(self) -> None:
        self.source: Callable[[], Iterable[tuple[tuple[str, int], int]]] = lambda: ()

    def collect(self) -> Iterable[CounterMetricFamily]:
        fam = CounterMetricFamily(
            "tether_kube_requests",
            "Kubernetes API requests by verb and code.",
            labels=["verb", "code"],
        )
        for (verb, code), n in self.source():
            fam.add_metric([verb, str(code)], n)
        yield fam


KUBE_REQUESTS = KubeRequestsCollector()
REGISTRY.register(KUBE_REQUESTS)
