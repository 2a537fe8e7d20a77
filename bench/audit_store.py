"""Benchmark: audit store append and query latency, SQLite and PostgreSQL.

For each backend, a fresh store: N appends one after another (each acknowledged, as the
controller writes them), then queries of up to 1,000 records (newest first, one app, and all),
and a streamed export of everything. PostgreSQL is the test bed's server (make cluster), in a
schema of its own that is dropped afterwards.

    .venv/bin/python bench/audit_store.py [--appends 1000] [--queries 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit_stores import opened
from tether.audit import AuditRecord, AuditStore


def pct(values: list[float], p: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * p))]


async def measure(store: AuditStore, appends: int, queries: int) -> dict[str, float]:
    times: list[float] = []
    for i in range(appends):
        rec = AuditRecord(
            id=None,
            time="",
            app=f"shop/app-{i % 10}",
            kind="sync",
            revision=f"{i:040x}",
            message=f"deploy {i}",
            result="Succeeded",
            objects=[{"kind": "ConfigMap", "name": f"cm-{i}", "action": "configured"}],
        )
        t0 = time.perf_counter()
        await store.append(rec)
        times.append(time.perf_counter() - t0)
    q_all: list[float] = []
    q_app: list[float] = []
    for _ in range(queries):
        t0 = time.perf_counter()
        got = await store.query(limit=1000)
        q_all.append(time.perf_counter() - t0)
        assert len(got) == min(1000, appends)
        t0 = time.perf_counter()
        await store.query(app="shop/app-3", kinds=["sync"], limit=1000)
        q_app.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    n = sum([1 async for _ in store.export()])
    export = time.perf_counter() - t0
    assert n == appends
    return {
        "append_median_ms": statistics.median(times) * 1000,
        "append_p95_ms": pct(times, 0.95) * 1000,
        "appends_per_s": appends / sum(times),
        "query_1000_median_ms": statistics.median(q_all) * 1000,
        "query_app_median_ms": statistics.median(q_app) * 1000,
        "export_all_ms": export * 1000,
    }


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--appends", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "postgres"):
            async with opened(backend, Path(tmp)) as store:
                r = await measure(store, args.appends, args.queries)
            print(f"{backend:9}", "  ".join(f"{k}={v:.2f}" for k, v in r.items()))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
