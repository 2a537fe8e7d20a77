"""Benchmark: what each kind of request a sync sends costs the control plane, in CPU.

A sync's wall time on a small machine is bounded by the CPU the API server and etcd spend,
not by tether's. This sends ``--requests`` requests of each kind a sync makes, 32 at a time
through tether's client, and prints the CPU kube-apiserver and etcd used per request (read
from /proc, so run it on a quiet control plane), beside a server-side apply of a ConfigMap,
the unit of the floor:

- a server-side apply of a new ConfigMap, and of a changed one (the floor's request);
- an Event (``SyncStarted``, ``SyncSucceeded``);
- a GET of a Namespace;
- an Application created, its finalizer added (a merge patch of the object), the claim
  (a small merge patch of ``status.operationState``) and the end of a sync (the whole
  status of a synced app of 10 objects, the shape the controller writes), then a claim
  again, now on an Application holding that status;
- the same Application writes against a copy of the CRD without a schema, to tell the
  schema's part from the API server's handling of custom resources.

No target: it explains the scale benchmark's figures (see docs/performance.md).

    flock /tmp/tether-bench.lock .venv/bin/python bench/request_cost.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devcluster.cluster import Cluster  # noqa: E402

from _common import control_plane_cpu, quiet  # noqa: E402
from floor import CONCURRENCY  # noqa: E402
from tether.api.application import API_VERSION, crd_manifests  # noqa: E402
from tether.kube import KubeClient  # noqa: E402

MERGE = "application/merge-patch+json"
SETTLE = 1.0
"""Seconds after a phase before reading the CPU: the watch cache and etcd finish its work."""


async def bounded(coros: Iterable[Awaitable[Any]]) -> None:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(c: Awaitable[Any]) -> None:
        async with sem:
            await c

    await asyncio.gather(*(one(c) for c in coros))


def synced_status(ns: str, app: str, objects: int = 10) -> dict[str, Any]:
    """The status the controller writes at the end of a first sync of ``objects``
    ConfigMaps (the shape of a real one, from the scale benchmark)."""
    sha = uuid.uuid4().hex + uuid.uuid4().hex[:8]
    keys = [
        {"group": "", "kind": "ConfigMap", "name": f"cm-{i}", "namespace": ns, "version": "v1"}
        for i in range(objects)
    ]
    when = "2026-01-01T00:00:00Z"
    return {
        "conditions": [],
        "deletionHooks": 0,
        "health": {"message": "", "status": "Healthy"},
        "history": [
            {
                "author": "A Person <person@example.com>",
                "deployedAt": when,
                "id": 1,
                "message": "a commit",
                "result": "Succeeded",
                "revision": sha,
                "source": {
                    "path": f"apps/{app}",
                    "repoURL": "https://git.example.com/team/apps.git",
                    "targetRevision": "HEAD",
                },
                "trigger": "auto",
            }
        ],
        "inventory": keys,
        "observedGeneration": 1,
        "operationState": {
            "checked": True,
            "finishedAt": when,
            "firstInstall": True,
            "generation": 1,
            "heartbeatAt": "",
            "message": f"changed {objects} object(s)",
            "operation": {
                "id": uuid.uuid4().hex[:12],
                "initiatedBy": "controller",
                "sync": {"allowMassPrune": False, "prune": False, "revision": ""},
                "trigger": "auto",
            },
            "phase": "Succeeded",
            "pruning": False,
            "revision": sha,
            "runBy": "controller-0",
            "startedAt": when,
            "syncPhase": "Sync",
            "syncResult": {
                "resources": [
                    {
                        **k,
                        "action": "created",
                        "message": "",
                        "status": "Synced",
                        "syncPhase": "Sync",
                        "wave": 0,
                    }
                    for k in keys
                ]
            },
        },
        "reconciledAt": when,
        "resources": [{**k, "status": "Synced"} for k in keys],
        "sourceTypes": ["Directory"],
        "sync": {"revision": sha, "status": "Synced"},
    }


def claim(phase: str) -> dict[str, Any]:
    return {"status": {"operationState": {"phase": phase, "message": "", "syncResult": None}}}


class Run:
    def __init__(self, kube: KubeClient, n: int) -> None:
        self.kube = kube
        self.n = n
        self.rows: dict[str, list[float]] = {}
        """What was sent -> CPU milliseconds per request, one value per round."""
        self.idle = 0.0
        """CPU per second the control plane spends on its own, taken off every phase."""

    async def phase(self, what: str, requests: Callable[[int], Awaitable[Any]]) -> float:
        """CPU milliseconds of the control plane per request of ``requests(i)``, i < n."""
        cpu, start = control_plane_cpu(), time.monotonic()
        await bounded(requests(i) for i in range(self.n))
        wall = time.monotonic() - start
        await asyncio.sleep(SETTLE)
        used = control_plane_cpu() - cpu - self.idle * (time.monotonic() - start)
        per = used / self.n * 1000
        self.rows.setdefault(what, []).append(per)
        print(f"  {what}: {per:.2f} ms CPU per request ({self.n} in {wall:.1f} s)", flush=True)
        return per


async def core_requests(run: Run, ns: str) -> None:
    kube = run.kube

    def cm(i: int, value: str) -> dict[str, Any]:
        meta = {"name": f"cm-{i}", "namespace": ns}
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": value}}

    await run.phase("ConfigMap: server-side apply, new", lambda i: kube.apply(cm(i, "a" * 200)))
    await run.phase("ConfigMap: server-side apply, changed", lambda i: kube.apply(cm(i, "b" * 200)))

    def event(i: int) -> Awaitable[Any]:
        return kube.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"app-{i}.{uuid.uuid4().hex[:10]}", "namespace": ns},
                "involvedObject": {
                    "apiVersion": API_VERSION,
                    "kind": "Application",
                    "name": f"app-{i}",
                    "namespace": ns,
                },
                "reason": "SyncSucceeded",
                "message": "synced to 0123456789ab",
                "type": "Normal",
                "source": {"component": "tether-controller"},
                "firstTimestamp": "2026-01-01T00:00:00Z",
                "lastTimestamp": "2026-01-01T00:00:00Z",
                "count": 1,
            }
        )

    await run.phase("Event: create", event)
    await run.phase("Namespace: get", lambda i: kube.get("v1", "Namespace", ns))


async def application_requests(run: Run, ns: str, api_version: str, label: str) -> None:
    kube = run.kube
    base = f"/apis/{api_version}/namespaces/{ns}/applications"

    def app(i: int) -> dict[str, Any]:
        return {
            "apiVersion": api_version,
            "kind": "Application",
            "metadata": {"name": f"app-{i}", "namespace": ns},
            "spec": {
                "source": {
                    "repoURL": "https://git.example.com/team/apps.git",
                    "path": f"apps/app-{i}",
                    "targetRevision": "HEAD",
                },
                "destination": {"namespace": ns},
                "syncPolicy": {"automated": {"selfHeal": True}},
            },
        }

    def patch(i: int, body: dict[str, Any], sub: str = "") -> Awaitable[Any]:
        return kube.request("PATCH", f"{base}/app-{i}{sub}", body=body, content_type=MERGE)

    fin = {"metadata": {"finalizers": ["tether.dev/resources-finalizer"]}}
    await run.phase(f"{label}: create", lambda i: kube.create(app(i)))
    await run.phase(f"{label}: finalizer (merge patch)", lambda i: patch(i, fin))
    await run.phase(
        f"{label}: claim (small status patch)", lambda i: patch(i, claim("Running"), "/status")
    )
    await run.phase(
        f"{label}: end of a sync (whole status, 10 objects)",
        lambda i: patch(i, {"status": synced_status(ns, f"app-{i}")}, "/status"),
    )
    await run.phase(
        f"{label}: claim again (small patch, object holding that status)",
        lambda i: patch(i, claim("Running"), "/status"),
    )
    await bounded(patch(i, {"metadata": {"finalizers": None}}) for i in range(run.n))


def open_crd() -> dict[str, Any]:
    """The Application CRD under another group, with no schema (everything preserved)."""
    crd = copy.deepcopy(
        next(c for c in crd_manifests() if c["spec"]["names"]["kind"] == "Application")
    )
    group = "schemaless.bench.tether.dev"
    crd["metadata"]["name"] = f"{crd['spec']['names']['plural']}.{group}"
    crd["spec"]["group"] = group
    for v in crd["spec"]["versions"]:
        v["schema"] = {
            "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        }
    return crd


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=1000, help="requests of each kind")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (medians are printed)")
    ap.add_argument("--kubeconfig", default="")
    args = ap.parse_args()
    kubeconfig = args.kubeconfig
    if not kubeconfig:
        cluster = Cluster()
        cluster.up()
        kubeconfig = str(cluster.p.kubeconfig)
    kube = await KubeClient.connect(kubeconfig, pool_size=CONCURRENCY)
    run = Run(kube, args.requests)
    crd = open_crd()
    try:
        for c in crd_manifests():
            await kube.apply(c)
        await kube.apply(crd)
        group, version = crd["spec"]["group"], crd["spec"]["versions"][0]["name"]
        await kube.wait_for_resource(API_VERSION, "Application")
        await kube.wait_for_resource(f"{group}/{version}", "Application")
        for r in range(args.rounds):
            await one_round(run, r, f"{group}/{version}")
    finally:
        crds = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
        await kube.delete(*crds, crd["metadata"]["name"])
        await kube.close()
    medians = {what: statistics.median(values) for what, values in run.rows.items()}
    unit = next(iter(medians.values()))
    print(f"\nmedian of {args.rounds} rounds: ms of control-plane CPU per request, and as a")
    print(f"multiple of a new ConfigMap's server-side apply ({unit:.2f} ms):")
    for what, per in medians.items():
        print(f"  {per:6.2f} ms {per / unit:5.2f}x  {what}")
    return 0


async def one_round(run: Run, r: int, schemaless: str) -> None:
    kube = run.kube
    ns = f"bench-cost-{uuid.uuid4().hex[:6]}"
    await kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    try:
        run.idle = await quiet()
        print(
            f"round {r + 1}: control-plane CPU per request, {run.n} of each, {CONCURRENCY} at "
            f"a time (idle: {run.idle:.3f} cores, subtracted):",
            flush=True,
        )
        await core_requests(run, ns)
        await application_requests(run, ns, API_VERSION, "Application")
        await application_requests(run, ns, schemaless, "Application, no schema")
    finally:
        await kube.delete("v1", "Namespace", ns, propagation="Background")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
