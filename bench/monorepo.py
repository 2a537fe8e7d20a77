"""Benchmark: a monorepo of 500 Kustomize apps, one commit touching one app, with the render
cache on and off.

One repository holds ``base/`` (a ConfigMap and a Deployment) and ``apps/app-NNN/`` (a
kustomization per app on top of the base). 500 auto-synced Applications, one per app, are
run by a real `tether controller` on the local control plane. Once all are Synced, a commit
changes ONE app's kustomization and the signed GitHub push webhook is delivered; measured:

  - renders done for that commit: ``tether_renders_total`` on the controller's /metrics,
    before and after (want 1 with the cache: the other 499 apps read the same inputs);
  - the time from the push until every app has been compared at the new commit (its
    ``status.sync.revision``) and the touched app is Synced again.

Then the same with a second controller started with ``--render-cache-size 0``: every app
renders again (want 500). Both results are printed with their ratio.

    .venv/bin/python bench/monorepo.py [--apps 500] [--workers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass

import aiohttp

from _common import (
    Env,
    RepoHandle,
    Sample,
    bench_env,
    github_push,
    is_synced,
    metric_sum,
    say,
    wait_for,
)
from tether.api.application import API_VERSION
from tether.model import Obj

SYNC_TIMEOUT = 1800.0
COMMIT_TIMEOUT = 900.0

BASE = {
    "base/kustomization.yaml": "resources: [configmap.yaml, deployment.yaml]\n",
    "base/configmap.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  greeting: hello
""",
    # No replicas: Healthy at once, no Pods for the node simulator to run.
    "base/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 0
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.example/web:1.0
""",
}


def app_kustomization(i: int, version: str = "1") -> str:
    return f"""\
resources: [../../base]
namePrefix: app-{i:03d}-
labels:
  - pairs: {{bench-app: app-{i:03d}}}
patches:
  - target: {{kind: ConfigMap, name: settings}}
    patch: |-
      - op: add
        path: /data/version
        value: "{version}"
"""


def repository_files(n: int) -> dict[str, str]:
    files = dict(BASE)
    for i in range(n):
        files[f"apps/app-{i:03d}/kustomization.yaml"] = app_kustomization(i)
    return files


def application(name: str, home: str, repo_url: str, path: str, dest: str) -> Obj:
    """Auto-synced; polled hourly, so only the webhook brings the commit in."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Application",
        "metadata": {
            "name": name,
            "namespace": home,
            "annotations": {"tether.dev/refresh-interval": "1h"},
        },
        "spec": {
            "source": {"repoURL": repo_url, "targetRevision": "HEAD", "path": path},
            "destination": {"namespace": dest},
            "syncPolicy": {"automated": {"prune": False}},
        },
    }


@dataclass
class Result:
    label: str
    initial: float
    """Seconds from the controller's start until every app was Synced."""
    renders: float | None
    """Renders done for the one-app commit (None: the controller exports no count)."""
    hits: float | None
    elapsed: float
    """Seconds from the push until every app was compared at the new commit."""


async def revisions(env: Env, home: str) -> list[Obj]:
    items, _ = await env.kube.list(API_VERSION, "Application", home)
    return items


async def run_mode(
    env: Env, repo: RepoHandle, label: str, n: int, extra: list[str], workers: int
) -> Result:
    """One controller over n fresh Applications of ``repo``; a commit touching app-000."""
    tag = label.split()[0]
    home = await env.home(f"mr-{env.run_id}-{tag}")
    dest = await env.namespace(f"mr-{env.run_id}-{tag}-objects")
    sha0 = repo.head()
    await env.create_apps(
        [
            application(f"app-{i:03d}", home, repo.http_url, f"apps/app-{i:03d}", dest)
            for i in range(n)
        ]
    )
    say(f"[{label}] {n} Applications created in {home}; starting the controller")
    ctl = env.controller([home], ["--workers", str(workers), *extra])
    ctl.start()
    async with aiohttp.ClientSession() as http:
        t_start = time.monotonic()
        await ctl.wait_ready(http)

        async def all_synced() -> bool:
            ctl.check_alive()
            items = await revisions(env, home)
            done = sum(is_synced(o, sha0) for o in items)
            return done == n

        await wait_for(all_synced, timeout=SYNC_TIMEOUT, interval=1.0, what="all apps synced")
        initial = time.monotonic() - t_start
        say(f"[{label}] all {n} apps Synced in {initial:.1f}s")

        before = await ctl.metrics(http)
        sha1 = repo.commit(
            {"apps/app-000/kustomization.yaml": app_kustomization(0, "2")},
            message="app-000: version 2",
        )
        t0 = time.monotonic()
        body, headers = github_push(repo, sha1)
        async with http.post(
            f"http://127.0.0.1:{ctl.port}/api/webhook", data=body, headers=headers
        ) as resp:
            answer = await resp.text()
            if resp.status != 200:
                raise RuntimeError(f"webhook answered {resp.status}: {answer}")

        async def all_compared() -> bool:
            ctl.check_alive()
            items = await revisions(env, home)
            at_new = sum(
                ((o.get("status") or {}).get("sync") or {}).get("revision") == sha1 for o in items
            )
            touched = next(o for o in items if o["metadata"]["name"] == "app-000")
            return at_new == n and is_synced(touched, sha1)

        await wait_for(all_compared, timeout=COMMIT_TIMEOUT, interval=0.05, what="all compared")
        elapsed = time.monotonic() - t0
        after = await ctl.metrics(http)
    ctl.stop()
    renders = _delta(before, after, "tether_renders_total")
    hits = _delta(before, after, "tether_render_cache_hits_total")
    shown = "n/a" if renders is None else f"{renders:.0f}"
    say(f"[{label}] commit {sha1[:10]}: {shown} render(s); all compared in {elapsed:.2f}s")
    return Result(label, initial, renders, hits, elapsed)


def _delta(before: dict[Sample, float], after: dict[Sample, float], name: str) -> float | None:
    """How much counter ``name`` grew; None when the controller does not export it."""
    if not any(k[0] == name for k in after):
        return None
    return metric_sum(after, name) - metric_sum(before, name)


def report(n: int, on: Result, off: Result) -> None:
    def renders(r: Result) -> str:
        return "n/a (no tether_renders_total)" if r.renders is None else f"{r.renders:.0f}"

    print()
    print(f"# monorepo: {n} Kustomize apps in one repository, one commit touching one app")
    print(f"{'':<22}{'renders':>10}{'push -> all compared':>24}{'initial sync':>16}")
    for r, want in ((on, "want 1"), (off, f"want {n}")):
        print(f"{r.label:<22}{renders(r):>10}{r.elapsed:>22.2f} s{r.initial:>14.1f} s   ({want})")
    if on.renders is not None and off.renders is not None and on.renders:
        print(f"renders, cache off / on: {off.renders / on.renders:.0f}x")
    if on.elapsed > 0:
        print(f"time, cache off / on:    {off.elapsed / on.elapsed:.2f}x")


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--apps", type=int, default=500, help="Kustomize apps (default 500)")
    ap.add_argument("--workers", type=int, default=4, help="the controller's --workers")
    ap.add_argument("--keep-logs", action="store_true", help="keep the controllers' logs")
    args = ap.parse_args()
    n = args.apps
    async with bench_env("monorepo", keep_logs=args.keep_logs) as env:
        repo = env.git.create_repo("monorepo")
        repo.commit(repository_files(n), message=f"{n} kustomize apps")
        say(f"pushed {n} apps to {repo.http_url} (run {env.run_id})")
        on = await run_mode(env, repo, "on (cache on)", n, [], args.workers)
        off = await run_mode(
            env, repo, "off (cache off)", n, ["--render-cache-size", "0"], args.workers
        )
        report(n, on, off)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
