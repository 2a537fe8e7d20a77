"""Benchmark: what tether's Kubernetes client adds to a request, against the floor.

In one run, alternately ``--rounds`` times: ``--objects`` new ConfigMaps server-side applied
through ``KubeClient`` (``apply``, 32 at a time, one client of 32 connections) and the same
number through the floor (``bench/floor.py``: raw applies over one pooled aiohttp client), each
into a fresh namespace, the order swapped every round. Prints each round's wall and CPU time,
the medians and the client/floor ratio of wall time, and exits 1 past the target (the client
must add little). Also prints the import time and RSS of
``import tether.kube`` in a fresh interpreter (median of 5).

    flock /tmp/tether-bench.lock .venv/bin/python bench/client.py [--objects 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from statistics import median
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devcluster.cluster import Cluster  # noqa: E402

from floor import CONCURRENCY, Floor, ratio_line  # noqa: E402
from tether.kube import KubeClient  # noqa: E402

TARGET = 1.1
"""The client's applies may take at most this many times the floor's."""

_IMPORT_PROBE = """
import json, resource, time
t = time.perf_counter()
import tether.kube
seconds = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
aio = "kubernetes_asyncio" in __import__("sys").modules
print(json.dumps({"seconds": seconds, "rss_mib": rss, "aio": aio}))
"""


def configmaps(namespace: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"cm-{i}", "namespace": namespace, "labels": {"bench": "client"}},
            "data": {"index": str(i), "payload": "x" * 64},
        }
        for i in range(n)
    ]


async def through_client(kube: KubeClient, objs: list[dict[str, Any]]) -> float:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(obj: dict[str, Any]) -> None:
        async with sem:
            await kube.apply(obj)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(o) for o in objs))
    return time.perf_counter() - t0


def import_cost(runs: int = 5) -> tuple[float, float, bool]:
    """Median seconds and RSS (MiB) of ``import tether.kube`` in a fresh interpreter, and
    whether it loaded kubernetes_asyncio."""
    seen: list[dict[str, Any]] = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True, check=True
        )
        seen.append(json.loads(out.stdout))
    return (
        median(s["seconds"] for s in seen),
        median(s["rss_mib"] for s in seen),
        any(s["aio"] for s in seen),
    )


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kubeconfig", default="")
    args = ap.parse_args()

    seconds, rss, aio = import_cost()
    print(
        f"import tether.kube: {seconds * 1000:.0f} ms, RSS {rss:.0f} MiB "
        f"(kubernetes_asyncio loaded: {'yes' if aio else 'no'}; median of 5 fresh interpreters)"
    )

    kubeconfig = args.kubeconfig
    if not kubeconfig:
        cluster = Cluster()
        cluster.up()
        kubeconfig = str(cluster.p.kubeconfig)
    run = uuid.uuid4().hex[:6]
    kube = await KubeClient.connect(kubeconfig, pool_size=CONCURRENCY)
    namespaces: list[str] = []
    wall: dict[str, list[float]] = {"client": [], "floor": []}
    cpu: dict[str, list[float]] = {"client": [], "floor": []}
    try:
        await kube.resource_for("v1", "ConfigMap")
        async with Floor.open(kubeconfig) as floor:
            for r in range(args.rounds):
                # Who goes first alternates, so neither always follows the other's writes.
                for who in ("client", "floor") if r % 2 == 0 else ("floor", "client"):
                    ns = f"bench-client-{run}-{who}-{r}"
                    namespaces.append(ns)
                    await kube.create(
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                    )
                    objs = configmaps(ns, args.objects)
                    cpu0 = time.process_time()
                    if who == "client":
                        before = sum(kube.requests.values())
                        wall[who].append(await through_client(kube, objs))
                        sent = sum(kube.requests.values()) - before
                        assert sent == args.objects, f"client sent {sent} requests"
                    else:
                        wall[who].append(await floor.apply(objs))
                    cpu[who].append(time.process_time() - cpu0)
                print(
                    f"round {r + 1}: client {wall['client'][-1]:.2f} s "
                    f"(CPU {cpu['client'][-1]:.2f} s), floor {wall['floor'][-1]:.2f} s "
                    f"(CPU {cpu['floor'][-1]:.2f} s)",
                    flush=True,
                )
    finally:
        for ns in namespaces:
            await kube.delete("v1", "Namespace", ns, propagation="Background")
        await kube.close()
    print(
        f"this process's CPU per {args.objects} applies (median): client "
        f"{median(cpu['client']):.2f} s, floor {median(cpu['floor']):.2f} s"
    )
    line, met = ratio_line(
        f"{args.objects} server-side applies through KubeClient (median of {args.rounds})",
        median(wall["client"]),
        median(wall["floor"]),
        TARGET,
    )
    print(line)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
