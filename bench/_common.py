"""Shared pieces of the controller benchmarks (bench/drift.py, commit.py, scale.py).

Each benchmark runs `tether controller` as a real subprocess against the local control plane,
on namespaces of its own (named after a fresh run id), and removes what it created. Nothing
here listens anywhere but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devcluster.cluster import Cluster  # noqa: E402
from devcluster.gitserver import GitServer, RepoHandle  # noqa: E402
from devcluster.procs import free_port  # noqa: E402
from devcluster.webhook import github_push as signed_push  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from tether.api.application import API_VERSION, crd_manifests  # noqa: E402
from tether.errors import KubeError  # noqa: E402
from tether.kube import KubeClient  # noqa: E402
from tether.model import Obj  # noqa: E402

BIN = REPO / ".venv" / "bin"
TETHER = BIN / "tether"
KUBECTL = BIN / "kubectl"
WEBHOOK_SECRET = "bench-webhook-secret"
WRITE_VERBS = ("PATCH", "POST", "PUT", "DELETE")


def say(msg: str) -> None:
    """Progress output: timestamped, flushed at once."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def new_run_id() -> str:
    return uuid.uuid4().hex[:6]


# ---- numbers -----------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100), linear between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def stats_line(values: Sequence[float]) -> str:
    return (
        f"p50 {ms(percentile(values, 50))}, p95 {ms(percentile(values, 95))}, "
        f"max {ms(max(values))} (n={len(values)})"
    )


def parse_rfc3339(text: str) -> float:
    """'2026-01-02T03:04:05.678Z' → epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ---- manifests ---------------------------------------------------------------------------


def configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def dump_all(objs: Iterable[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(list(objs), sort_keys=False)


def application(
    name: str,
    namespace: str,
    *,
    repo_url: str,
    path: str,
    dest_namespace: str,
    self_heal: bool = False,
    refresh_interval: str = "",
) -> Obj:
    """An auto-synced Application (with self-heal when asked)."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if refresh_interval:
        meta["annotations"] = {"tether.dev/refresh-interval": refresh_interval}
    return {
        "apiVersion": API_VERSION,
        "kind": "Application",
        "metadata": meta,
        "spec": {
            "source": {"repoURL": repo_url, "targetRevision": "HEAD", "path": path},
            "destination": {"namespace": dest_namespace},
            "syncPolicy": {"automated": {"prune": False, "selfHeal": self_heal}},
        },
    }


def is_synced(app: Obj | None, revision: str = "") -> bool:
    """Synced (to ``revision`` when given) after a successful sync."""
    st = (app or {}).get("status") or {}
    sync = st.get("sync") or {}
    op = st.get("operationState") or {}
    return (
        sync.get("status") == "Synced"
        and op.get("phase") == "Succeeded"
        and (not revision or sync.get("revision") == revision)
    )


def github_push(repo: RepoHandle, sha: str, branch: str = "main") -> tuple[bytes, dict[str, str]]:
    """A GitHub push delivery for ``sha``, signed with WEBHOOK_SECRET."""
    return signed_push(repo.http_url, sha, WEBHOOK_SECRET, branch=branch, pusher="bench")


async def wait_for(
    check: Callable[[], Awaitable[Any]], *, timeout: float, interval: float, what: str
) -> Any:
    """Calls ``check`` until it returns something true; raises TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = await check()
        except KubeError:
            value = None  # the shared API server restarting: keep asking until the deadline
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        await asyncio.sleep(interval)


# ---- metrics -----------------------------------------------------------------------------

Sample = tuple[str, tuple[tuple[str, str], ...]]


def parse_metrics(text: str) -> dict[Sample, float]:
    out: dict[Sample, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return out


def metric_sum(m: dict[Sample, float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lab), v in m.items() if n == name and want <= set(lab))


def kube_requests(m: dict[Sample, float]) -> dict[tuple[str, str], float]:
    """tether_kube_requests_total by (verb, code)."""
    out: dict[tuple[str, str], float] = {}
    for (n, lab), v in m.items():
        if n == "tether_kube_requests_total":
            d = dict(lab)
            out[(d["verb"], d["code"])] = v
    return out


def kube_writes(m: dict[Sample, float]) -> float:
    return sum(v for (verb, _), v in kube_requests(m).items() if verb in WRITE_VERBS)


# ---- API server availability -------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def control_plane_cpu() -> float:
    """CPU seconds used so far by the local control plane's processes (kube-apiserver,
    etcd): a delta of two readings is what a phase cost the API server."""
    return processes_cpu("kube-apiserver", "etcd")


def processes_cpu(*names: str) -> float:
    """CPU seconds used so far by every process whose name (``comm``) is one of ``names``."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if stat.read_text().strip() in names:
                total += cpu_seconds(int(stat.parent.name))
    return total


def machine_busy() -> tuple[float, float]:
    """(CPU seconds all of this machine's cores spent busy, seconds of the machine's cores
    in all) so far, from /proc/stat: a delta of two readings says how busy the cores were."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    idle = ticks[3] + ticks[4]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


QUIET_CORES = 0.1
"""Below this many cores busy, the control plane counts as quiet (it idles at 0.03-0.06)."""


async def idle_rate(seconds: float = 3.0) -> float:
    """The control plane's CPU per second (cores busy) over the next ``seconds``."""
    cpu = control_plane_cpu()
    await asyncio.sleep(seconds)
    return (control_plane_cpu() - cpu) / seconds


async def quiet(limit: float = QUIET_CORES, timeout: float = 300.0) -> float:
    """Waits until the control plane idles below ``limit`` cores and returns its idle rate.

    What a benchmark sends keeps the control plane busy after the last answer: namespaces
    being deleted, the ServiceAccounts and token Secrets kube-controller-manager writes into
    new namespaces, the Endpoints of new Services. Timed next, that work would be charged to
    whatever is measured after it, so each timed phase starts on a quiet control plane."""
    deadline = time.monotonic() + timeout
    rate = await idle_rate()
    while rate > limit and time.monotonic() < deadline:
        print(f"  waiting for a quiet control plane ({rate:.2f} cores busy)", flush=True)
        rate = await idle_rate(5.0)
    return rate


class ApiMonitor:
    """Asks the API server for /version every 0.25 s and remembers when it did not answer.

    The control plane is shared: another developer's test may restart the API server in the
    middle of a benchmark. A sample taken during such an outage measures the outage, so the
    benchmarks leave it out (and say so) instead of reporting it as tether's latency.
    """

    def __init__(self, kube: KubeClient, interval: float = 0.25) -> None:
        self.kube = kube
        self.interval = interval
        self.outages: list[list[float]] = []
        """[start, end] in time.monotonic(); end is inf while the server is still down."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.kube.request("GET", "/version", timeout=2)
                up = True
            except KubeError:
                up = False
            t = time.monotonic()
            down_now = bool(self.outages) and self.outages[-1][1] == math.inf
            if not up and not down_now:
                self.outages.append([t, math.inf])
                say("the API server stopped answering (restarted by another process?)")
            elif up and down_now:
                self.outages[-1][1] = t
                say(f"the API server answers again after {t - self.outages[-1][0]:.1f}s")
            await asyncio.sleep(self.interval)

    def down_between(self, t0: float, t1: float, margin: float = 0.5) -> float:
        """Seconds of outage overlapping [t0 - margin, t1 + margin] (monotonic times)."""
        a, b = t0 - margin, t1 + margin
        return sum(max(0.0, min(b, e) - max(a, s)) for s, e in self.outages)

    def disturbed(self, t0: float, t1: float) -> bool:
        return any(s <= t1 + 0.5 and e >= t0 - 0.5 for s, e in self.outages)

    async def wait_up(self, timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                await self.kube.request("GET", "/version", timeout=2)
                return True
            except KubeError:
                await asyncio.sleep(0.5)
        return False


# ---- the controller process --------------------------------------------------------------


@dataclass
class ControllerProcess:
    """`tether controller` as a subprocess; stopped only through the PID it started."""

    kubeconfig: str
    namespaces: list[str]
    workdir: Path
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    started_at: float = 0.0
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / "controller.log"

    @property
    def audit_db(self) -> Path:
        return self.workdir / "audit.db"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.port = free_port()
        self.starts += 1
        # TETHER_BENCH_PROFILE=DIR: each start runs under cProfile, stats in DIR/start-N.prof
        # (written on a clean stop; about twice as slow: for finding hot spots, not timing).
        prof = os.environ.get("TETHER_BENCH_PROFILE")
        runner = [sys.executable, "-m", "cProfile", "-o", f"{prof}/start-{self.starts}.prof"]
        cmd = [
            *(runner if prof else []),
            str(TETHER),
            "controller",
            "--kubeconfig",
            self.kubeconfig,
            "--namespaces",
            ",".join(self.namespaces),
            "--http-host",
            "127.0.0.1",
            "--http-port",
            str(self.port),
            "--audit-db",
            str(self.audit_db),
            "--cache-dir",
            str(self.workdir / "git-cache"),
            "--log-format",
            "json",
            # Scraped often, on loopback: no TokenReview per scrape skews what is measured.
            "--metrics-public",
            *self.extra_args,
        ]
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts} at {time.ctime()}: {' '.join(cmd)}\n".encode())
            log.flush()
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise RuntimeError(f"the controller exited; log: {self.log_path}\n{self.log_tail()}")

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    async def _get(self, http: aiohttp.ClientSession, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.port}{path}"
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=30)) as resp:
            return resp.status, await resp.text()

    async def wait_ready(self, http: aiohttp.ClientSession, timeout: float = 120) -> float:
        """Seconds from start until /readyz answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                status, _ = await self._get(http, "/readyz")
                if status == 200:
                    return time.monotonic() - self.started_at
            await asyncio.sleep(0.05)
        raise TimeoutError(f"controller not ready within {timeout:.0f}s; log: {self.log_path}")

    async def metrics(self, http: aiohttp.ClientSession) -> dict[Sample, float]:
        return (await self.scrape(http))[1]

    async def scrape(self, http: aiohttp.ClientSession) -> tuple[float, dict[Sample, float]]:
        """One ``/metrics`` scrape: milliseconds until its whole body was read (what a
        Prometheus server waits for), and its samples, parsed afterwards (parsing 10,000
        samples here takes longer than the controller takes to serve them)."""
        self.check_alive()
        start = time.perf_counter()
        status, text = await self._get(http, "/metrics")
        took = (time.perf_counter() - start) * 1000
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        return took, parse_metrics(text)

    def rss_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MiB from /proc/<pid>/status."""
        vals = {"VmRSS": math.nan, "VmHWM": math.nan}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in vals:
                vals[key] = int(rest.split()[0]) / 1024
        return vals["VmRSS"], vals["VmHWM"]

    def stop(self, timeout: float = 30) -> float:
        """SIGTERM to the PID we started (SIGKILL after ``timeout``); returns seconds taken."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        t0 = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            say(f"controller {self.proc.pid} ignored SIGTERM for {timeout:.0f}s: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        return time.monotonic() - t0


# ---- the whole setup ---------------------------------------------------------------------


@dataclass
class Env:
    kube: KubeClient
    git: GitServer
    tmp: Path
    kubeconfig: str
    run_id: str
    monitor: ApiMonitor
    namespaces: list[str] = field(default_factory=list)
    """Created here, deleted at the end (in reverse order)."""
    apps: list[tuple[str, str]] = field(default_factory=list)
    """(namespace, name) of Applications created here, deleted at the end."""
    controllers: list[ControllerProcess] = field(default_factory=list)

    async def namespace(self, name: str) -> str:
        await self.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        self.namespaces.append(name)
        return name

    async def home(self, name: str) -> str:
        """A namespace for Applications, with repository credentials and the webhook Secret."""
        await self.namespace(name)
        base = self.git.http_url("x").rsplit("/", 1)[0]
        await self.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "bench-git-creds",
                    "namespace": name,
                    "labels": {"tether.dev/secret-type": "repository"},
                },
                "stringData": {"url": base, "username": "git", "password": self.git.token},
            }
        )
        await self.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "tether-webhook", "namespace": name},
                "stringData": {"github.secret": WEBHOOK_SECRET},
            }
        )
        return name

    async def create_apps(self, objs: list[Obj], concurrency: int = 32) -> None:
        sem = asyncio.Semaphore(concurrency)

        async def one(o: Obj) -> None:
            async with sem:
                await self.kube.apply(o)
            self.apps.append((o["metadata"]["namespace"], o["metadata"]["name"]))

        await asyncio.gather(*(one(o) for o in objs))

    def controller(
        self, namespaces: list[str], extra_args: list[str] | None = None
    ) -> ControllerProcess:
        workdir = self.tmp / f"controller-{len(self.controllers)}"
        workdir.mkdir(parents=True)
        c = ControllerProcess(self.kubeconfig, namespaces, workdir, list(extra_args or []))
        self.controllers.append(c)
        return c

    async def cleanup(self) -> None:
        for c in self.controllers:
            c.stop()
        if not await self.monitor.wait_up(120):
            say(
                "cleanup: the API server does not answer; left behind: "
                + ", ".join(self.namespaces)
            )
            return
        sem = asyncio.Semaphore(32)

        async def retrying(call: Callable[[], Awaitable[Any]]) -> None:
            for attempt in range(5):
                try:
                    await call()
                    return
                except KubeError as e:
                    if attempt == 4:
                        say(f"cleanup: {e}")
                    await self.monitor.wait_up(60)

        async def delete_app(ns: str, name: str) -> None:
            async with sem:
                # The controller is stopped: its cascade finalizer would hold the app (and
                # so its namespace) for ever; the namespaces' deletion removes the objects.
                await retrying(lambda: self._drop_finalizers(ns, name))
                await retrying(lambda: self.kube.delete(API_VERSION, "Application", name, ns))

        if self.apps:
            say(f"cleanup: deleting {len(self.apps)} Application(s)")
            await asyncio.gather(*(delete_app(ns, n) for ns, n in self.apps))
        if self.namespaces:
            say(f"cleanup: deleting {len(self.namespaces)} namespace(s)")

        async def delete_ns(ns: str) -> None:
            async with sem:
                await retrying(
                    lambda: self.kube.delete("v1", "Namespace", ns, propagation="Background")
                )

        await asyncio.gather(*(delete_ns(ns) for ns in reversed(self.namespaces)))

    async def app_synced(self, ns: str, name: str, revision: str = "") -> bool:
        """The Application is Synced (to ``revision`` when given) after a successful sync."""
        return is_synced(await self.kube.get(API_VERSION, "Application", name, ns), revision)

    async def _drop_finalizers(self, ns: str, name: str) -> None:
        app = await self.kube.get(API_VERSION, "Application", name, ns)
        if app is not None and (app.get("metadata") or {}).get("finalizers"):
            await self.kube.merge_patch(app, {"metadata": {"finalizers": None}})


async def wait_namespaces_gone(kubeconfig: str, names: Sequence[str], timeout: float) -> bool:
    """Waits until the namespaces (being deleted in the background) are gone, so the next
    measurement does not share the API server with their deletion; False after ``timeout``."""
    if not names:
        return True
    t0 = time.monotonic()
    kube = await KubeClient.connect(kubeconfig)
    try:
        left = list(names)
        while left and time.monotonic() - t0 < timeout:
            try:
                found = await asyncio.gather(*(kube.get("v1", "Namespace", ns) for ns in left))
                left = [ns for ns, o in zip(left, found, strict=True) if o is not None]
            except (KubeError, TimeoutError) as e:  # busy deleting tens of thousands: ask again
                say(f"while waiting for the namespaces' deletion: {e}")
            if left:
                await asyncio.sleep(2.0)
        if left:
            say(f"{len(left)} namespace(s) still being deleted after {timeout:.0f}s; going on")
        else:
            say(f"namespaces of the last run gone after {time.monotonic() - t0:.0f}s")
        return not left
    finally:
        await kube.close()


@contextlib.asynccontextmanager
async def bench_env(prefix: str, keep_logs: bool = False) -> AsyncIterator[Env]:
    """Cluster up (idempotent), the CRDs, a private git server; cleans up on the way out."""
    cluster = Cluster()
    cluster.up()
    kubeconfig = str(cluster.p.kubeconfig)
    tmp = Path(tempfile.mkdtemp(prefix=f"tether-{prefix}-"))
    git = GitServer(tmp / "git")
    git.start()
    kube = await KubeClient.connect(kubeconfig)
    # The monitor asks through a client of its own, so the requests counted on ``kube`` (a
    # sync's, in bench/sync.py) are not mixed with its GET /version four times a second.
    monitor_kube = await KubeClient.connect(kubeconfig)
    env = Env(kube, git, tmp, kubeconfig, new_run_id(), ApiMonitor(monitor_kube))
    env.monitor.start()
    failed = False
    try:
        for crd in crd_manifests():
            await kube.apply(crd)
        await kube.wait_for_resource(API_VERSION, "Application")
        yield env
    except BaseException:
        failed = True
        raise
    finally:
        try:
            await env.cleanup()
        finally:
            await env.monitor.stop()
            await monitor_kube.close()
            await kube.close()
            git.stop()
            if keep_logs or failed:
                say(f"logs kept in {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
