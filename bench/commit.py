"""Benchmark: commit-to-applied latency of the running controller, by webhook and by polling.

`tether controller` as a subprocess, two auto-synced Applications on two repositories:
  (a) webhook: 20 times, push a commit changing a ConfigMap value, at once POST a signed
      GitHub push webhook to the controller, and time until the new value is live
      (GET every 20 ms). The app polls only every hour, so only the webhook can explain it.
  (b) polling: the other app has `tether.dev/refresh-interval: 5s` and no webhook; 5 commits,
      each timed from the push until the value is live.

    .venv/bin/python bench/commit.py [--webhook-commits 20] [--poll-commits 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass, field

import aiohttp

from _common import (
    Env,
    RepoHandle,
    application,
    bench_env,
    configmap,
    dump_all,
    github_push,
    is_synced,
    kube_requests,
    ms,
    percentile,
    say,
    stats_line,
    wait_for,
)
from tether.api.application import API_VERSION
from tether.errors import KubeError

WEBHOOK_TARGET = 2.0
POLL_INTERVAL = 5.0
APPLY_TIMEOUT = 30.0
POLL_EVERY = 0.02


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)
    posts: list[float] = field(default_factory=list)
    commits: list[float] = field(default_factory=list)
    disturbed: int = 0


def objects(value: str) -> str:
    """The app: the ConfigMap `settings` whose value changes, and four that never do."""
    return dump_all(
        [configmap("settings", {"value": value})]
        + [configmap(f"static-{j}", {"index": str(j), "payload": "x" * 200}) for j in range(4)]
    )


async def live_value(env: Env, ns: str) -> str:
    o = await env.kube.get("v1", "ConfigMap", "settings", ns)
    return str(((o or {}).get("data") or {}).get("value", ""))


async def until_live(env: Env, ns: str, value: str, t0: float) -> tuple[float, bool]:
    """(seconds from ``t0`` until ConfigMap `settings` holds ``value``, disturbed).

    Disturbed: the API server was down meanwhile (the shared control plane was restarted by
    someone else), so the number measures the outage too and is left out.
    """
    deadline = t0 + APPLY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if await live_value(env, ns) == value:
                t = time.monotonic()
                return t - t0, env.monitor.disturbed(t0, t)
        except KubeError:
            deadline = max(deadline, time.monotonic() + APPLY_TIMEOUT)  # wait out the outage
            if time.monotonic() - t0 > 5 * APPLY_TIMEOUT:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(POLL_EVERY)
    if env.monitor.disturbed(t0, time.monotonic()):
        return time.monotonic() - t0, True
    raise TimeoutError(f"{value!r} not live in {ns} within {APPLY_TIMEOUT:.0f}s")


async def run(args: argparse.Namespace) -> int:
    async with bench_env("commit", keep_logs=args.keep_logs) as env:
        home = await env.home(f"bcm-{env.run_id}")
        dest_hook = await env.namespace(f"bcm-{env.run_id}-hook")
        dest_poll = await env.namespace(f"bcm-{env.run_id}-poll")
        say(f"run {env.run_id}: Applications in {home}")
        hook_repo = env.git.create_repo("hook")
        poll_repo = env.git.create_repo("poll")
        hook_repo.commit({"app/objects.yaml": objects("v0")}, message="initial")
        poll_repo.commit({"app/objects.yaml": objects("v0")}, message="initial")
        await env.create_apps(
            [
                application(
                    "hook",
                    home,
                    repo_url=hook_repo.http_url,
                    path="app",
                    dest_namespace=dest_hook,
                    refresh_interval="1h",
                ),
                application(
                    "poll",
                    home,
                    repo_url=poll_repo.http_url,
                    path="app",
                    dest_namespace=dest_poll,
                    refresh_interval=f"{POLL_INTERVAL:.0f}s",
                ),
            ]
        )
        ctl = env.controller([home])
        ctl.start()
        async with aiohttp.ClientSession() as http:
            ready = await ctl.wait_ready(http)
            say(f"controller pid {ctl.pid} ready in {ready:.2f}s (port {ctl.port})")

            async def both_synced() -> bool:
                ctl.check_alive()
                apps = [
                    await env.kube.get(API_VERSION, "Application", n, home)
                    for n in ("hook", "poll")
                ]
                return all(is_synced(a) for a in apps)

            await wait_for(both_synced, timeout=120, interval=0.1, what="initial sync")
            say("both apps Synced")
            await asyncio.sleep(1.0)
            before = kube_requests(await ctl.metrics(http))
            hook = await webhook_part(env, http, ctl.port, hook_repo, dest_hook, args)
            poll = await poll_part(env, poll_repo, dest_poll, args)
            after = kube_requests(await ctl.metrics(http))
            rss, hwm = ctl.rss_mb()
        print()
        print(f"# commit-to-applied, run {env.run_id}")
        print(f"making a commit and pushing it (git, not timed below): {stats_line(hook.commits)}")
        print(f"webhook POST answered in: {stats_line(hook.posts)}")
        p95 = percentile(hook.latencies, 95)
        print(
            f"(a) webhook: push → POST → value live: {stats_line(hook.latencies)}  "
            f"target p95 < {ms(WEBHOOK_TARGET)}: {'MET' if p95 < WEBHOOK_TARGET else 'MISSED'}"
        )
        print(
            f"(b) polling every {POLL_INTERVAL:.0f}s, no webhook: push → value live: "
            + ", ".join(f"{x:.2f}s" for x in poll.latencies)
        )
        print(
            f"    p50 {percentile(poll.latencies, 50):.2f}s, max {max(poll.latencies):.2f}s  "
            f"(expected: up to the {POLL_INTERVAL:.0f}s interval plus the sync time)"
        )
        if hook.disturbed or poll.disturbed:
            print(
                f"left out (the API server was down meanwhile): {hook.disturbed} webhook and "
                f"{poll.disturbed} polled commit(s); replaced by further commits"
            )
        delta = {
            f"{v} {c}": int(n - before.get((v, c), 0))
            for (v, c), n in sorted(after.items())
            if n - before.get((v, c), 0)
        }
        total = len(hook.commits) + len(poll.latencies) + poll.disturbed
        print(f"controller API requests for the {total} commits: {delta}")
        print(f"controller RSS: {rss:.0f} MiB (peak {hwm:.0f} MiB)")
        return 0


async def webhook_part(
    env: Env,
    http: aiohttp.ClientSession,
    port: int,
    repo: RepoHandle,
    ns: str,
    args: argparse.Namespace,
) -> Samples:
    out = Samples()
    url = f"http://127.0.0.1:{port}/api/webhook"
    for i in range(2 * args.webhook_commits + 5):
        if len(out.latencies) >= args.webhook_commits:
            break
        value = f"hook-{i + 1}"
        tc = time.monotonic()
        sha = await asyncio.to_thread(
            repo.commit, {"app/objects.yaml": objects(value)}, message=f"hook {i + 1}"
        )
        t0 = time.monotonic()
        out.commits.append(t0 - tc)
        body, headers = github_push(repo, sha)
        async with http.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
        ) as resp:
            answer = await resp.json()
        out.posts.append(time.monotonic() - t0)
        if resp.status != 200 or answer.get("apps") != 1:
            raise RuntimeError(f"webhook answered {resp.status}: {answer}")
        latency, disturbed = await until_live(env, ns, value, t0)
        if disturbed:
            out.disturbed += 1
            say(f"webhook commit {i + 1}: {ms(latency)} while the API server was down: left out")
        else:
            out.latencies.append(latency)
            if len(out.latencies) % 5 == 0:
                say(f"webhook commit {len(out.latencies)}/{args.webhook_commits}: {ms(latency)}")
        await asyncio.sleep(0.3)
    return out


async def poll_part(env: Env, repo: RepoHandle, ns: str, args: argparse.Namespace) -> Samples:
    rng = random.Random(7)  # commits land at varied points of the poll cycle, reproducibly
    out = Samples()
    for i in range(2 * args.poll_commits + 3):
        if len(out.latencies) >= args.poll_commits:
            break
        await asyncio.sleep(rng.uniform(0, POLL_INTERVAL))
        value = f"poll-{i + 1}"
        await asyncio.to_thread(
            repo.commit, {"app/objects.yaml": objects(value)}, message=f"poll {i + 1}"
        )
        t0 = time.monotonic()
        latency, disturbed = await until_live(env, ns, value, t0)
        if disturbed:
            out.disturbed += 1
            say(f"polled commit {i + 1}: {latency:.2f}s while the API server was down: left out")
        else:
            out.latencies.append(latency)
            say(f"polled commit {len(out.latencies)}/{args.poll_commits}: {latency:.2f}s")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--webhook-commits", type=int, default=20)
    ap.add_argument("--poll-commits", type=int, default=5)
    ap.add_argument("--keep-logs", action="store_true", help="keep the controller log")
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
