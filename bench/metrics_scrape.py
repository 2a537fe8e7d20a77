"""Benchmark: the /metrics exposition at N apps, the former per-app layout against today's.

In process, no controller: N apps each with a ``tether_app_info`` series and a sync counter
(today), against N per-app reconcile histograms and per-trigger sync counters rendered by
``prometheus_client`` on each scrape (the former layout). Prints the median of 5 renders of
each, and exits 1 when today's is not under 100 ms.

    .venv/bin/python bench/metrics_scrape.py [--apps 5000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from tether import metrics

TARGET_MS = 100.0


def timed(render: Callable[[], bytes]) -> tuple[float, int]:
    """(median milliseconds of 5 renders, lines of the last)."""
    times, body = [], b""
    for _ in range(5):
        t0 = time.perf_counter()
        body = render()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, body.count(b"\n")


def former(n: int) -> Callable[[], bytes]:
    reg = CollectorRegistry()
    hist = Histogram(
        "tether_reconcile_duration_seconds",
        "former layout",
        ["namespace", "app"],
        registry=reg,
        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    )
    syncs = Counter(
        "tether_syncs_total",
        "former layout",
        ["namespace", "app", "result", "trigger"],
        registry=reg,
    )
    for i in range(n):
        hist.labels("apps", f"app-{i:04d}").observe(0.3)
        syncs.labels("apps", f"app-{i:04d}", "Succeeded", "auto").inc()
    return lambda: generate_latest(reg)


def today(n: int) -> Callable[[], bytes]:
    for i in range(n):
        metrics.APP_INFO.set(("apps", f"app-{i:04d}", "default", "Synced", "Healthy"))
        metrics.record_sync("apps", f"app-{i:04d}", "Succeeded", "auto")
        metrics.RECONCILE_DURATION.observe(0.3)
    return metrics.exposition


def one_changed() -> bytes:
    """A scrape after one app's status changed (its line is rendered again)."""
    synced = ("apps", "app-0001", "default", "Synced", "Healthy")
    out_of_sync = ("apps", "app-0001", "default", "OutOfSync", "Healthy")
    metrics.APP_INFO.remove(synced)
    metrics.APP_INFO.set(out_of_sync)
    body = metrics.exposition()
    metrics.APP_INFO.remove(out_of_sync)
    metrics.APP_INFO.set(synced)
    return body


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--apps", type=int, default=5000)
    n = ap.parse_args().apps
    rows = [
        ("former: per-app histogram + per-app sync counter by trigger", timed(former(n))),
        ("today: tether_app_info + tether_syncs_total", timed(today(n))),
        ("today, one app's status changed since the last scrape", timed(one_changed)),
    ]
    print(f"# /metrics exposition at {n} apps (median of 5)")
    for what, (ms, lines) in rows:
        print(f"  {what}: {ms:.1f} ms, {lines} lines")
    worst = max(rows[1][1][0], rows[2][1][0])
    met = worst < TARGET_MS
    print(f"  target today < {TARGET_MS:.0f} ms: {'MET' if met else 'NOT MET'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
