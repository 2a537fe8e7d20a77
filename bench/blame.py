"""Benchmark: ``tether blame`` of an app whose branch has 50 commits.

One repository holds a Kustomize app (``web/``: a base Deployment and a prod overlay with a
replicas patch) and another app (``other/``). Of 50 commits, one in ten changes the web app
(alternately its image in the base and its replicas in the overlay patch); the rest change
only ``other/``. The app is synced (in this process, through the engine), then
``tether blame APP deployment/web -o json`` runs as a real command. Measured: its wall
time, and how many renders ran versus how many the render cache answered (commits that did
not touch ``web/`` have the same render inputs, so they cost no render). For scale, one
``tether render`` of the same path (one kustomize build, process start included), and the
same blame in this process with the render cache on and then off (every commit rendered).

    .venv/bin/python bench/blame.py [--commits 50] [--every 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time

import yaml

from _common import TETHER, bench_env, say
from tether.api.application import API_VERSION
from tether.blame.run import blame
from tether.blame.target import parse_target
from tether.engine import Engine
from tether.source import GitCache

OTHER = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n"


def deployment(image: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": image}]},
                },
            },
        }
    )


def patch(replicas: int) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": replicas},
        }
    )


async def main(commits: int, every: int) -> None:
    async with bench_env("blame") as env:
        home = await env.home(f"bench-blame-{env.run_id}")
        dest = await env.namespace(f"bench-blame-dest-{env.run_id}")
        repo = env.git.create_repo(f"blame-{env.run_id}")
        repo.commit(
            {
                "web/base/kustomization.yaml": "resources: [web.yaml]\n",
                "web/base/web.yaml": deployment("nginx:1.0"),
                "web/prod/kustomization.yaml": yaml.safe_dump(
                    {"resources": ["../base"], "patches": [{"path": "replicas.yaml"}]}
                ),
                "web/prod/replicas.yaml": patch(0),
                "other/cm.yaml": OTHER,
            },
            message="first",
        )
        web_commits = 0
        for i in range(1, commits):
            if i % every == 0:
                web_commits += 1
                if web_commits % 2:
                    repo.commit(
                        {"web/base/web.yaml": deployment(f"nginx:1.{i}")},
                        message=f"web: image 1.{i}",
                    )
                else:
                    repo.commit(
                        {"web/prod/replicas.yaml": patch(web_commits)},
                        message=f"web: {web_commits} replicas",
                    )
            else:
                repo.commit(
                    {"other/cm.yaml": OTHER + f"data: {{n: '{i}'}}\n"},
                    message=f"other: {i}",
                )
        say(f"{commits} commits, {web_commits} of them touch web/")
        name = "web"
        await env.kube.apply(
            {
                "apiVersion": API_VERSION,
                "kind": "Application",
                "metadata": {"name": name, "namespace": home},
                "spec": {
                    "source": {
                        "repoURL": repo.http_url,
                        "targetRevision": "main",
                        "path": "web/prod",
                    },
                    "destination": {"namespace": dest},
                },
            }
        )
        env.apps.append((home, name))
        engine = Engine(env.kube, GitCache(env.tmp / "sync-cache"))
        result = await engine.sync(await engine.get_app(name, home))
        assert result.ok, result.message
        say(f"synced to {result.revision[:10]}")

        started = time.monotonic()
        proc = subprocess.run(
            [
                str(TETHER),
                "--kubeconfig",
                env.kubeconfig,
                "-n",
                home,
                "blame",
                name,
                "deployment/web",
                "--depth",
                str(commits),
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        blame_s = time.monotonic() - started
        report = json.loads(proc.stdout)

        started = time.monotonic()
        subprocess.run(
            [str(TETHER), "render", "--repo", f"file://{repo.path}", "--path", "web/prod"],
            capture_output=True,
            text=True,
            check=True,
        )
        render_s = time.monotonic() - started
        say(
            f"tether blame {name} deployment/web --depth {commits}: {blame_s:.2f} s wall, "
            f"{report['sources'][0]['history']} commits looked at, {report['renders']} renders, "
            f"{report['rendersReused']} answered by the render cache"
        )
        say(f"one tether render of web/prod (process start included): {render_s:.2f} s")
        app = await engine.get_app(name, home)
        target = parse_target("deployment/web")
        for cache in (True, False):
            started = time.monotonic()
            r = await blame(env.kube, engine.desired, app, target, commits, render_cache=cache)
            say(
                f"in process, render cache {'on' if cache else 'off'}: "
                f"{time.monotonic() - started:.2f} s, {r.renders} renders"
            )
        for f in report["fields"]:
            if f["field"] in ("spec.replicas", "spec.template.spec.containers[name=web].image"):
                say(
                    f"  {f['field']} = {f['value']}: "
                    f"{f['commit']['sha'][:10]} {f['commit']['message']}"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=50)
    parser.add_argument("--every", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.commits, args.every))
