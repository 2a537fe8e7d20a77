"""Benchmark: the web UI's Application list at 1,000 apps, in a real browser.

Creates N Applications (default 1000) in a fresh namespace, with a realistic status written
through the status subresource (sync, health, revision, history with authors, last sync), so
every row shows what it would in a real install. Starts a tether `Runtime` in-process as a
standby replica (another identity holds the leader Lease), so it serves the API and the UI
without reconciling: the numbers are the UI's and the API's, not reconciliation competing for
the CPU. Logs in with Playwright in Debian's headless Chromium, then loads the list LOADS
times (default 5): the time from navigation start to every row rendered, read in the page
(`performance.now()` when the list sets its `data-list-rendered-at` marker). In the same run
it times `kubectl get applications.tether.dev -n NS` for comparison. Removes its namespace.

    .venv/bin/python bench/ui_list.py [--apps 1000] [--loads 5]

Exit status 1 when the median is not under the 1 s target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devcluster.cluster import Cluster  # noqa: E402
from playwright.async_api import Page, async_playwright  # noqa: E402

from tether.api.application import API_VERSION, crd_manifests, new_application  # noqa: E402
from tether.controller.leader import LEASE_API_VERSION, format_micro_time  # noqa: E402
from tether.controller.runtime import Runtime, RuntimeOptions  # noqa: E402
from tether.errors import KubeError  # noqa: E402
from tether.kube import KubeClient  # noqa: E402

KUBECTL = REPO / ".venv" / "bin" / "kubectl"
CHROMIUM = "/usr/lib/chromium/chromium-headless-shell"
TARGET_MS = 1000.0
AUTHORS = ["Alice <alice@example.com>", "Bob <bob@example.com>", "Chen <chen@example.com>"]
SYNC = ["Synced"] * 8 + ["OutOfSync"] * 2
HEALTH = ["Healthy"] * 7 + ["Progressing", "Degraded", "Missing"]
CREATE_AT_ONCE = 50
UI_WAIT_MS = 120_000


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def status_of(i: int) -> dict[str, Any]:
    """A status as the controller writes it after a few syncs."""
    sha = uuid.uuid5(uuid.NAMESPACE_OID, str(i)).hex + "0" * 8
    at = (datetime.now(UTC) - timedelta(minutes=i % 600)).strftime("%Y-%m-%dT%H:%M:%SZ")
    author = AUTHORS[i % len(AUTHORS)]
    return {
        "sync": {"status": SYNC[i % len(SYNC)], "revision": sha},
        "health": {"status": HEALTH[i % len(HEALTH)], "message": ""},
        "reconciledAt": at,
        "conditions": [],
        "operationState": {
            "phase": "Succeeded",
            "message": "changed 2 object(s)",
            "revision": sha,
            "startedAt": at,
            "finishedAt": at,
        },
        "history": [
            {
                "id": 3,
                "revision": sha,
                "deployedAt": at,
                "result": "Succeeded",
                "trigger": "webhook",
                "author": author,
                "message": f"deploy build {i}",
                "source": {"repoURL": f"https://git.example.com/team/app-{i}.git", "path": "."},
            }
        ],
    }


async def create_apps(kube: KubeClient, ns: str, n: int) -> None:
    async def one(i: int) -> None:
        app = new_application(
            f"app-{i:04d}",
            ns,
            repo_url=f"https://git.example.com/team/app-{i}.git",
            path="deploy",
            dest_namespace=f"team-{i % 20}",
        )
        created = await kube.create(app)
        await kube.patch_status(created, status_of(i))

    for start in range(0, n, CREATE_AT_ONCE):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + CREATE_AT_ONCE))))


async def hold_lease(kube: KubeClient, ns: str) -> None:
    """The leader Lease held by another identity for an hour: the Runtime stays a standby."""
    now = datetime.now(UTC)
    await kube.create(
        {
            "apiVersion": LEASE_API_VERSION,
            "kind": "Lease",
            "metadata": {"name": "tether-controller", "namespace": ns},
            "spec": {
                "holderIdentity": "ui-bench-leader",
                "leaseDurationSeconds": 3600,
                "acquireTime": format_micro_time(now),
                "renewTime": format_micro_time(now),
                "leaseTransitions": 0,
            },
        }
    )


async def load_list(page: Page, url: str, n: int) -> tuple[float, float]:
    """One navigation to the list: milliseconds from its start to the API's answer read,
    and to the rows rendered."""
    await page.goto("about:blank")
    await page.goto(url + "/#/")
    await page.wait_for_selector("html[data-list-rendered-at]", timeout=UI_WAIT_MS)
    rows = await page.locator("#app-rows > tr").count()
    if rows != n:
        raise SystemExit(f"the list rendered {rows} rows, not {n}")
    marks = await page.evaluate(
        "[document.documentElement.dataset.listFetchedAt, "
        "document.documentElement.dataset.listRenderedAt].map(Number)"
    )
    return float(marks[0]), float(marks[1])


def kubectl_get(kubeconfig: str, ns: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(KUBECTL), "--kubeconfig", kubeconfig, "get", "applications.tether.dev", "-n", ns],
        check=True,
        capture_output=True,
    )
    return (time.perf_counter() - started) * 1000


async def measure(kube: KubeClient, kubeconfig: str, ns: str, n: int, loads: int) -> int:
    token = await kube.bearer_token()
    if not token:
        raise SystemExit("the kubeconfig has no bearer token to log in to the UI with")
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
        async with Runtime(opts) as rt, async_playwright() as p:
            url = f"http://127.0.0.1:{rt.port}"
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = await (
                await browser.new_context(viewport={"width": 1280, "height": 800})
            ).new_page()
            await page.goto(url + "/")
            await page.get_by_label("Token").fill(token)
            await page.get_by_role("button", name="Log in").click()
            await page.wait_for_selector("html[data-list-rendered-at]", timeout=UI_WAIT_MS)
            say("logged in; loading the list")
            await load_list(page, url, n)  # warm: the API's first list, the browser's caches
            runs = [await load_list(page, url, n) for _ in range(loads)]
            await browser.close()
    fetched = [f for f, _ in runs]
    ui = [r for _, r in runs]
    kubectl = [kubectl_get(kubeconfig, ns) for _ in range(loads)]
    ui_ms, kubectl_ms = statistics.median(ui), statistics.median(kubectl)
    print()
    print(f"UI list of {n} Applications, navigation to all rows rendered (median of {loads}):")
    print(f"  ui       {ui_ms:7.0f} ms   (runs: {', '.join(f'{v:.0f}' for v in ui)})")
    print(
        f"  kubectl  {kubectl_ms:7.0f} ms   (kubectl get applications.tether.dev -n NS; runs: "
        f"{', '.join(f'{v:.0f}' for v in kubectl)})"
    )
    print(f"  ratio    {ui_ms / kubectl_ms:7.2f} x kubectl")
    print(
        f"  of which: the API's answer read at {statistics.median(fetched):.0f} ms, the rows "
        f"built in {statistics.median(r - f for f, r in runs):.0f} ms"
    )
    met = ui_ms < TARGET_MS
    print(f"target < 1 s: {'MET' if met else 'NOT MET'}")
    return 0 if met else 1


Measure = Callable[[KubeClient, str, str, int, int], Awaitable[int]]


async def with_apps(prefix: str, measure: Measure) -> int:
    """Parses ``--apps``/``--loads``, creates that many Applications in a fresh namespace
    (with a Lease held elsewhere, so tether runs as a standby), runs ``measure(kube,
    kubeconfig, ns, apps, loads)`` and removes everything; the exit code is ``measure``'s."""
    parser = argparse.ArgumentParser(description=(sys.modules["__main__"].__doc__ or "").strip())
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    cluster = Cluster()
    cluster.up()
    kubeconfig = str(cluster.p.kubeconfig)
    kube = await KubeClient.connect(kubeconfig)
    ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
    try:
        for crd in crd_manifests():
            await kube.apply(crd)
        await kube.wait_for_resource(API_VERSION, "Application")
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        await hold_lease(kube, ns)
        say(f"creating {args.apps} Applications in {ns}")
        await create_apps(kube, ns, args.apps)
        return await measure(kube, kubeconfig, ns, args.apps, args.loads)
    finally:
        await release(kube, ns)
        with contextlib.suppress(KubeError):
            await kube.delete("v1", "Namespace", ns, propagation="Background")
        await kube.close()


async def main() -> int:
    return await with_apps("ui-bench", measure)


async def release(kube: KubeClient, ns: str) -> None:
    """Finalizers off (a standby adds none, but a leader elsewhere might have)."""
    with contextlib.suppress(KubeError):
        items, _ = await kube.list(API_VERSION, "Application", ns)
        for app in items:
            if (app.get("metadata") or {}).get("finalizers"):
                await kube.merge_patch(app, {"metadata": {"finalizers": None}})


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
