"""Benchmark: initial sync of 100 Applications x 10 objects against the floor and kubectl.

Same control plane, same run, same manifests (each in fresh namespaces of its own), in
``--initial-rounds`` rounds (default 3) of steps 1-3, each step started on a quiet control
plane (``_common.quiet``: the work an earlier step left behind is not charged to the next):
  1. the floor (``bench/floor.py``): the same objects as raw concurrent server-side applies
     through one pooled HTTP client, no dry-run, no reads: what the API server allows;
  2. kubectl apply --server-side -f <dir of all rendered manifests>;
  3. tether: sync of all the Applications from one git repository (``Engine.sync``); the
     median of the rounds is printed as a ratio of the floor's median (target <= 1.5x);
  4. tether: a no-op sync of every app (nothing changed; Git asked again for the branch),
     ``--noop-rounds`` times, each after a raw list of the same objects (``Floor.list``): API
     writes (want 0) and the median time against the median raw list (target <= 1.5x). The
     Applications are in hand when the clock starts, as a controller's watch holds them: they
     are read with one list just before, whose time is printed beside (and the ratio with it
     counted in, no target).
Exits non-zero when a target is missed. ``--profile FILE`` runs step 3 of the first round
under cProfile (the stats go to FILE, the top entries and the requests by verb and status are
printed), and the extra no-op round after the timed ones (into FILE.noop; not counted).
``--cp-profile FILE`` writes kube-apiserver's CPU profile of the first round's step 3 (its
first ``--cp-profile-seconds``) and prints where its samples went
(bench/apiserver_profile.py).

With ``--timeline``, instead: the timeline of one sync with hooks and waves (the sync-waves
example of tests/fixtures/examples: a PreSync hook, waves -1 to 3, a Sync hook in wave 3),
measured from the API server's watch, ``--runs`` times (the median of each step is printed
last); the sync runs in this process (``Engine.sync``), or with ``--controller`` in a
``tether controller`` (an automated sync of a new Application). docs/sync.md quotes both.

    .venv/bin/python bench/sync.py [--apps 100] [--objects 10] [--no-kubectl] [--profile F]
                                   [--initial-rounds 3] [--noop-rounds 7]
    .venv/bin/python bench/sync.py --timeline [--runs 3] [--controller]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import pstats
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _common import (  # noqa: E402
    KUBECTL,
    Env,
    application,
    bench_env,
    control_plane_cpu,
    quiet,
)
from apiserver_profile import ApiServerProfile  # noqa: E402
from floor import Floor, ratio_line  # noqa: E402
from tether.api.application import API_VERSION, Application, new_application  # noqa: E402
from tether.engine import Engine  # noqa: E402
from tether.service.reading import list_apps  # noqa: E402
from tether.source import GitCache  # noqa: E402
from timeline import Timeline, deployment_available, job_complete  # noqa: E402

APPS_NS = "tether-system"
INITIAL_TARGET = 1.5
"""Initial sync: at most this many times the floor."""
NOOP_TARGET = 1.5
"""No-op sync: at most this many times a raw list of the same objects."""
KUBECTL_ARGS = ("apply", "--server-side", "--field-manager", "bench-kubectl")
LISTED = ("/api/v1/configmaps", "/api/v1/services", "/api/v1/serviceaccounts")
"""The kinds of ``app_objects``: what a no-op sync must read."""


def app_objects(i: int, n: int) -> list[dict[str, Any]]:
    """n objects: a ServiceAccount, a Service, and ConfigMaps."""
    objs: list[dict[str, Any]] = [
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


def with_namespace(objs: list[dict[str, Any]], ns: str) -> list[dict[str, Any]]:
    return [{**o, "metadata": {**o["metadata"], "namespace": ns}} for o in objs]


def requests_since(before: Counter[tuple[str, int]], now: Counter[tuple[str, int]]) -> str:
    """``PATCH 200: 1000, GET 200: 300``: the requests sent since ``before``, by verb and code."""
    diff = {k: n - before.get(k, 0) for k, n in now.items() if n - before.get(k, 0)}
    return ", ".join(f"{v} {c}: {n}" for (v, c), n in sorted(diff.items(), key=lambda x: -x[1]))


@contextlib.contextmanager
def profiled(path: str) -> Iterator[None]:
    """Runs the block under cProfile when ``path`` is set: the stats go to ``path``, the top
    entries (by own time, and tether's own functions by cumulative time) to stdout."""
    if not path:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(path)
        print(f"# profile: {path}")
        pstats.Stats(path).sort_stats("tottime").print_stats(20)
        pstats.Stats(path).sort_stats("cumulative").print_stats("src/tether", 25)


def kubectl_apply(kubeconfig: str, directory: Path) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(
        [str(KUBECTL), "--kubeconfig", kubeconfig, *KUBECTL_ARGS, "-f", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"kubectl apply failed: {r.stderr}")
    return took


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--apps", type=int, default=100)
    ap.add_argument("--objects", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=32, help="apps synced at once")
    ap.add_argument("--no-kubectl", action="store_true", help="skip the kubectl comparison")
    ap.add_argument("--initial-rounds", type=int, default=3, help="initial syncs timed (median)")
    ap.add_argument("--noop-rounds", type=int, default=7, help="no-op syncs timed (median)")
    ap.add_argument("--profile", default="", help="cProfile the initial sync into this file")
    ap.add_argument(
        "--cp-profile", default="", help="kube-apiserver's CPU profile of the initial sync"
    )
    ap.add_argument(
        "--cp-profile-seconds", type=int, default=6, help="seconds of the sync profiled"
    )
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
    async with bench_env("sync") as env:
        return await initial_and_noop(env, args)


@dataclass
class Round:
    """One timed round of the initial sync: the floor, kubectl and tether, each on fresh
    namespaces of its own and a quiet control plane."""

    floor: float
    floor_cpu: float
    tether: float
    tether_cpu: float
    tether_cp_cpu: float
    kubectl: float = 0.0


async def initial_and_noop(env: Env, args: argparse.Namespace) -> int:
    kube, run_id = env.kube, env.run_id
    await kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APPS_NS}})
    total = args.apps * args.objects
    print(f"# {args.apps} apps x {args.objects} objects = {total} objects; run {run_id}")
    files = {
        f"apps/app-{i:03d}/objects.yaml": yaml.safe_dump_all(app_objects(i, args.objects))
        for i in range(args.apps)
    }
    repo = env.git.create_repo(f"bench-{run_id}")
    repo.commit(files, message="bench apps")
    engine = Engine(kube, GitCache(env.tmp / "cache", refs_ttl=5.0), credentials_ttl=5.0)
    rounds: list[Round] = []
    names: list[str] = []
    ns_t: list[str] = []
    home = ""
    for r in range(args.initial_rounds):
        # Each round's Applications in a home of their own (with the git server's
        # credentials), so the no-op rounds' list of them holds only the last round's.
        home = await env.home(f"bh{r}-{run_id}")
        ns_t = [f"bt{r}-{run_id}-{i:03d}" for i in range(args.apps)]
        names = [f"bench-{run_id}-{r}-{i:03d}" for i in range(args.apps)]
        got = await initial_round(env, args, engine, repo.http_url, home, r, ns_t, names)
        if got is None:
            return 1
        rounds.append(got)
    initial_met = initial_verdict(rounds, total)
    # No-op syncs of the last round's apps, nothing changed (not recorded in the apps'
    # history: as before, the writes counted are those to the apps' objects).
    return await noops(env, args, engine, names, home, ns_t, initial_met)


async def initial_round(
    env: Env,
    args: argparse.Namespace,
    engine: Engine,
    repo_url: str,
    home: str,
    r: int,
    ns_t: list[str],
    names: list[str],
) -> Round | None:
    """The floor, kubectl (unless ``--no-kubectl``) and tether's initial sync of every app,
    each into namespaces of its own, each started on a quiet control plane (the namespaces
    and Applications are created before, not timed). Round ``r`` counts from 0; the
    profile, if asked, is of the first round's sync."""
    kube, run_id = env.kube, env.run_id
    ns_f = [f"bf{r}-{run_id}-{i:03d}" for i in range(args.apps)]
    ns_k = [] if args.no_kubectl else [f"bk{r}-{run_id}-{i:03d}" for i in range(args.apps)]
    await asyncio.gather(*(env.namespace(n) for n in ns_f + ns_k + ns_t))

    # 1. the floor
    floor_objs = [
        o for i in range(args.apps) for o in with_namespace(app_objects(i, args.objects), ns_f[i])
    ]
    await quiet()
    cp0 = control_plane_cpu()
    async with Floor.open(env.kubeconfig) as f:
        t_floor = await f.apply(floor_objs)
    cp_floor = control_plane_cpu() - cp0

    # 2. kubectl
    t_kubectl = 0.0
    if ns_k:
        kdir = env.tmp / f"kubectl-{r}"
        kdir.mkdir()
        for i in range(args.apps):
            (kdir / f"app-{i:03d}.yaml").write_text(
                yaml.safe_dump_all(with_namespace(app_objects(i, args.objects), ns_k[i]))
            )
        await quiet()
        t_kubectl = await asyncio.to_thread(kubectl_apply, env.kubeconfig, kdir)

    # 3. tether: Applications created (not timed), then all synced.
    await env.create_apps(
        [
            new_application(
                names[i],
                home,
                repo_url=repo_url,
                path=f"apps/app-{i:03d}",
                dest_namespace=ns_t[i],
            )
            for i in range(args.apps)
        ]
    )
    sem = asyncio.Semaphore(args.concurrency)

    async def sync_one(name: str) -> bool:
        async with sem:
            a = await engine.get_app(name, home)
            res = await engine.sync(a)
            if not res.ok:
                print(f"{name}: {res.message}", file=sys.stderr)
            return res.ok

    await quiet()
    before = Counter(kube.requests)
    cp_profile = None
    if args.cp_profile and r == 0:
        cp_profile = ApiServerProfile(
            KUBECTL, env.kubeconfig, Path(args.cp_profile), args.cp_profile_seconds
        )
        cp_profile.start()
    with profiled(args.profile if r == 0 else ""):
        t0, c0, cp0 = time.perf_counter(), time.process_time(), control_plane_cpu()
        oks = await asyncio.gather(*(sync_one(n) for n in names))
        t_tether = time.perf_counter() - t0
        c_tether, cp_tether = time.process_time() - c0, control_plane_cpu() - cp0
    if not all(oks):
        return None
    kubectl = f", kubectl apply --server-side {t_kubectl:.2f} s" if t_kubectl else ""
    print(
        f"initial round {r + 1}: floor {t_floor:.2f} s (API server + etcd CPU {cp_floor:.2f} s)"
        f"{kubectl}, tether {t_tether:.2f} s ({t_tether / t_floor:.2f}x; CPU: tether "
        f"{c_tether:.2f} s, API server + etcd {cp_tether:.2f} s); requests: "
        f"{requests_since(before, kube.requests)}",
        flush=True,
    )
    if cp_profile is not None:
        print("\n".join(await cp_profile.finish()), flush=True)
    return Round(t_floor, cp_floor, t_tether, c_tether, cp_tether, t_kubectl)


def initial_verdict(rounds: list[Round], total: int) -> bool:
    """Prints the medians of the rounds and the ratio judged (median against median)."""
    n = len(rounds)
    t_floor, t_tether = median(x.floor for x in rounds), median(x.tether for x in rounds)
    print(
        f"floor: {total} raw server-side applies, median of {n}: {t_floor:.2f} s "
        f"(API server + etcd CPU {median(x.floor_cpu for x in rounds):.2f} s)"
    )
    print(
        f"initial sync CPU, median of {n}: tether {median(x.tether_cpu for x in rounds):.2f} s, "
        f"API server + etcd {median(x.tether_cp_cpu for x in rounds):.2f} s"
    )
    if all(x.kubectl for x in rounds):
        t_kubectl = median(x.kubectl for x in rounds)
        print(
            f"kubectl apply --server-side, median of {n}: {t_kubectl:.2f} s; "
            f"tether/kubectl: {t_tether / t_kubectl:.2f}x"
        )
    line, met = ratio_line(
        f"tether initial sync of {total} objects, median of {n}", t_tether, t_floor, INITIAL_TARGET
    )
    print(line)
    return met


async def noops(
    env: Env,
    args: argparse.Namespace,
    engine: Engine,
    names: list[str],
    home: str,
    ns_t: list[str],
    initial_met: bool,
) -> int:
    """``--noop-rounds`` rounds, each a raw list of the objects then a no-op sync of every app
    (the Applications read with one list, as a controller's watch holds them; Git asked anew
    for the branch: cached refs dropped). Each round and the medians are printed; the target
    is judged on the medians, the two measured turn about so that neither always runs on a
    busier machine."""
    kube, total = env.kube, args.apps * args.objects
    sem = asyncio.Semaphore(args.concurrency)
    mine = set(names)

    async def noop_one(app: Application) -> bool:
        async with sem:
            res = await engine.sync(app, write_status=False)
            if not res.ok:
                print(f"{app.name}: {res.message}", file=sys.stderr)
            return res.ok

    async def noop_round() -> tuple[float, list[bool]]:
        engine.git.forget_refs()
        t0 = time.perf_counter()
        apps = [Application.from_obj(o) for o in await list_apps(kube, home)]
        t_apps.append(time.perf_counter() - t0)
        t0, c0 = time.perf_counter(), time.process_time()
        oks = await asyncio.gather(*(noop_one(a) for a in apps if a.name in mine))
        cpu.append(time.process_time() - c0)
        return time.perf_counter() - t0, oks

    t_noops: list[float] = []
    cpu: list[float] = []
    t_apps: list[float] = []
    """The list of the Applications before each round (not timed in it)."""
    """This process's CPU time in each no-op round (tether's own work, beside the wall time)."""
    t_lists: list[float] = []
    writes = 0
    oks: list[bool] = []
    for n in range(args.noop_rounds):
        await quiet()
        async with Floor.open(env.kubeconfig) as f:
            t_lists.append(await raw_list(f, ns_t))
        before = Counter(kube.requests)
        writes_before = kube.write_requests
        took, oks = await noop_round()
        t_noops.append(took)
        writes += kube.write_requests - writes_before
        if len(oks) != len(names) or not all(oks):
            print(f"no-op round {n + 1}: {sum(oks)} of {len(names)} apps synced", file=sys.stderr)
            return 1
        print(
            f"no-op round {n + 1}: raw list {t_lists[-1]:.2f} s, tether no-op sync "
            f"{took:.2f} s ({took / t_lists[-1]:.2f}x), its CPU {cpu[-1]:.2f} s, the "
            f"Applications' list before it {t_apps[-1]:.2f} s; requests: "
            f"{requests_since(before, kube.requests)}"
        )
    if args.profile:
        # One more round, profiled and not timed: a warm one, as a controller's are.
        with profiled(f"{args.profile}.noop"):
            await noop_round()
    t_list, t_noop = median(t_lists), median(t_noops)
    print(
        f"raw list of the same objects ({len(LISTED)} kinds x {args.apps} namespaces), "
        f"median of {len(t_lists)}: {t_list:.2f} s"
    )
    line, noop_met = ratio_line(
        f"tether no-op sync of {total} objects, median of {len(t_noops)}",
        t_noop,
        t_list,
        NOOP_TARGET,
    )
    print(f"{line}; API writes: {writes} (want 0)")
    with_apps = median(a + t for a, t in zip(t_apps, t_noops, strict=False))
    print(
        f"  with the Applications' list counted in: {with_apps:.2f} s = "
        f"{with_apps / t_list:.2f}x (no target)"
    )
    return 0 if initial_met and noop_met and writes == 0 else 1


async def raw_list(f: Floor, namespaces: list[str]) -> float:
    """Seconds to list every kind of ``app_objects`` in each namespace, all at once."""
    t0 = time.perf_counter()
    await asyncio.gather(*(f.list(path, namespaces) for path in LISTED))
    return time.perf_counter() - t0


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
