"""Prometheus metrics of the engine, in one registry the controller serves on /metrics.

Two kinds of series: per-controller ones (``prometheus_client``, a handful of samples each)
and per-application ones (:class:`AppFamily`), whose exposition lines are rendered when a
value changes, not on each scrape, so a scrape of 5,000 apps costs a string join. Every
per-app family is documented with its cardinality in docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILE_DURATION = Histogram(
    "tether_reconcile_duration_seconds",
    "Time to reconcile one Application (compare, and sync when needed), all apps together.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
APPS_RECONCILED = Gauge(
    "tether_applications_reconciled",
    "Applications reconciled at least once since this controller started.",
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "tether_queue_depth", "Applications waiting in the work queue.", registry=REGISTRY
)
SYNC_TRIGGERS = Counter(
    "tether_sync_triggers_total",
    "Syncs of all apps by trigger (poll, webhook, manual, self-heal, auto, ...) and result.",
    ["trigger", "result"],
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


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(v: float) -> str:
    return repr(float(v))


class AppFamily:
    """One per-application metric family: a series per (namespace, app) key, at most one
    label set each, its exposition line rendered when it changes. ``remove`` drops an app's
    series (the app was deleted), so the family never holds more series than apps."""

    def __init__(self, name: str, help_text: str, kind: str, labels: list[str]) -> None:
        self.name, self.labels = name, labels
        self.header = f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"
        self._values: dict[tuple[str, ...], float] = {}
        self._lines: dict[tuple[str, ...], str] = {}
        self._by_app: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
        """(namespace, app) → its label sets: removing an app does not walk every series."""
        self._text: str | None = ""

    def _render(self, labels: tuple[str, ...], value: float) -> None:
        pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in zip(self.labels, labels, strict=True))
        self._values[labels] = value
        self._lines[labels] = f"{self.name}{{{pairs}}} {_number(value)}\n"
        self._by_app.setdefault(labels[:2], set()).add(labels)
        self._text = None

    def set(self, labels: tuple[str, ...], value: float = 1.0) -> None:
        if self._values.get(labels) != value:
            self._render(labels, value)

    def inc(self, labels: tuple[str, ...], amount: float = 1.0) -> None:
        self._render(labels, self._values.get(labels, 0.0) + amount)

    def get(self, labels: tuple[str, ...]) -> float | None:
        return self._values.get(labels)

    def remove(self, labels: tuple[str, ...]) -> None:
        if self._lines.pop(labels, None) is not None:
            self._values.pop(labels, None)
            held = self._by_app.get(labels[:2])
            if held is not None:
                held.discard(labels)
                if not held:
                    del self._by_app[labels[:2]]
            self._text = None

    def remove_app(self, namespace: str, app: str) -> None:
        """Every series of one app (its key is the first two labels)."""
        for labels in list(self._by_app.get((namespace, app), ())):
            self.remove(labels)

    def clear(self) -> None:
        self._values.clear()
        self._lines.clear()
        self._by_app.clear()
        self._text = None

    def __len__(self) -> int:
        return len(self._lines)

    def exposition(self) -> str:
        if self._text is None:
            self._text = self.header + "".join(self._lines.values())
        return self._text


APP_INFO = AppFamily(
    "tether_app_info",
    "1 per Application, labelled with its project and its sync and health status.",
    "gauge",
    ["namespace", "name", "project", "sync_status", "health_status"],
)
SYNCS = AppFamily(
    "tether_syncs_total",
    "Syncs of one Application by result (Succeeded, Failed).",
    "counter",
    ["namespace", "app", "result"],
)
DRIFT = AppFamily(
    "tether_drift_detected_total",
    "Live changes that made a tracked object of one Application differ from Git.",
    "counter",
    ["namespace", "app"],
)
SELF_HEALS = AppFamily(
    "tether_self_heals_total",
    "Objects of one Application re-applied to undo a live change.",
    "counter",
    ["namespace", "app"],
)
APP_FAMILIES = (APP_INFO, SYNCS, DRIFT, SELF_HEALS)


def forget_app(namespace: str, name: str) -> None:
    """An Application is gone: none of its per-app series stays behind."""
    for fam in APP_FAMILIES:
        fam.remove_app(namespace, name)


def record_sync(namespace: str, app: str, result: str, trigger: str) -> None:
    """One sync ended: per app by result, per controller by trigger and result."""
    SYNCS.inc((namespace, app, result))
    SYNC_TRIGGERS.labels(trigger, result).inc()


def exposition() -> bytes:
    """The whole /metrics body (Prometheus text format 0.0.4)."""
    head = generate_latest(REGISTRY)
    return head + "".join(f.exposition() for f in APP_FAMILIES).encode()
