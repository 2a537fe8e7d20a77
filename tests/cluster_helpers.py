"""Helpers shared by the tests that run against the real control plane: the ``tether``
command and ``tether controller`` as real processes, Applications and their status, waiting
on values, and manifests several tests deploy.

conftest.py registers this module as a plugin, so its fixtures (``home``, ``receiver``,
``processes``) need no import."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import yaml
from aiohttp import web
from devcluster.gitserver import GitServer, RepoHandle
from devcluster.procs import free_port
from devcluster.webhook import github_push as signed_push

from tether.api.application import API_VERSION, crd_manifests, new_application
from tether.controller.runtime import RuntimeOptions
from tether.errors import KubeError
from tether.kube import KubeClient
from tether.model import Obj

REPO = Path(__file__).resolve().parent.parent
TETHER = str(REPO / ".venv" / "bin" / "tether")
WAIT = 90.0  # bounds every wait; never a performance threshold

T = TypeVar("T")


# ---- the tether command and controller as processes ----------------------------------------


REMOTE_NEVER_LOADS = ("aiohttp", "pygit2", "tether.engine", "tether.kube.client", "tether.render")
"""What a command through the API (``tether --server``) never needs: an HTTP library whose
import costs more than its requests, Git, the engine, the Kubernetes client, the renderers."""


async def tether_loading(
    *args: str, modules: tuple[str, ...] = ("aiohttp",), env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Runs ``tether args`` in a child interpreter (without blocking the event loop: a server
    in this process answers it): its result, and which of ``modules`` it had imported when
    it exited (written last on its stderr, not part of ``result.stderr``)."""
    code = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: sys.stderr.write('\\n' + json.dumps([m for m in {modules!r} "
        "if m in sys.modules])))\n"
        "from tether.cli.main import main\n"
        "sys.argv = ['tether', *sys.argv[1:]]\n"
        "main()\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    rest, _, last = err.decode().rstrip().rpartition("\n")
    done = subprocess.CompletedProcess(list(args), proc.returncode or 0, out.decode(), rest)
    return done, json.loads(last)


async def run_tether(kubeconfig: str, *args: str) -> tuple[int, str]:
    """Runs the real `tether` command; returns its exit code and its output."""
    proc = await asyncio.create_subprocess_exec(
        TETHER,
        "--kubeconfig",
        kubeconfig,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


class ControllerProcess:
    """``tether controller`` as a child process, stopped by its own PID only. It watches
    ``namespace`` (None: the one its environment names, as in a Pod); ``env`` is added to
    this process's environment."""

    def __init__(
        self,
        tmp: Path,
        name: str,
        kubeconfig: str,
        namespace: str | None,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.log = tmp / f"{name}.log"
        self.audit_db = tmp / f"{name}-audit.db"
        self.args = [
            TETHER,
            "controller",
            "--kubeconfig",
            kubeconfig,
            *(["--namespaces", namespace] if namespace is not None else []),
            "--http-host",
            "127.0.0.1",
            "--http-port",
            str(self.port),
            "--audit-db",
            str(self.audit_db),
            "--cache-dir",
            str(tmp / f"{name}-git"),
            *extra,
        ]
        self.env = {**os.environ, **env} if env is not None else None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ControllerProcess:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.args,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no chance to write status, release a lease or close the audit DB."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def output(self) -> str:
        """Everything it has logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, n: int = 30) -> str:
        lines = self.output().splitlines()
        return f"--- {self.name} log ({self.log}):\n" + "\n".join(lines[-n:])

    async def metric(self, name: str) -> float | None:
        """A gauge from its /metrics; None until it serves HTTP. Scraped with the token of its
        kubeconfig's user (a scrape needs a token allowed to get /metrics)."""
        config = yaml.safe_load(Path(self.args[self.args.index("--kubeconfig") + 1]).read_text())
        token = next((u["user"].get("token") for u in config.get("users") or []), None)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{self.port}/metrics", headers=headers) as resp,
            ):
                text = await resp.text()
        except aiohttp.ClientError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None


@pytest.fixture
def processes() -> Iterator[list[ControllerProcess]]:
    """Controller processes a test starts; each is stopped (by PID) afterwards."""
    procs: list[ControllerProcess] = []
    yield procs
    for p in procs:
        p.stop()


# ---- a namespace of Applications, notifications and webhooks ------------------------------

WEBHOOK_SECRET = "webhook-test-secret"


class Receiver:
    """A real HTTP endpoint standing in for a chat or alerting webhook."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook/{token}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()


@pytest.fixture
async def home(kube: KubeClient, git_server: GitServer) -> AsyncIterator[str]:
    """A namespace of Applications of its own, with repo credentials and webhook secret."""
    for crd in crd_manifests():
        await kube.apply(crd)
    await kube.wait_for_resource(API_VERSION, "Application")
    ns = f"tc-{uuid.uuid4().hex[:8]}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    base = git_server.http_url("x").rsplit("/", 1)[0]
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "git-creds",
                "namespace": ns,
                "labels": {"tether.dev/secret-type": "repository"},
            },
            "stringData": {"url": base, "username": "git", "password": git_server.token},
        }
    )
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "tether-webhook", "namespace": ns},
            "stringData": {"github.secret": WEBHOOK_SECRET},
        }
    )
    yield ns
    await release_applications(kube, ns)
    await kube.delete("v1", "Namespace", ns, propagation="Background")


async def release_applications(kube: KubeClient, ns: str, *names: str) -> None:
    """Takes the finalizers off the Applications (``names``, or all) a test leaves behind:
    with no controller left to run their cascade, they would never go (nor their namespace)."""
    items, _ = await kube.list(API_VERSION, "Application", ns)
    for app in items:
        if names and app["metadata"]["name"] not in names:
            continue
        if app["metadata"].get("finalizers"):
            with contextlib.suppress(KubeError):  # gone meanwhile
                await kube.merge_patch(app, {"metadata": {"finalizers": None}})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


async def notify_to(kube: KubeClient, home: str, receiver: Receiver) -> None:
    """Notifications of every event go to a real local HTTP receiver."""
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "tether-notifications", "namespace": home},
            "data": {
                "sinks": yaml.safe_dump(
                    [{"name": "alerts", "type": "webhook", "urlKey": "alerts-url"}]
                )
            },
        }
    )
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "tether-notifications", "namespace": home},
            "stringData": {"alerts-url": f"http://127.0.0.1:{receiver.port}/hook/s3cr3t"},
        }
    )


def runtime_options(home: str, tmp_path: Path, kubeconfig: str, **kw: Any) -> RuntimeOptions:
    return RuntimeOptions(
        kubeconfig=kubeconfig,
        namespaces=[home],
        http_host="127.0.0.1",
        http_port=0,
        audit_db=tmp_path / "audit.db",
        cache_dir=tmp_path / "git",
        **kw,
    )


def github_push(repo: RepoHandle, sha: str, branch: str = "main") -> tuple[bytes, dict[str, str]]:
    return signed_push(repo.http_url, sha, WEBHOOK_SECRET, branch=branch)


# ---- Applications and their status ---------------------------------------------------------


def new_app(
    name: str,
    ns: str,
    repo_url: str,
    dest: str,
    path: str = "app",
    interval: str = "1h",
    **policy: Any,
) -> Obj:
    """An Application polled every ``interval``; auto-sync with prune unless ``policy``
    (new_application's keywords) says otherwise."""
    policy = {"auto_sync": True, "prune": True, **policy}
    obj = new_application(name, ns, repo_url=repo_url, path=path, dest_namespace=dest, **policy)
    obj["metadata"]["annotations"] = {"tether.dev/refresh-interval": interval}
    return obj


async def app_status(kube: KubeClient, ns: str, name: str) -> dict[str, Any]:
    app = await kube.get(API_VERSION, "Application", name, ns)
    return dict((app or {}).get("status") or {})


def condition(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == ctype), None)


async def first_polls_done(rt: Any, key: tuple[str, str], *urls: str) -> None:
    """Waits until the controller has polled each of ``urls`` once and ``key`` is idle again.

    The first poll takes every ref as news and queues the apps with trigger ``poll``: a test
    that commits and sends a webhook must wait for it, or the poll may bring the commit in
    first and the sync is (rightly) named after the poll."""
    ctl = rt.controller
    assert ctl is not None

    async def done() -> bool:
        return all(ctl.poller.polled(u) for u in urls) and ctl.queue.idle(key)

    await eventually(done, 60, "first polls")


async def synced_to(kube: KubeClient, ns: str, name: str, sha: str) -> dict[str, Any] | None:
    """The status once the app is Synced to ``sha``, Healthy, with no condition left."""
    st = await app_status(kube, ns, name)
    ok = (
        (st.get("sync") or {}).get("status") == "Synced"
        and (st.get("sync") or {}).get("revision") == sha
        and (st.get("health") or {}).get("status") == "Healthy"
        and (st.get("operationState") or {}).get("phase") == "Succeeded"
        and not st.get("conditions")
    )
    return st if ok else None


# ---- waiting ------------------------------------------------------------------------------


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 30, what: str = "condition"
) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.1)


async def now(value: T) -> T:
    """``value`` as a check: for a condition read anew each time a lambda is called."""
    return value


async def equals(value: Awaitable[object], want: object) -> bool:
    return bool(await value == want)


# ---- manifests ------------------------------------------------------------------------------


def cm_yaml(name: str, data: dict[str, str]) -> str:
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
    )


WEB_DEPLOYMENT_HEAD = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
"""
"""A Deployment ``web`` of one replica, up to its pod spec (``    spec:`` follows)."""

WEB_DEPLOYMENT = WEB_DEPLOYMENT_HEAD + (
    '    spec: {containers: [{name: web, image: "nginx:1.27"}]}\n'
)


def widget_crd(group: str, plural: str, kind: str) -> Obj:
    """A namespaced CRD whose objects have ``spec.size``, an integer of at least 1."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural, "kind": kind},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
