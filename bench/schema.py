"""Benchmark: the client-side schema check against the server dry-run it replaces.

In one run: the first check (fetching and compiling the published schema), then ``--objects``
new ConfigMaps, Services, Deployments, StatefulSets, DaemonSets and Jobs checked one by one with
the schema cached (time per object, and how many were vouched for, found invalid, or left to
the server), then the same objects dry-run on the server (32 at a time through tether's
client): the yardstick. Prints the memory the cached schemas hold and the peak while a document
is read. Exits 1 when checking a kind takes more than ``TARGET`` (ConfigMaps) or
``RULED_TARGET`` (the others) of its dry-runs' time, or when
one of these objects (all valid, all inside the check's allow-lists) is not vouched for.

    flock /tmp/tether-bench.lock .venv/bin/python bench/schema.py [--objects 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devcluster.cluster import Cluster  # noqa: E402

from floor import CONCURRENCY, ratio_line  # noqa: E402
from tether.kube import KubeClient  # noqa: E402
from tether.schema import SchemaCheck, Verdict, schema_check_of  # noqa: E402

TARGET = 0.1
"""Checking new ConfigMaps may take at most this share of the time of their dry-runs."""
RULED_TARGET = 0.2
"""The same for Services and workloads, whose checks also walk their pod templates' rules."""


def configmap(ns: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"cm-{i}", "namespace": ns, "labels": {"app": "bench"}},
        "data": {"index": str(i), "config.yaml": "a: 1\nb: [x, y]\n"},
    }


def service(ns: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"svc-{i}", "namespace": ns, "labels": {"app": "bench"}},
        "spec": {
            "selector": {"app": f"web-{i}"},
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}],
        },
    }


def deployment(ns: str, i: int) -> dict[str, Any]:
    labels = {"app": f"web-{i}"}
    container = {
        "name": "web",
        "image": "nginx:1.27",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "MODE", "value": "bench"}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"web-{i}", "namespace": ns, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def stateful_set(ns: str, i: int) -> dict[str, Any]:
    obj = deployment(ns, i)
    obj["kind"] = "StatefulSet"
    obj["metadata"]["name"] = f"db-{i}"
    obj["spec"]["serviceName"] = f"svc-{i}"
    return obj


def daemon_set(ns: str, i: int) -> dict[str, Any]:
    obj = deployment(ns, i)
    obj["kind"] = "DaemonSet"
    obj["metadata"]["name"] = f"agent-{i}"
    del obj["spec"]["replicas"]
    return obj


def job(ns: str, i: int) -> dict[str, Any]:
    obj = deployment(ns, i)
    obj["apiVersion"], obj["kind"] = "batch/v1", "Job"
    obj["metadata"]["name"] = f"job-{i}"
    spec = obj["spec"]
    del spec["replicas"], spec["selector"]
    spec["template"]["spec"]["restartPolicy"] = "Never"
    spec["backoffLimit"] = 2
    return obj


KINDS = (
    ("ConfigMap", configmap),
    ("Service", service),
    ("Deployment", deployment),
    ("StatefulSet", stateful_set),
    ("DaemonSet", daemon_set),
    ("Job", job),
)


def outcome(v: Verdict) -> str:
    return "vouched" if v.vouched else "invalid" if v.invalid else "server"


async def check_all(check: SchemaCheck, objs: list[dict[str, Any]]) -> tuple[float, Counter[str]]:
    t0 = time.perf_counter()
    verdicts = [await check.check(o, strict=True) for o in objs]
    return time.perf_counter() - t0, Counter(outcome(v) for v in verdicts)


async def dry_run_all(kube: KubeClient, objs: list[dict[str, Any]]) -> float:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(obj: dict[str, Any]) -> None:
        async with sem:
            await kube.apply(obj, dry_run=True)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(o) for o in objs))
    return time.perf_counter() - t0


def deep_size(root: object) -> int:
    """Bytes of every object reachable from ``root`` (each counted once)."""
    seen: set[int] = set()
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(_children(obj))
    return total


def _children(obj: object) -> Iterator[object]:
    if isinstance(obj, dict):
        yield from obj.keys()
        yield from obj.values()
    elif isinstance(obj, list | tuple | set | frozenset):
        yield from obj
    elif hasattr(obj, "__slots__"):
        for slot in obj.__slots__:
            if hasattr(obj, slot):
                yield getattr(obj, slot)
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        yield obj.__dict__


async def peak_mib(kube: KubeClient, ns: str) -> float:
    """Peak memory of a first check with an empty cache (traced apart: tracing slows it)."""
    tracemalloc.start()
    await SchemaCheck(kube).check(configmap(ns, -2))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


async def main(objects: int) -> int:
    kubeconfig = str(Cluster().p.kubeconfig)
    kube = await KubeClient.connect(kubeconfig, pool_size=CONCURRENCY)
    ns = f"bench-schema-{uuid.uuid4().hex[:6]}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    try:
        check = schema_check_of(kube)
        t0 = time.perf_counter()
        first = await check.check(configmap(ns, -1))
        cold = time.perf_counter() - t0
        print(
            f"first check (fetch + compile the published schema): {cold * 1000:.0f} ms,"
            f" {outcome(first)}; peak memory while reading it {await peak_mib(kube, ns):.1f} MiB"
        )
        checked: list[tuple[str, list[dict[str, Any]], float]] = []
        ok = True
        for name, make in KINDS:
            objs = [make(ns, i) for i in range(objects)]
            await check.check(objs[0])  # the kind compiled once, outside the timing
            seconds, counts = await check_all(check, objs)
            ok = ok and counts == Counter({"vouched": objects})
            checked.append((name, objs, seconds))
            print(
                f"check {objects} {name}s: {seconds * 1000:.0f} ms,"
                f" {seconds / objects * 1e6:.0f} us per object; {dict(counts)}"
            )
        gc.collect()
        held = deep_size(check.openapi)
        print(
            f"cached schemas: {held / 2**20:.2f} MiB for {check.openapi.compiled_kinds}"
            f" kinds compiled ({check.openapi.fetches} fetches)"
        )
        for name, objs, seconds in checked:
            dry = await dry_run_all(kube, objs)
            target = TARGET if name == "ConfigMap" else RULED_TARGET
            line, met = ratio_line(f"check of {objects} {name}s", seconds, dry, target)
            print(line.replace("the floor", f"their dry-runs, {CONCURRENCY} at a time"))
            ok = ok and met
        return 0 if ok else 1
    finally:
        await kube.delete("v1", "Namespace", ns, propagation="Background")
        await kube.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.objects)))
