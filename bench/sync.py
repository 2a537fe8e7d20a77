"""Benchmark: initial sync of 100 Applications x 10 objects against `kubectl apply --server-side`.

Same control plane, same run, same objects (each tool in its own namespaces):
  1. kubectl apply --server-side -f <dir of all rendered manifests>        (timed)
  2. tether: sync of all 100 Applications from one git repository         (timed)
  3. tether: second pass with nothing changed: API writes (want 0) and the time
     for a full diff of all objects.

    .venv/bin/python bench/sync.py [--apps 100] [--objects 10]
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

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devcluster.cluster import Cluster  # noqa: E402
from devcluster.gitserver import GitServer  # noqa: E402

from tether.api.application import API_VERSION, crd_manifests, new_application  # noqa: E402
from tether.engine import Engine  # noqa: E402
from tether.kube import KubeClient  # noqa: E402
from tether.source import GitCache  # noqa: E402

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
    args = ap.parse_args()
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


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
