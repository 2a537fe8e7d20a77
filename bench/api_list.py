"""Benchmark: the HTTP API's Application list and event stream at 1,000 apps.

Creates N Applications (default 1000) with a realistic status in a fresh namespace, as
bench/ui_list.py does, and starts a tether `Runtime` in-process as a standby replica (another
identity holds the Lease: it serves the API without reconciling). Then times, with the
kubeconfig's token:

- `GET /api/v1/applications?limit=5000`: the first answer after start (the server's watch of
  Applications listed, every app's document made and encoded) and the median of LOADS later
  ones (answered from the watch, documents cached per resourceVersion);
- `GET /api/v1/stream/applications` until its snapshot ends (`: ready`), once the watch runs;
- `kubectl get applications.tether.dev -n NS -o json` in the same run, for comparison.

    .venv/bin/python bench/api_list.py [--apps 1000] [--loads 5]
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


from tether.controller.runtime import Runtime, RuntimeOptions  # noqa: E402
from tether.kube import KubeClient  # noqa: E402
from ui_list import KUBECTL, with_apps  # noqa: E402


async def timed_list(http: aiohttp.ClientSession, url: str, n: int) -> float:
    started = time.perf_counter()
    async with http.get(url + "/api/v1/applications", params={"limit": "5000"}) as resp:
        body = await resp.json()
    ms = (time.perf_counter() - started) * 1000
    if resp.status != 200 or len(body["items"]) != n:
        raise SystemExit(f"the list answered {resp.status} with {len(body.get('items', []))} apps")
    return ms


async def timed_snapshot(http: aiohttp.ClientSession, url: str, n: int) -> float:
    started = time.perf_counter()
    events = 0
    async with http.get(url + "/api/v1/stream/applications") as resp:
        async for line in resp.content:
            if line.startswith(b"event: application"):
                events += 1
            if line.startswith(b": ready"):
                break
    ms = (time.perf_counter() - started) * 1000
    if events != n:
        raise SystemExit(f"the stream's snapshot held {events} apps, not {n}")
    return ms


def kubectl_json(kubeconfig: str, ns: str) -> float:
    argv = [str(KUBECTL), "--kubeconfig", kubeconfig, "get", "applications.tether.dev"]
    started = time.perf_counter()
    subprocess.run([*argv, "-n", ns, "-o", "json"], check=True, capture_output=True)
    return (time.perf_counter() - started) * 1000


async def measure(kube: KubeClient, kubeconfig: str, ns: str, n: int, loads: int) -> int:
    token = await kube.bearer_token()
    if not token:
        raise SystemExit("the kubeconfig has no bearer token")
    with tempfile.TemporaryDirectory() as tmp:
        opts = RuntimeOptions(
            kubeconfig=kubeconfig,
            namespaces=[ns],
            http_host="127.0.0.1",
            http_port=0,
            leader_elect=True,
            audit_db=Path(tmp) / "audit.db",
            cache_dir=Path(tmp) / "git",
        )
        async with Runtime(opts) as rt:
            url = f"http://127.0.0.1:{rt.port}"
            headers = {"Authorization": f"Bearer {token}"}
            timeout = aiohttp.ClientTimeout(total=300)
            async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
                first = await timed_list(http, url, n)
                later = [await timed_list(http, url, n) for _ in range(loads)]
                await timed_snapshot(http, url, n)  # starts the watch
                stream = [await timed_snapshot(http, url, n) for _ in range(loads)]
    kubectl = [kubectl_json(kubeconfig, ns) for _ in range(loads)]
    print()
    print(f"HTTP API at {n} Applications (median of {loads}):")
    print(f"  list, first after start  {first:7.0f} ms")
    print(
        f"  list                     {statistics.median(later):7.0f} ms   (runs: "
        f"{', '.join(f'{v:.0f}' for v in later)})"
    )
    print(f"  stream snapshot          {statistics.median(stream):7.0f} ms")
    print(f"  kubectl get -o json      {statistics.median(kubectl):7.0f} ms")
    print(
        f"  list / kubectl           {statistics.median(later) / statistics.median(kubectl):7.2f} x"
    )
    return 0


async def main() -> int:
    return await with_apps("api-bench", measure)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
