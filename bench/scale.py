"""Benchmark: one controller at 100, 1,000 and 5,000 apps, beside the API server's own floor.

For each size N (10 objects per app: a Service without selector and ConfigMaps, in 20
destination namespaces; one repository with a directory per app; self-healing auto-synced
Applications; `tether controller` as a subprocess with its default settings), in one run:
  1. the floor: the same N x 10 objects as raw concurrent server-side applies (bench/floor.py)
     into fresh namespaces of their own
  2. controller start → every app Synced, as a ratio of the floor (target <= 1.5x); the
     Kubernetes API requests by verb and code until then
  3. steady state: requests over a window with nothing changing (target 0 besides watch
     reconnects), RSS (from /proc), one /metrics scrape (target < 100 ms) and its samples
  4. drift: live edits of objects of different apps, each timed until self-heal restored it (p95)
  5. commit → applied: push a commit changing one app, POST the webhook, time until live (p95)
  6. restart with nothing changed: time until every app is reconciled again, writes (want 0)
Steps 1 and 2 each start on a quiet control plane (``_common.quiet``), so neither is charged
for work the other, or the setup, left to the control plane. It prints a table per size,
writes every figure as JSON (--out) and draws the curves (time and floor, RSS, requests
against the number of apps) into a PNG (--plot). Exits 1 when a target is missed.
``--cp-profile DIR`` writes kube-apiserver's CPU profile of the first ``--cp-profile-seconds``
of step 2 at each size into DIR and prints where its samples went (bench/apiserver_profile.py).

    flock /tmp/tether-bench.lock .venv/bin/python bench/scale.py --apps 100,1000,5000 \\
        --out /tmp/scale.json --plot docs/performance/scale.png
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from _common import (
    KUBECTL,
    WRITE_VERBS,
    ControllerProcess,
    Env,
    application,
    bench_env,
    configmap,
    control_plane_cpu,
    cpu_seconds,
    dump_all,
    github_push,
    is_synced,
    kube_requests,
    machine_busy,
    metric_sum,
    percentile,
    processes_cpu,
    quiet,
    say,
    wait_namespaces_gone,
)
from apiserver_profile import ApiServerProfile
from floor import Floor, ratio_line
from tether.api.application import API_VERSION
from tether.controller.presence import RENEW_PERIOD
from tether.errors import KubeError
from tether.kube import LiveCache
from tether.model import Obj

RATIO_TARGET = 1.5
SCRAPE_TARGET_MS = 100.0
CONVERGE_TIMEOUT = 20 * 60
SETTLE_TIMEOUT = 5 * 60
RESTART_TIMEOUT = 10 * 60
SAMPLE_TIMEOUT = 60.0
SAMPLE_TIMEOUT_PER_APP = 0.05
"""A webhook queues every app of the repository: the app changed may wait behind all of
them, so a sample waits at least this per app (250 s at 5,000 apps)."""


def rss_target(apps: int) -> float:
    """MiB: < 150 up to 1,000 apps, < 500 up to 5,000."""
    return 150.0 if apps <= 1000 else 500.0


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


def app_file(i: int, objects: int, value: str = "") -> dict[str, str]:
    """The file of app ``i``; ``value``: a new ``index`` of its ConfigMap cm-<i>-1."""
    objs = app_objects(i, objects)
    for o in objs:
        if value and o["metadata"]["name"] == f"cm-{i}-1":
            o["data"]["index"] = value
    return {f"apps/app-{i:04d}/objects.yaml": dump_all(objs)}


def app_files(n: int, objects: int) -> dict[str, str]:
    """The repository's files: a directory per app."""
    return {k: v for i in range(n) for k, v in app_file(i, objects).items()}


def counts(reqs: dict[tuple[str, str], float]) -> str:
    return ", ".join(f"{v} {c}: {int(n)}" for (v, c), n in sorted(reqs.items())) or "none"


def diff(
    after: dict[tuple[str, str], float], before: dict[tuple[str, str], float]
) -> dict[tuple[str, str], float]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}


def writes_of(reqs: dict[tuple[str, str], float]) -> int:
    return int(sum(v for (verb, _), v in reqs.items() if verb in WRITE_VERBS))


class AppWatch:
    """The bench's own watch on the Applications: how many are Synced, without polling.

    Each Application's verdict is kept as its events arrive: asking is a count, not a decode
    of every Application the cache keeps compressed (at 5,000 apps, asked 4 times a second,
    that alone took a core from the controller it measures)."""

    def __init__(self, env: Env, ns: str) -> None:
        self.cache = LiveCache(env.kube)
        self.ns = ns
        self._synced: dict[str, bool] = {}
        self.cache.add_listener(self._on_event)

    async def start(self) -> None:
        await self.cache.ensure(API_VERSION, "Application", namespace=self.ns)
        for app in self.cache.all_objects():  # the first list sends no events
            self._on_event("ADDED", app)

    def _on_event(self, event: str, app: Obj) -> None:
        name = str((app.get("metadata") or {}).get("name") or "")
        if event == "DELETED":
            self._synced.pop(name, None)
        else:
            self._synced[name] = is_synced(app)

    def synced(self) -> int:
        return sum(self._synced.values())

    async def close(self) -> None:
        await self.cache.close()


class Size:
    """One size's run: the setup, the phases, and what they measured (``self.r``)."""

    def __init__(self, env: Env, args: argparse.Namespace, apps: int) -> None:
        self.env, self.args, self.n = env, args, apps
        self.home = f"bsc-{env.run_id}"
        self.dests = [f"bsc-{env.run_id}-{k:02d}" for k in range(args.namespaces)]
        self.r: dict[str, Any] = {"apps": apps, "objects": apps * args.objects}
        self.peak_rss = 0.0
        self.ctl: ControllerProcess | None = None

    @property
    def sample_timeout(self) -> float:
        return max(SAMPLE_TIMEOUT, self.n * SAMPLE_TIMEOUT_PER_APP)

    def dest(self, i: int) -> str:
        return self.dests[i % len(self.dests)]

    async def setup(self) -> None:
        env, n, a = self.env, self.n, self.args
        t = time.monotonic()
        await env.home(self.home)
        await asyncio.gather(*(env.namespace(ns) for ns in self.dests))
        self.repo = env.git.create_repo("scale")
        await asyncio.to_thread(self.repo.commit, app_files(n, a.objects), message="scale apps")
        say(f"{n} apps x {a.objects} objects: repository in {time.monotonic() - t:.1f}s")

    async def floor(self) -> None:
        """The same objects, raw, into namespaces of their own (created before, not timed)."""
        env, a = self.env, self.args
        fl = [f"bsc-{env.run_id}-f{k:02d}" for k in range(a.namespaces)]
        await asyncio.gather(*(env.namespace(ns) for ns in fl))
        objs = []
        for i in range(self.n):
            for o in app_objects(i, a.objects):
                o["metadata"]["namespace"] = fl[i % len(fl)]
                objs.append(o)
        self.r["floor_idle_cores"] = await quiet()
        cp = control_plane_cpu()
        async with Floor.open(env.kubeconfig) as f:
            self.r["floor_s"] = await f.apply(objs)
        self.r["floor_cp_cpu_s"] = control_plane_cpu() - cp
        say(
            f"floor: {len(objs)} raw server-side applies in {self.r['floor_s']:.2f}s "
            f"(API server + etcd CPU {self.r['floor_cp_cpu_s']:.1f}s)"
        )

    async def create_apps(self) -> None:
        t = time.monotonic()
        await self.env.create_apps(
            [
                application(
                    f"app-{i:04d}",
                    self.home,
                    repo_url=self.repo.http_url,
                    path=f"apps/app-{i:04d}",
                    dest_namespace=self.dest(i),
                    self_heal=True,
                )
                for i in range(self.n)
            ],
            concurrency=64,
        )
        say(f"{self.n} Applications created in {time.monotonic() - t:.1f}s (not timed)")

    def sample_rss(self) -> float:
        assert self.ctl is not None
        rss = self.ctl.rss_mb()[0]
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    async def converge(self, http: aiohttp.ClientSession, watch: AppWatch) -> bool:
        ctl, n = self.ctl, self.n
        assert ctl is not None
        self.r["converge_idle_cores"] = await quiet()
        cp, busy, kcm = control_plane_cpu(), machine_busy(), kcm_cpu()
        me = cpu_seconds(os.getpid())
        profile = self.cp_profile()
        ctl.start()
        if profile is not None:
            profile.start()
        ready = await ctl.wait_ready(http, timeout=300)
        last = 0.0
        while (synced := watch.synced()) < n:
            ctl.check_alive()
            self.sample_rss()
            elapsed = time.monotonic() - ctl.started_at
            if elapsed > CONVERGE_TIMEOUT:
                say(f"gave up: {synced}/{n} Synced after {elapsed:.0f}s")
                self.r["converge_s"] = math.inf
                return False
            if elapsed - last >= 15:
                last = elapsed
                say(f"  {synced:>5}/{n} Synced after {elapsed:4.0f}s; RSS {self.sample_rss():.0f}")
            await asyncio.sleep(0.25)
        self.r["converge_s"] = time.monotonic() - ctl.started_at
        # Where the time went: the controller's own CPU, and the API server's and etcd's.
        self.r["converge_cpu_s"] = cpu_seconds(ctl.pid)
        self.r["converge_cp_cpu_s"] = control_plane_cpu() - cp
        # How busy the machine's cores were (every process): near 100 %, the CPU bounds it.
        used, total = (a - b for a, b in zip(machine_busy(), busy, strict=True))
        self.r["converge_busy"] = used / total if total else math.nan
        self.r["converge_kcm_cpu_s"] = kcm_cpu() - kcm
        self.r["converge_bench_cpu_s"] = cpu_seconds(os.getpid()) - me
        self.r["ready_s"] = ready
        self.r["rss_peak_mb"] = max(self.peak_rss, self.sample_rss())
        m = await ctl.metrics(http)
        reqs = kube_requests(m)
        self.r["startup_reconciles"] = int(metric_sum(m, "tether_reconcile_duration_seconds_count"))
        self.r["startup_requests"] = int(sum(reqs.values()))
        self.r["startup_writes"] = writes_of(reqs)
        self.r["startup_by_verb"] = {f"{v} {c}": int(x) for (v, c), x in sorted(reqs.items())}
        say(f"all {n} Synced {self.r['converge_s']:.1f}s after start; {counts(reqs)}")
        say(
            f"  CPU until then: controller {self.r['converge_cpu_s']:.1f}s, "
            f"API server + etcd {self.r['converge_cp_cpu_s']:.1f}s, kube-controller-manager "
            f"{self.r['converge_kcm_cpu_s']:.1f}s, this benchmark "
            f"{self.r['converge_bench_cpu_s']:.1f}s; the machine's cores "
            f"{self.r['converge_busy']:.0%} busy"
        )
        if profile is not None:
            for line in await profile.finish():
                say(line)
        return True

    def cp_profile(self) -> ApiServerProfile | None:
        """kube-apiserver's CPU profile of the start, when ``--cp-profile`` asks for it."""
        if not self.args.cp_profile:
            return None
        path = Path(self.args.cp_profile) / f"apiserver-start-{self.n}.pprof"
        return ApiServerProfile(KUBECTL, self.env.kubeconfig, path, self.args.cp_profile_seconds)

    async def settle(self, http: aiohttp.ClientSession) -> None:
        """Until reconciles stop for 5 s: the work queue is drained."""
        assert self.ctl is not None
        t_settle, prev, since = time.monotonic(), -1.0, time.monotonic()
        while time.monotonic() - t_settle < SETTLE_TIMEOUT:
            m = await self.ctl.metrics(http)
            total = metric_sum(m, "tether_reconcile_duration_seconds_count")
            if total != prev:
                prev, since = total, time.monotonic()
            elif time.monotonic() - since >= 5:
                return
            await asyncio.sleep(1)

    async def steady(self, http: aiohttp.ClientSession) -> None:
        ctl = self.ctl
        assert ctl is not None
        await self.settle(http)
        m0 = await ctl.metrics(http)
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.args.window:
            await asyncio.sleep(min(2.0, self.args.window - (time.monotonic() - t0)))
            ctl.check_alive()
            self.sample_rss()
        window = time.monotonic() - t0
        scrapes = []
        for _ in range(3):
            took, m1 = await ctl.scrape(http)
            scrapes.append(took)
        delta = diff(kube_requests(m1), kube_requests(m0))
        watches = int(sum(v for (verb, _), v in delta.items() if verb == "WATCH"))
        beats = heartbeats(delta, window)
        self.r["steady_window_s"] = window
        self.r["steady_heartbeats"] = beats
        self.r["steady_requests"] = int(sum(delta.values())) - watches - beats
        self.r["steady_watch_reconnects"] = watches
        self.r["steady_by_verb"] = {f"{v} {c}": int(x) for (v, c), x in sorted(delta.items())}
        self.r["rss_steady_mb"] = self.sample_rss()
        self.r["scrape_ms"] = sorted(scrapes)[1]
        self.r["scrape_samples"] = len(m1)

    async def drift(self) -> None:
        """Live edits of cm-<i>-1 of distinct apps; each timed until self-heal undid it."""
        kube, lat = self.env.kube, []
        for k, i in enumerate(spread(self.n, self.args.drift)):
            name, ns = f"cm-{i}-1", self.dest(i)
            try:
                live = await kube.get("v1", "ConfigMap", name, ns)
                if live is None:
                    raise RuntimeError(f"ConfigMap {ns}/{name} missing before the drift sample")
                t0 = time.monotonic()
                patch = {"data": {"index": f"drift-{k}"}}
                await kube.merge_patch(live, patch, field_manager="edit")
                took = await until_value(self.env, ns, name, "1", t0, self.sample_timeout)
            except (KubeError, TimeoutError) as e:
                await self.disturbed(f"drift sample {k}", e)
                continue
            if self.env.monitor.disturbed(t0, t0 + took):
                continue  # the shared API server was restarted meanwhile: not our latency
            lat.append(took)
            self.sample_rss()
        self.r["drift_p95_s"] = percentile(lat, 95)
        self.r["drift_samples"] = len(lat)
        say(f"drift → restored by self-heal: p95 {self.r['drift_p95_s']:.2f}s (n={len(lat)})")

    async def commits(self, http: aiohttp.ClientSession) -> None:
        """Commits each changing one app, each announced by a webhook (which queues every
        app of the repository: one repository holds them all)."""
        assert self.ctl is not None
        url = f"http://127.0.0.1:{self.ctl.port}/api/webhook"
        lat = []
        for k, i in enumerate(spread(self.n, self.args.commits)):
            value = f"commit-{k}"
            files = app_file(i, self.args.objects, value)
            sha = await asyncio.to_thread(self.repo.commit, files, message=f"scale commit {k}")
            t0 = time.monotonic()
            body, headers = github_push(self.repo, sha)
            async with http.post(url, data=body, headers=headers) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"webhook answered {resp.status}: {await resp.text()}")
            try:
                took = await until_value(
                    self.env, self.dest(i), f"cm-{i}-1", value, t0, self.sample_timeout
                )
            except TimeoutError as e:
                await self.disturbed(f"commit sample {k}", e)
                continue
            if not self.env.monitor.disturbed(t0, t0 + took):
                lat.append(took)
            self.sample_rss()
        self.r["commit_p95_s"] = percentile(lat, 95)
        self.r["commit_samples"] = len(lat)
        say(f"commit → applied: p95 {self.r['commit_p95_s']:.2f}s (n={len(lat)})")

    async def disturbed(self, what: str, e: Exception) -> None:
        """A sample lost: fatal unless the shared API server was down meanwhile."""
        if not self.env.monitor.outages:
            raise e
        say(f"{what} left out (the API server was restarted by someone else): {e}")
        await self.env.monitor.wait_up(120)

    async def restart(self, http: aiohttp.ClientSession, watch: AppWatch) -> None:
        ctl, n = self.ctl, self.n
        assert ctl is not None
        await self.settle(http)
        ctl.stop()
        ctl.start()
        await ctl.wait_ready(http, timeout=300)
        done = 0.0
        while True:
            m = await ctl.metrics(http)
            done = metric_sum(m, "tether_applications_reconciled")
            if done >= n or time.monotonic() - ctl.started_at > RESTART_TIMEOUT:
                break
            await asyncio.sleep(0.5)
        self.r["restart_s"] = time.monotonic() - ctl.started_at
        # Reconciled is not the end of its writes: settle, then count.
        await asyncio.sleep(2.0)
        reqs = kube_requests(await ctl.metrics(http))
        self.r["restart_reconciled"] = int(done)
        beats = heartbeats(reqs, time.monotonic() - ctl.started_at)
        self.r["restart_heartbeats"] = beats
        self.r["restart_writes"] = writes_of(reqs) - beats
        self.r["restart_by_verb"] = {f"{v} {c}": int(x) for (v, c), x in sorted(reqs.items())}
        self.r["restart_synced"] = watch.synced()
        self.r["rss_peak_mb"] = max(self.peak_rss, self.sample_rss())
        say(f"restart: {int(done)}/{n} reconciled in {self.r['restart_s']:.1f}s; {counts(reqs)}")


def heartbeats(reqs: dict[tuple[str, str], float], seconds: float) -> int:
    """The presence Lease's renewals among ``reqs`` (PUT, or the POST creating it): one per
    RENEW_PERIOD per watched namespace (one here), the controller's heartbeat, not work."""
    allowed = int(seconds // RENEW_PERIOD) + 2
    puts = int(sum(v for (verb, code), v in reqs.items() if verb in ("PUT", "POST")))
    return min(puts, allowed)


def spread(n: int, k: int) -> list[int]:
    """``k`` distinct app indexes spread over ``0..n-1``."""
    k = min(k, n)
    return [(j * n) // k for j in range(k)]


async def until_value(
    env: Env, ns: str, name: str, value: str, t0: float, timeout: float = SAMPLE_TIMEOUT
) -> float:
    """Seconds from ``t0`` until ConfigMap ``name`` holds ``index: value`` (GET every 20 ms)."""
    while time.monotonic() - t0 < timeout:
        try:
            o = await env.kube.get("v1", "ConfigMap", name, ns)
            if ((o or {}).get("data") or {}).get("index") == value:
                return time.monotonic() - t0
        except KubeError:
            pass
        await asyncio.sleep(0.02)
    raise TimeoutError(f"ConfigMap {ns}/{name}: index={value!r} not live in {timeout:.0f}s")


async def run_size(args: argparse.Namespace, n: int) -> tuple[dict[str, Any], str, list[str]]:
    """One size's figures, and the kubeconfig and namespaces left being deleted."""
    async with bench_env("scale", keep_logs=args.keep_logs) as env:
        size = Size(env, args, n)
        say(f"=== {n} apps, run {env.run_id}")
        await size.setup()
        await size.floor()
        await size.create_apps()
        watch = AppWatch(env, size.home)
        await watch.start()
        size.ctl = env.controller([size.home], args.controller_args.split())
        try:
            async with aiohttp.ClientSession() as http:
                if await size.converge(http, watch) and not args.converge_only:
                    await size.steady(http)
                    await size.drift()
                    await size.commits(http)
                    await size.restart(http, watch)
        finally:
            await watch.close()
            size.r["api_outage_s"] = env.monitor.down_between(0, time.monotonic(), margin=0)
            names = list(env.namespaces)
    return size.r, env.kubeconfig, names


def kcm_cpu() -> float:
    """CPU seconds kube-controller-manager has used (its garbage collector watches every
    object; it shares the cores with the rest)."""
    return processes_cpu("kube-controller")  # its name as /proc holds it: 15 characters


def verdicts(r: dict[str, Any]) -> list[tuple[str, bool]]:
    """(line, met) of every target of one size."""
    n = r["apps"]
    out = []
    line, met = ratio_line(
        f"start → all {n} Synced", r.get("converge_s", math.inf), r["floor_s"], RATIO_TARGET
    )
    out.append((line, met))
    if "steady_requests" not in r:
        return out
    out.append(
        (
            f"steady state: {r['steady_requests']} requests in {r['steady_window_s']:.0f}s "
            f"(besides {r['steady_watch_reconnects']} watch reconnects and "
            f"{r['steady_heartbeats']} presence Lease renewals); target 0",
            r["steady_requests"] == 0,
        )
    )
    rt = rss_target(n)
    out.append(
        (
            f"RSS steady {r['rss_steady_mb']:.0f} MiB, peak {r.get('rss_peak_mb', math.nan):.0f} "
            f"MiB; target steady < {rt:.0f} MiB",
            r["rss_steady_mb"] < rt,
        )
    )
    out.append(
        (
            f"/metrics scrape {r['scrape_ms']:.0f} ms, {r['scrape_samples']} samples; "
            f"target < {SCRAPE_TARGET_MS:.0f} ms",
            r["scrape_ms"] < SCRAPE_TARGET_MS,
        )
    )
    if "restart_writes" in r:
        ok = r["restart_writes"] == 0 and r["restart_synced"] == n and r["restart_reconciled"] >= n
        out.append(
            (
                f"restart, nothing changed: {r['restart_reconciled']}/{n} reconciled in "
                f"{r['restart_s']:.1f}s, {r['restart_writes']} writes (besides "
                f"{r['restart_heartbeats']} Lease renewals), "
                f"{r['restart_synced']}/{n} Synced; target 0 writes, every app reconciled",
                ok,
            )
        )
    return out


def table(r: dict[str, Any]) -> tuple[str, bool]:
    lines = [f"# scale: {r['apps']} apps x {r['objects'] // r['apps']} objects"]
    ok = True
    for line, met in verdicts(r):
        verdict = "" if line.endswith("MET") else f"  {'MET' if met else 'NOT MET'}"
        lines.append(f"  {line}{verdict}")  # a ratio_line says it already
        ok = ok and met
    if "steady_requests" not in r and "rss_peak_mb" in r:
        lines.append(f"  RSS peak while syncing {r['rss_peak_mb']:.0f} MiB")
    if "converge_cpu_s" in r:
        lines.append(
            f"  CPU start → all Synced: controller {r['converge_cpu_s']:.1f} s, API server + "
            f"etcd {r['converge_cp_cpu_s']:.1f} s (floor: {r['floor_cp_cpu_s']:.1f} s); "
            f"cores {r.get('converge_busy', math.nan):.0%} busy; "
            f"{r.get('startup_reconciles', 0)} reconciles"
        )
    if "startup_requests" in r:
        lines.append(
            f"  requests start → all Synced: {r['startup_requests']} "
            f"({r['startup_writes']} writes): {r['startup_by_verb']}"
        )
    for key, what in (("drift_p95_s", "drift → self-healed"), ("commit_p95_s", "commit → live")):
        if key in r:
            lines.append(f"  {what}: p95 {r[key]:.2f} s")
    if r.get("api_outage_s"):
        lines.append(f"  NOTE: the API server was down {r['api_outage_s']:.1f}s during the run")
    return "\n".join(lines), ok


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in results if math.isfinite(r.get("converge_s", math.inf))]
    if not done:
        return
    x = [r["apps"] for r in done]
    fig, ax = plt.subplots(1, 3, figsize=(14, 4.2))
    ax[0].plot(x, [r["converge_s"] for r in done], "o-", label="tether: start → all Synced")
    ax[0].plot(x, [r["floor_s"] for r in done], "s--", label="floor: raw applies")
    ax[0].plot(x, [r["floor_s"] * RATIO_TARGET for r in done], ":", label="target 1.5x floor")
    ax[0].set_ylabel("seconds")
    ax[1].plot(x, [r.get("rss_steady_mb", math.nan) for r in done], "o-", label="RSS steady")
    ax[1].plot(x, [r.get("rss_peak_mb", math.nan) for r in done], "s--", label="RSS peak")
    ax[1].set_ylabel("MiB")
    ax[2].plot(x, [r["startup_requests"] for r in done], "o-", label="requests to all Synced")
    ax[2].plot(x, [r["startup_writes"] for r in done], "s--", label="of them writes")
    ax[2].plot(x, [r["objects"] for r in done], ":", label="objects")
    ax[2].set_ylabel("API requests")
    for a, title in zip(ax, ("time", "controller memory", "requests at start-up"), strict=True):
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel("applications (10 objects each)")
        a.set_title(title)
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    say(f"plot written to {path}")


async def run(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in args.apps.split(",") if s.strip()]
    results: list[dict[str, Any]] = []
    ok = True
    for n in sizes:
        r, kubeconfig, names = await run_size(args, n)
        results.append(r)
        text, met = table(r)
        print(text, flush=True)
        ok = ok and met
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2, default=str))
        if args.plot:
            plot(results, Path(args.plot))
        # The size's objects are deleted in the background (tens of thousands at the largest):
        # the figures are out first, then the next size (or the end) waits for the deletion.
        await wait_namespaces_gone(kubeconfig, names, timeout=args.cleanup_wait)
    print()
    for r in results:
        print(table(r)[0])
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--apps", default="100,1000", help="sizes, comma-separated")
    ap.add_argument("--objects", type=int, default=10, help="objects per app")
    ap.add_argument("--namespaces", type=int, default=20, help="destination namespaces")
    ap.add_argument("--window", type=float, default=30.0, help="steady-state seconds")
    ap.add_argument("--drift", type=int, default=20, help="drift samples per size")
    ap.add_argument("--commits", type=int, default=5, help="commit samples per size")
    ap.add_argument("--cleanup-wait", type=float, default=600.0, help="seconds, between sizes")
    ap.add_argument("--out", default="", help="write the results as JSON here")
    ap.add_argument(
        "--plot", default="", help="draw the curves into this PNG (docs/performance/scale.png)"
    )
    ap.add_argument("--keep-logs", action="store_true", help="keep the controller logs")
    ap.add_argument(
        "--controller-args", default="", help="extra flags of `tether controller` (experiments)"
    )
    ap.add_argument("--converge-only", action="store_true", help="stop after start → all Synced")
    ap.add_argument(
        "--cp-profile", default="", help="kube-apiserver's CPU profile of the start into DIR"
    )
    ap.add_argument(
        "--cp-profile-seconds", type=int, default=20, help="seconds of the start profiled"
    )
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
