"""Benchmark: the controller at scale: initial convergence, steady-state cost, restart.

One repository with one directory per app; N auto-synced Applications (default 1000, with 10
objects each: a Service without selector and ConfigMaps) spread over 20 destination
namespaces; `tether controller` as a subprocess with its default settings (4 workers, Git
polled every 3 minutes).
  1. initial convergence: controller start → every Application Synced
  2. steady state, nothing changing, for 60 s: Kubernetes API requests by verb and code
     (from its /metrics), git ls-remote calls, CPU time and RSS of the controller
  3. restart (SIGTERM, start again on the same audit database and git cache): time until
     every app has been reconciled again, all still Synced, with zero API writes

    .venv/bin/python bench/scale.py [--apps 1000] [--objects 10] [--namespaces 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

import aiohttp

from _common import (
    WRITE_VERBS,
    ControllerProcess,
    Env,
    Sample,
    application,
    bench_env,
    configmap,
    dump_all,
    is_synced,
    kube_requests,
    metric_sum,
    say,
)
from tether.api.application import API_VERSION
from tether.kube import LiveCache

RSS_TARGET_MB = 300
CONVERGE_TIMEOUT = 15 * 60
SETTLE_TIMEOUT = 5 * 60
RESTART_TIMEOUT = 10 * 60
CLK_TCK = os.sysconf("SC_CLK_TCK")


def app_objects(i: int, n: int) -> list[dict[str, Any]]:
    """A Service without selector (no Endpoints controller involved) and n-1 ConfigMaps."""
    objs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"svc-{i}"},
            "spec": {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]},
        }
    ]
    objs += [configmap(f"cm-{i}-{j}", {"index": str(j), "payload": "x" * 200}) for j in range(n)]
    return objs[:n]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def reconciled_apps(m: dict[Sample, float]) -> tuple[int, float]:
    """(apps reconciled at least once, total reconciles) from the duration histogram."""
    counts = [
        v for (n, _), v in m.items() if n == "tether_reconcile_duration_seconds_count" and v >= 1
    ]
    return len(counts), sum(counts)


def per_minute(delta: dict[tuple[str, str], float], seconds: float) -> str:
    if not delta:
        return "none"
    return ", ".join(
        f"{v} {c}: {n * 60 / seconds:.1f}/min ({int(n)})" for (v, c), n in sorted(delta.items())
    )


def outage_note(env: Env, results: list[str], since: float, phase: str) -> None:
    """Says so when the shared API server was down (restarted by someone else) meanwhile."""
    down = env.monitor.down_between(since, time.monotonic(), margin=0)
    if down:
        results.append(
            f"  NOTE: the API server was unreachable for {down:.1f}s during the {phase} phase "
            "(restarted by another process on this shared cluster): its numbers include that"
        )


def counts(reqs: dict[tuple[str, str], float]) -> str:
    return ", ".join(f"{v} {c}: {int(n)}" for (v, c), n in sorted(reqs.items())) or "none"


def diff(
    after: dict[tuple[str, str], float], before: dict[tuple[str, str], float]
) -> dict[tuple[str, str], float]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}


class AppWatch:
    """The bench's own watch on the Applications: how many are Synced, without polling."""

    def __init__(self, env: Env, ns: str) -> None:
        self.cache = LiveCache(env.kube)
        self.ns = ns

    async def start(self) -> None:
        await self.cache.ensure(API_VERSION, "Application", namespace=self.ns)

    def apps(self) -> list[dict[str, Any]]:
        return self.cache.all_objects()

    def synced(self) -> int:
        return sum(1 for a in self.apps() if is_synced(a))

    async def close(self) -> None:
        await self.cache.close()


async def run(args: argparse.Namespace) -> int:
    async with bench_env("scale", keep_logs=args.keep_logs) as env:
        home = await env.home(f"bsc-{env.run_id}")
        dests = [f"bsc-{env.run_id}-{k:02d}" for k in range(args.namespaces)]
        for ns in dests:
            await env.namespace(ns)
        n = args.apps
        say(
            f"run {env.run_id}: {n} apps x {args.objects} objects = {n * args.objects} objects; "
            f"Applications in {home}, objects in {len(dests)} namespaces"
        )
        t = time.monotonic()
        repo = env.git.create_repo("scale")
        repo.commit(
            {
                f"apps/app-{i:04d}/objects.yaml": dump_all(app_objects(i, args.objects))
                for i in range(n)
            },
            message="scale bench apps",
        )
        await env.create_apps(
            [
                application(
                    f"app-{i:04d}",
                    home,
                    repo_url=repo.http_url,
                    path=f"apps/app-{i:04d}",
                    dest_namespace=dests[i % len(dests)],
                )
                for i in range(n)
            ]
        )
        say(f"repository and {n} Applications created in {time.monotonic() - t:.1f}s (not timed)")
        watch = AppWatch(env, home)
        await watch.start()
        ctl = env.controller([home])
        try:
            async with aiohttp.ClientSession() as http:
                return await phases(env, ctl, watch, http, args)
        finally:
            await watch.close()


async def phases(
    env: Env,
    ctl: ControllerProcess,
    watch: AppWatch,
    http: aiohttp.ClientSession,
    args: argparse.Namespace,
) -> int:
    n = args.apps
    results: list[str] = []

    # ---- 1. initial convergence --------------------------------------------------------
    say("phase 1: starting the controller; waiting until every app is Synced")
    p1 = time.monotonic()
    ctl.start()
    ready = await ctl.wait_ready(http, timeout=300)
    say(f"controller pid {ctl.pid} ready in {ready:.1f}s")
    last_report = 0.0
    peak_rss = 0.0
    while True:
        ctl.check_alive()
        synced = watch.synced()
        elapsed = time.monotonic() - ctl.started_at
        peak_rss = max(peak_rss, ctl.rss_mb()[0])
        if synced >= n:
            break
        if elapsed > CONVERGE_TIMEOUT:
            say(f"gave up: {synced}/{n} Synced after {elapsed:.0f}s")
            print(f"initial convergence: NOT reached in {CONVERGE_TIMEOUT}s ({synced}/{n})")
            return 1
        if elapsed - last_report >= 15:
            last_report = elapsed
            rss, _ = ctl.rss_mb()
            say(
                f"  {synced:>5}/{n} Synced after {elapsed:5.0f}s "
                f"({synced / elapsed:.1f} apps/s); controller RSS {rss:.0f} MiB"
            )
        await asyncio.sleep(0.5)
    converge = time.monotonic() - ctl.started_at
    m = await ctl.metrics(http)
    reqs1 = kube_requests(m)
    writes = sum(v for (verb, _), v in reqs1.items() if verb in WRITE_VERBS)
    say(f"all {n} Synced {converge:.1f}s after start ({n / converge:.1f} apps/s)")
    results.append(
        f"initial convergence: {n} apps ({n * args.objects} objects) Synced "
        f"{converge:.1f}s after the controller started ({n / converge:.1f} apps/s; "
        f"ready after {ready:.1f}s); peak RSS while syncing {peak_rss:.0f} MiB"
    )
    results.append(
        f"  API requests until then: {int(sum(reqs1.values()))} "
        f"({sum(reqs1.values()) / n:.1f} per app), {int(writes)} of them writes; "
        f"by verb and code: {counts(reqs1)}"
    )

    # ---- 2. steady state ---------------------------------------------------------------
    outage_note(env, results, p1, "initial convergence")
    say("phase 2: waiting for the work queue to drain (reconciles stop changing for 10s)")
    t_settle = time.monotonic()
    prev, stable_since = -1.0, time.monotonic()
    while time.monotonic() - t_settle < SETTLE_TIMEOUT:
        m = await ctl.metrics(http)
        total = reconciled_apps(m)[1]
        if total != prev:
            prev, stable_since = total, time.monotonic()
        elif time.monotonic() - stable_since >= 10:
            break
        await asyncio.sleep(1)
    say(f"settled {time.monotonic() - t_settle:.0f}s after convergence; {int(prev)} reconciles")
    say(f"steady state: measuring for {args.window:.0f}s with nothing changing")
    m0 = await ctl.metrics(http)
    # The CPU window excludes our two /metrics scrapes; one scrape is timed on its own.
    cpu0, t0 = cpu_seconds(ctl.pid), time.monotonic()
    rss_samples = []
    while time.monotonic() - t0 < args.window:
        await asyncio.sleep(min(5.0, args.window - (time.monotonic() - t0)))
        ctl.check_alive()
        rss_samples.append(ctl.rss_mb()[0])
    window = time.monotonic() - t0
    cpu = cpu_seconds(ctl.pid) - cpu0
    cpu_s, ts = cpu_seconds(ctl.pid), time.monotonic()
    m1 = await ctl.metrics(http)
    scrape_s, scrape_cpu = time.monotonic() - ts, cpu_seconds(ctl.pid) - cpu_s
    rss, hwm = ctl.rss_mb()
    peak_rss = max([peak_rss, *rss_samples])
    reqs_delta = diff(kube_requests(m1), kube_requests(m0))
    ls0 = metric_sum(m0, "tether_git_request_duration_seconds_count", operation="ls-remote")
    ls1 = metric_sum(m1, "tether_git_request_duration_seconds_count", operation="ls-remote")
    rec = reconciled_apps(m1)[1] - reconciled_apps(m0)[1]
    lists_or_gets = sum(v for (verb, _), v in reqs_delta.items() if verb == "GET")
    per_app = lists_or_gets / n
    results.append(
        f"steady state, {window:.0f}s with nothing changing: API requests per minute by verb: "
        f"{per_minute(reqs_delta, window)}"
    )
    results.append(
        f"  target: only watches and polling, no LIST/GET per app per cycle: "
        f"{int(lists_or_gets)} GET/LIST in the window = {per_app:.3f} per app "
        f"({'MET' if per_app < 0.01 else 'MISSED'}: want a constant few, not one per app); "
        f"reconciles in the window: {int(rec)}"
    )
    results.append(
        f"  git ls-remote calls in the window: {int(ls1 - ls0)} (default poll interval 3m, "
        f"so 0 or 1 per 60s is expected; {int(ls1)} since start)"
    )
    results.append(
        f"  controller CPU in the window: {cpu:.1f}s ({cpu / window * 100:.1f}% of a core); "
        f"one /metrics scrape: {len(m1)} samples, {scrape_s * 1000:.0f} ms, "
        f"{scrape_cpu * 1000:.0f} ms of controller CPU"
    )
    results.append(
        f"  controller RSS in steady state: {rss:.0f} MiB (peak VmHWM {hwm:.0f} MiB)  "
        f"target < {RSS_TARGET_MB} MiB: {'MET' if rss < RSS_TARGET_MB else 'MISSED'}"
    )

    # ---- 3. restart --------------------------------------------------------------------
    outage_note(env, results, t0, "steady state")
    say("phase 3: restarting the controller (SIGTERM, start again)")
    t_term = time.monotonic()
    stop_s = ctl.stop()
    say(f"controller stopped {stop_s:.1f}s after SIGTERM")
    ctl.start()
    ready2 = await ctl.wait_ready(http, timeout=300)
    say(f"controller pid {ctl.pid} ready in {ready2:.1f}s; waiting for every app to be reconciled")
    last_report = 0.0
    while True:
        m = await ctl.metrics(http)
        apps_done, total = reconciled_apps(m)
        elapsed = time.monotonic() - ctl.started_at
        if apps_done >= n:
            break
        if elapsed > RESTART_TIMEOUT:
            say(f"gave up: {apps_done}/{n} reconciled after {elapsed:.0f}s")
            results.append(f"restart: NOT all apps reconciled in {RESTART_TIMEOUT}s")
            break
        if elapsed - last_report >= 10:
            last_report = elapsed
            say(f"  {apps_done:>5}/{n} apps reconciled after {elapsed:5.0f}s")
        await asyncio.sleep(1.0)
    full = time.monotonic() - ctl.started_at
    since_term = time.monotonic() - t_term
    m = await ctl.metrics(http)
    reqs2 = kube_requests(m)
    writes2 = sum(x for (v, _), x in reqs2.items() if v in WRITE_VERBS)
    synced = watch.synced()
    rss2, _ = ctl.rss_mb()
    results.append(
        f"restart: SIGTERM → exit {stop_s:.1f}s; start → ready {ready2:.1f}s; start → every app "
        f"reconciled {full:.1f}s ({full - ready2:.1f}s after ready; SIGTERM → all reconciled "
        f"{since_term:.1f}s); {int(reconciled_apps(m)[1])} reconciles"
    )
    results.append(
        f"  after restart: {synced}/{n} Synced (want {n}); API writes {int(writes2)} "
        f"(want 0: {'MET' if not writes2 else 'MISSED'}); requests by verb and code: "
        f"{counts(reqs2)}; RSS {rss2:.0f} MiB"
    )
    outage_note(env, results, t_term, "restart")
    print()
    print(
        f"# scale: {n} apps x {args.objects} objects in {args.namespaces} namespaces, "
        f"run {env.run_id}; controller with default settings"
    )
    for line in results:
        print(line)
    print(
        "  (Argo CD and Flux publish their own scale figures for their own setups; "
        "none are quoted here)"
    )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--apps", type=int, default=1000)
    ap.add_argument("--objects", type=int, default=10, help="objects per app")
    ap.add_argument("--namespaces", type=int, default=20, help="destination namespaces")
    ap.add_argument("--window", type=float, default=60.0, help="steady-state seconds")
    ap.add_argument("--keep-logs", action="store_true", help="keep the controller log")
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
