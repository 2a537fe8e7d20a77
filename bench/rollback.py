"""Benchmark: time from `tether app rollback` to the restored value live.

`tether controller` as a subprocess, one auto-synced Application (polling every hour, no
webhook) with a repository Secret that allows writing. Each run: push a bad commit, have the
controller deploy it (webhook), then start `tether app rollback NAME` as a subprocess and
time until the good value is live again (GET every 20 ms), and until the command exits (it
waits for the sync and health). The rollback needs no webhook: tether pushed the commit
itself and hands its SHA to the controller with the sync request.

    .venv/bin/python bench/rollback.py [--runs 5]

Exits 1 when the median time to live exceeds the 5 s target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time

import aiohttp

from _common import (
    TETHER,
    Env,
    RepoHandle,
    application,
    bench_env,
    configmap,
    dump_all,
    github_push,
    is_synced,
    percentile,
    say,
    stats_line,
    wait_for,
)
from tether.api.application import API_VERSION

TARGET = 5.0
POLL_EVERY = 0.02


async def live_value(env: Env, ns: str) -> str:
    obj = await env.kube.get("v1", "ConfigMap", "settings", ns)
    return str(((obj or {}).get("data") or {}).get("value", ""))


def cli_env(env: Env) -> dict[str, str]:
    """The command's environment, with a bytecode cache of its own: an installed tether has
    its modules (and the Kubernetes client's thousand) compiled; a checkout run with
    PYTHONDONTWRITEBYTECODE would compile them on every start and time that instead."""
    out = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out["PYTHONPYCACHEPREFIX"] = str(env.tmp / "pycache")
    return out


async def warm_up(env: Env) -> float:
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        str(TETHER),
        "app",
        "rollback",
        "--help",
        stdout=asyncio.subprocess.DEVNULL,
        env=cli_env(env),
    )
    await proc.wait()
    return time.monotonic() - t0


async def one_run(
    env: Env, http: aiohttp.ClientSession, port: int, repo: RepoHandle, home: str, dest: str, i: int
) -> tuple[float, float]:
    good = await live_value(env, dest)
    bad = await asyncio.to_thread(
        repo.commit,
        {"app/objects.yaml": dump_all([configmap("settings", {"value": f"bad-{i}"})])},
        message=f"bad {i}",
    )
    body, headers = github_push(repo, bad)
    async with http.post(f"http://127.0.0.1:{port}/api/webhook", data=body, headers=headers):
        pass

    async def deployed() -> bool:
        app = await env.kube.get(API_VERSION, "Application", "shop", home)
        return is_synced(app, bad) and await live_value(env, dest) == f"bad-{i}"

    await wait_for(deployed, timeout=60, interval=0.05, what=f"bad commit {i} deployed")
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        str(TETHER),
        "--kubeconfig",
        env.kubeconfig,
        "app",
        "rollback",
        "shop",
        "-n",
        home,
        "--author",
        "Bench <bench@example.com>",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=cli_env(env),
    )
    live_at = 0.0
    while proc.returncode is None or not live_at:
        if not live_at and await live_value(env, dest) == good:
            live_at = time.monotonic() - t0
        if proc.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), POLL_EVERY)
        else:
            await asyncio.sleep(POLL_EVERY)
        if time.monotonic() - t0 > 120:
            raise TimeoutError(f"run {i}: rollback not live within 120s")
    exited = time.monotonic() - t0
    out = (await proc.communicate())[0].decode() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"run {i}: tether app rollback exited {proc.returncode}:\n{out}")
    return live_at, exited


async def run(args: argparse.Namespace) -> int:
    async with bench_env("rollback", keep_logs=args.keep_logs) as env:
        home = await env.home(f"brb-{env.run_id}")
        dest = await env.namespace(f"brb-{env.run_id}-dest")
        repo = env.git.create_repo("shop")
        repo.commit(
            {"app/objects.yaml": dump_all([configmap("settings", {"value": "good"})])},
            message="good",
        )
        await env.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "push",
                    "namespace": home,
                    "labels": {"tether.dev/secret-type": "repository-write"},
                },
                "stringData": {"url": repo.http_url, "username": "git", "password": env.git.token},
            }
        )
        app = application("shop", home, repo_url=repo.http_url, path="app", dest_namespace=dest)
        app["metadata"]["annotations"] = {"tether.dev/refresh-interval": "1h"}
        await env.create_apps([app])
        ctl = env.controller([home])
        ctl.start()
        lives: list[float] = []
        exits: list[float] = []
        async with aiohttp.ClientSession() as http:
            await ctl.wait_ready(http)

            async def first() -> bool:
                return is_synced(await env.kube.get(API_VERSION, "Application", "shop", home))

            await wait_for(first, timeout=120, interval=0.1, what="initial sync")
            say(f"controller pid {ctl.pid} ready; app Synced")
            say(f"bytecode cache for the command warmed in {await warm_up(env):.1f}s")
            for i in range(1, args.runs + 1):
                live, exited = await one_run(env, http, ctl.port, repo, home, dest, i)
                say(f"run {i}: restored value live after {live:.2f}s, command done {exited:.2f}s")
                lives.append(live)
                exits.append(exited)
        median = percentile(lives, 50)
        print()
        print(f"# tether app rollback → restored value live, run {env.run_id}, {args.runs} runs")
        print(f"to value live:       {stats_line(lives)}")
        print(f"to command finished: {stats_line(exits)}  (includes the wait for health)")
        verdict = "MET" if median < TARGET else "MISSED"
        print(f"median {median:.2f}s, target < {TARGET:.0f}s: {verdict}")
        return 0 if median < TARGET else 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--keep-logs", action="store_true")
    sys.exit(asyncio.run(run(p.parse_args())))


if __name__ == "__main__":
    main()
