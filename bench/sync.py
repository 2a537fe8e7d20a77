"""Benchmark: initial sync of 100 Applications x 10 objects against `kubectl apply --server-side`.

Same control plane, same run, same objects (each tool in its own namespaces):
  1. kubectl apply --server-side -f <dir of all rendered manifests>        (timed)
  2. tether: sync of all 100 Applications from one git repository         (timed)
  3. tether: second pass with nothing changed: API writes (want 0) and the time
     for a full diff of all objects.

With ``--timeline``, instead: the timeline of one sync with hooks and waves (the sync-waves
example of tests/fixtures/examples: a PreSync hook, waves -1 to 3, a Sync hook in wave 3),
measured from the API server's watch, ``--runs`` times (the median of each step is printed
last); the sync runs in this process (``Engine.sync``), or with ``--controller`` in a
``tether controller`` (an automated sync of a new Application). docs/sync.md quotes both.

    .venv/bin/python bench/sync.py [--apps 100] [--objects 10]
    .venv/bin/python bench/sync.py --timeline [--runs 3] [--controller]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from statistics import median
from typing import Any

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devcluster.cluster import Cluster  # noqa: E402
from devcluster.gitserver import GitServer  # noqa: E402

from _common import Env, application, bench_env  # noqa: E402
from tether.api.application import API_VERSION, crd_manifests, new_application  # noqa: E402
from tether.engine import Engine  # noqa: E402
from tether.kube import KubeClient  # noqa: E402
from tether.source import GitCache  # noqa: E402
from timeline import Timeline, deployment_available, job_complete  # noqa: E402

APPS_NS = "tether-system"


def app_objects(i: int, n: int) -> list[dict[str, object]]:
    """n objects: a ServiceAccount, a Service, and ConfigMaps."""
    objs: list[dict[str, object]] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": f"sa-{i}"}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"svc-{i}"},
            "spec": {
                "selector": {"app": f"a{i}"},
                "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
            },
        },
    ]
    for j in range(n - len(objs)):
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"cm-{i}-{j}"},
                "data": {"index": str(j), "payload": "x" * 200},
            }
        )
    return objs[:n]


def with_namespace(objs: list[dict[str, object]], ns: str) -> list[dict[str, object]]:
    out = []
    for o in objs:
        meta = dict(o["metadata"])  # type: ignore[arg-type]
        meta["namespace"] = ns
        out.append({**o, "metadata": meta})
    return out


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--apps", type=int, default=100)
    ap.add_argument("--objects", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=10, help="apps synced at once")
    ap.add_argument(
        "--timeline", action="store_true", help="time the steps of a sync with hooks and waves"
    )
    ap.add_argument("--runs", type=int, default=3, help="syncs timed with --timeline")
    ap.add_argument(
        "--controller",
        action="store_true",
        help="with --timeline: a tether controller runs the syncs (automated sync of a new app)",
    )
    args = ap.parse_args()
    if args.timeline:
        return await timelines(args.runs, args.controller)
    cluster = Cluster()
    cluster.up()
    kubeconfig = str(cluster.p.kubeconfig)
    kubectl = str(REPO / ".venv" / "bin" / "kubectl")
    run_id = uuid.uuid4().hex[:5]
    tmp = Path(tempfile.mkdtemp(prefix="tether-bench-"))
    git = GitServer(tmp / "git")
    git.start()
    kube = await KubeClient.connect(kubeconfig)
    try:
        for crd in crd_manifests():
            await kube.apply(crd)
        await kube.wait_for_resource(API_VERSION, "Application")
        await kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APPS_NS}})
        total = args.apps * args.objects
        print(f"# {args.apps} apps x {args.objects} objects = {total} objects; run {run_id}")

        # The repository: one directory per app.
        files = {}
        for i in range(args.apps):
            files[f"apps/app-{i:03d}/objects.yaml"] = yaml.safe_dump_all(
                app_objects(i, args.objects)
            )
        repo = git.create_repo("bench")
        repo.commit(files, message="bench apps")

        # Namespaces for both tools, created up front and not timed.
        ns_k = [f"bk-{run_id}-{i:03d}" for i in range(args.apps)]
        ns_t = [f"bt-{run_id}-{i:03d}" for i in range(args.apps)]
        await asyncio.gather(
            *(
                kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}})
                for n in ns_k + ns_t
            )
        )

        # 1. kubectl
        kdir = tmp / "kubectl"
        kdir.mkdir()
        for i in range(args.apps):
            (kdir / f"app-{i:03d}.yaml").write_text(
                yaml.safe_dump_all(with_namespace(app_objects(i, args.objects), ns_k[i]))
            )
        t0 = time.perf_counter()
        r = subprocess.run(
            [
                kubectl,
                "--kubeconfig",
                kubeconfig,
                "apply",
                "--server-side",
                "--field-manager",
                "bench-kubectl",
                "-f",
                str(kdir),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        t_kubectl = time.perf_counter() - t0
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return 1
        print(
            f"kubectl apply --server-side: {t_kubectl:.2f}s ({len(r.stdout.splitlines())} objects)"
        )

        # 2. tether: Applications created (not timed), then all synced.
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": f"bench-creds-{run_id}",
                "namespace": APPS_NS,
                "labels": {"tether.dev/secret-type": "repository"},
            },
            "stringData": {"url": repo.http_url, "username": "git", "password": git.token},
        }
        await kube.apply(secret)
        names = [f"bench-{run_id}-{i:03d}" for i in range(args.apps)]
        await asyncio.gather(
            *(
                kube.apply(
                    new_application(
                        names[i],
                        APPS_NS,
                        repo_url=repo.http_url,
                        path=f"apps/app-{i:03d}",
                        dest_namespace=ns_t[i],
                    )
                )
                for i in range(args.apps)
            )
        )
        engine = Engine(kube, GitCache(tmp / "cache", refs_ttl=5.0), credentials_ttl=5.0)
        sem = asyncio.Semaphore(args.concurrency)

        async def sync_one(name: str, write_status: bool = True) -> bool:
            async with sem:
                a = await engine.get_app(name, APPS_NS)
                res = await engine.sync(a, write_status=write_status)
                if not res.ok:
                    print(f"{name}: {res.message}", file=sys.stderr)
                return res.ok

        t0 = time.perf_counter()
        oks = await asyncio.gather(*(sync_one(n) for n in names))
        t_tether = time.perf_counter() - t0
        if not all(oks):
            return 1
        print(f"tether sync of {args.apps} apps: {t_tether:.2f}s")
        print(f"ratio tether/kubectl: {t_tether / t_kubectl:.2f}x (target <= 1.0x, aim 0.5x)")

        # 3. Second pass, nothing changed.
        before = dict(kube.requests)
        writes_before = kube.write_requests
        t0 = time.perf_counter()
        apps = [await engine.get_app(n, APPS_NS) for n in names]
        t_get = time.perf_counter() - t0
        t0 = time.perf_counter()
        cmps = await asyncio.gather(*(engine.compare(a) for a in apps))
        t_diff = time.perf_counter() - t0
        out_of_sync = [c.app.name for c in cmps if c.sync_status.value != "Synced"]
        t0 = time.perf_counter()
        await asyncio.gather(*(sync_one(n, write_status=False) for n in names))
        t_resync = time.perf_counter() - t0
        writes = kube.write_requests - writes_before
        reqs = {
            f"{v} {c}": n - before.get((v, c), 0)
            for (v, c), n in kube.requests.items()
            if n - before.get((v, c), 0)
        }
        print(
            f"second pass: full diff of {total} objects: {t_diff:.2f}s (target < 3s); "
            f"out of sync: {len(out_of_sync)}"
        )
        print(
            f"second pass: sync of all apps with nothing changed: {t_resync:.2f}s; "
            f"API write requests: {writes} (want 0)"
        )
        print(f"second pass requests by verb and code: {reqs} (reading the apps: {t_get:.2f}s)")

        # Clean up (not timed).
        await asyncio.gather(*(kube.delete(API_VERSION, "Application", n, APPS_NS) for n in names))
        await asyncio.gather(
            *(kube.delete("v1", "Namespace", n, propagation="Background") for n in ns_k + ns_t)
        )
        return 0 if writes == 0 and not out_of_sync else 1
    finally:
        await kube.close()
        git.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- --timeline ----------------------------------------------------------------------------

EXAMPLE = REPO / "tests" / "fixtures" / "examples" / "sync-waves"
Step = tuple[str, float, float]
"""What, when it began and when it was done (seconds from the start of the sync)."""


WATCHED = (("batch/v1", "Job"), ("apps/v1", "Deployment"), ("v1", "ConfigMap"), ("v1", "Service"))


async def steps_of(tl: Timeline, start: float, end: float) -> list[Step]:
    """The steps of the sync-waves example's sync, from what ``tl`` saw."""
    up = await tl.created("Job", "maintenance-page-up-", prefix=True)
    up_done = await tl.reached("Job", up.name, job_complete)
    config = await tl.created("ConfigMap", "backend-config")
    backend = await tl.created("Deployment", "backend")
    backend_up = await tl.reached("Deployment", "backend", deployment_available)
    migrate = await tl.created("Job", "upgrade-sql-schema")
    migrated = await tl.reached("Job", "upgrade-sql-schema", job_complete)
    frontend = await tl.created("Deployment", "frontend")
    frontend_up = await tl.reached("Deployment", "frontend", deployment_available)
    down = await tl.created("Job", "maintenance-page-down-", prefix=True)
    down_done = await tl.reached("Job", down.name, job_complete)
    return [
        ("sync starts (render, compare)", start, up.at),
        ("PreSync: hook Job maintenance-page-up created -> Complete", up.at, up_done.at),
        ("  engine sees it done, starts wave -1", up_done.at, config.at),
        ("wave -1: ConfigMap backend-config applied", config.at, config.at),
        ("wave 0: Deployment backend created -> 2/2 available", backend.at, backend_up.at),
        ("  engine sees wave 0 healthy, starts wave 1", backend_up.at, migrate.at),
        ("wave 1: Job upgrade-sql-schema created -> Complete", migrate.at, migrated.at),
        ("  engine sees wave 1 healthy, starts wave 2", migrated.at, frontend.at),
        ("wave 2: Deployment frontend created -> 2/2 available", frontend.at, frontend_up.at),
        ("  engine sees wave 2 healthy, starts wave 3", frontend_up.at, down.at),
        ("wave 3: Sync hook Job maintenance-page-down created -> Complete", down.at, down_done.at),
        ("  engine sees the hook done, ends the operation", down_done.at, end),
        ("whole sync", start, end),
    ]


async def timed_sync(env: Env, engine: Engine, url: str, n: int) -> list[Step]:
    """Syncs the sync-waves example in this process (``Engine.sync``, as ``tether app sync``
    does with no controller running) into a fresh namespace."""
    ns = await env.namespace(f"bw-{env.run_id}-{n}")
    name = f"bench-waves-{env.run_id}-{n}"
    await env.create_apps(
        [new_application(name, APPS_NS, repo_url=url, path="sync-waves", dest_namespace=ns)]
    )
    app = await engine.get_app(name, APPS_NS)
    tl = await Timeline(env.kube, ns).start(*WATCHED)
    try:
        start = tl.now()
        res = await engine.sync(app)
        end = tl.now()
        if not res.ok:
            raise RuntimeError(f"the sync failed: {res.message}")
        return await steps_of(tl, start, end)
    finally:
        await tl.stop()


def ended(obj: dict[str, Any]) -> bool:
    phase = ((obj.get("status") or {}).get("operationState") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Error")


async def timed_controller_sync(env: Env, home: str, url: str, n: int) -> list[Step]:
    """The same sync run by a ``tether controller``: the automated sync of a new Application,
    from its creation until its operation has ended."""
    ns = await env.namespace(f"bwc-{env.run_id}-{n}")
    name = f"waves-{n}"
    tl = await Timeline(env.kube, ns).start(*WATCHED)
    await tl.add(API_VERSION, "Application", home)
    try:
        start = tl.now()
        await env.create_apps(
            [application(name, home, repo_url=url, path="sync-waves", dest_namespace=ns)]
        )
        done = await tl.first("Application", name, ended, timeout=300)
        phase = done.obj["status"]["operationState"]["phase"]
        if phase != "Succeeded":
            raise RuntimeError(f"the sync ended {phase}: {done.obj['status']['operationState']}")
        return await steps_of(tl, start, done.at)
    finally:
        await tl.stop()


async def delete_with_controller(env: Env, home: str, names: list[str]) -> None:
    """Deletes the Applications while their controller runs: it removes their finalizer
    (after the cascade), which nobody would once it is stopped."""
    for name in names:
        await env.kube.delete(API_VERSION, "Application", name, home)
    deadline = time.perf_counter() + 120
    for name in names:
        while await env.kube.get(API_VERSION, "Application", name, home) is not None:
            if time.perf_counter() > deadline:
                print(f"Application {home}/{name} still there after 120s", file=sys.stderr)
                return
            await asyncio.sleep(0.2)


def print_runs(all_runs: list[list[Step]]) -> None:
    for n, steps in enumerate(all_runs):
        print(f"# run {n + 1} of {len(all_runs)}: began, done, took (s from the start of the sync)")
        t0 = steps[0][1]
        for what, began, done in steps:
            print(f"{began - t0:7.2f} {done - t0:7.2f} {done - began:6.2f}  {what}")
    print(f"# median of {len(all_runs)} run(s): began, done, took (s)")
    for i, (what, _, _) in enumerate(all_runs[0]):
        began = median(r[i][1] - r[0][1] for r in all_runs)
        done = median(r[i][2] - r[0][1] for r in all_runs)
        took = median(r[i][2] - r[i][1] for r in all_runs)
        print(f"{began:7.2f} {done:7.2f} {took:6.2f}  {what}")


async def timelines(runs: int, via_controller: bool) -> int:
    async with bench_env("sync-timeline") as env:
        await env.kube.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APPS_NS}}
        )
        repo = env.git.create_repo(f"waves-{env.run_id}")
        repo.commit(
            {f"sync-waves/{p.name}": p.read_bytes() for p in EXAMPLE.iterdir() if p.is_file()},
            message="the sync-waves example",
        )
        all_runs: list[list[Step]] = []
        if via_controller:
            home = await env.home(f"bwh-{env.run_id}")
            controller = env.controller([home])
            controller.start()
            async with aiohttp.ClientSession() as http:
                await controller.wait_ready(http)
            print(f"# each sync run by tether controller (pid {controller.pid})")
            for n in range(runs):
                all_runs.append(await timed_controller_sync(env, home, repo.http_url, n))
            await delete_with_controller(env, home, [f"waves-{n}" for n in range(runs)])
        else:
            print("# each sync run in this process (Engine.sync)")
            engine = Engine(env.kube, GitCache(env.tmp / "cache"))
            for n in range(runs):
                all_runs.append(await timed_sync(env, engine, f"file://{repo.path}", n))
        print_runs(all_runs)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
