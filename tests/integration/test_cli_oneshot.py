"""``tether app list`` and ``app get`` through the one-shot client, against the real control
plane: the same output as before, every kind of credential the kubeconfig may hold (a token,
a client certificate the cluster's CA signed, an exec plugin), a rejected token and an
unreachable server as a clean ``error:`` with exit 2, an HTTP proxy, and no event loop or
aiohttp loaded."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster_helpers import TETHER
from identities import grant, service_account_token
from kube_pki import client_cert
from tether.api.application import API_VERSION, crd_manifests, new_application
from tether.kube import KubeClient
from tether.kube.config import load_kubeconfig
from tether.kube.oneshot import OneShot

REPO_URL = "https://user:s3cret@git.example.com/team/demo.git"
READ_APPS = [{"apiGroups": ["tether.dev"], "resources": ["applications"], "verbs": ["get"]}]


def tether(*args: str, kubeconfig: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "KUBECONFIG": kubeconfig}
    return subprocess.run(
        [TETHER, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def assert_clean_error(p: subprocess.CompletedProcess[str], *said: str) -> None:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    assert p.stderr.startswith("error: "), p.stderr
    for s in said:
        assert s in p.stderr, (s, p.stderr)


def write_kubeconfig(path: Path, dev: str, user: dict[str, Any]) -> str:
    """A kubeconfig for the dev cluster with ``user`` as its identity."""
    config = yaml.safe_load(Path(dev).read_text())
    config["users"] = [{"name": "u", "user": user}]
    for c in config["contexts"]:
        c["context"]["user"] = "u"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture(scope="module")
async def crds(kube: KubeClient) -> None:
    for crd in crd_manifests():
        await kube.apply(crd)
    await kube.wait_for_resource(API_VERSION, "Application")


@pytest.fixture
async def app(kube: KubeClient, crds: None, namespace: str) -> str:
    name = "oneshot"
    await kube.apply(new_application(name, namespace, repo_url=REPO_URL, path="app"))
    return name


async def test_list_and_get_read_the_app_and_mask_its_credentials(
    kubeconfig: str, namespace: str, app: str
) -> None:
    table = tether("app", "list", "-n", namespace, kubeconfig=kubeconfig)
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split() == ["NAME", "PROJECT", "SYNC", "HEALTH", "REVISION", "REPO", "PATH"]
    assert row.split() == [
        app,
        "default",
        "Unknown",
        "Unknown",
        "https://***@git.example.com/team/demo.git",
        "app",
    ]

    listed = json.loads(
        tether("app", "list", "-n", namespace, "-o", "json", kubeconfig=kubeconfig).stdout
    )
    assert [i["metadata"]["name"] for i in listed["items"]] == [app]
    assert "s3cret" not in json.dumps(listed)

    got = tether("app", "get", app, "-n", namespace, "-o", "json", kubeconfig=kubeconfig)
    doc = json.loads(got.stdout)
    assert doc["spec"]["source"]["repoURL"] == "https://***@git.example.com/team/demo.git"
    assert "managedFields" not in doc["metadata"]

    shown = tether("app", "get", app, "-n", namespace, kubeconfig=kubeconfig)
    assert shown.returncode == 0, shown.stderr
    assert f"Name:        {namespace}/{app}" in shown.stdout
    assert "Sync:        Unknown (never synced)" in shown.stdout
    assert "s3cret" not in shown.stdout


async def test_a_missing_app_and_a_missing_namespace_are_errors_with_a_hint(
    kubeconfig: str, namespace: str, crds: None
) -> None:
    missing = tether("app", "get", "nope", "-n", namespace, kubeconfig=kubeconfig)
    assert_clean_error(missing, f"Application {namespace}/nope not found", "tether app list")
    empty = tether("app", "list", "-n", namespace, "-o", "yaml", kubeconfig=kubeconfig)
    assert empty.returncode == 0 and yaml.safe_load(empty.stdout)["items"] == []


async def test_a_rejected_token_is_a_clean_error_saying_so(
    kubeconfig: str, namespace: str, tmp_path: Path
) -> None:
    bad = write_kubeconfig(tmp_path / "bad-token", kubeconfig, {"token": "expired-or-wrong"})
    for args in (("app", "list"), ("app", "get", "x")):
        p = tether(*args, "-n", namespace, kubeconfig=bad)
        assert_clean_error(p, "401", "the credentials in the kubeconfig were rejected")


async def test_an_unreachable_server_is_a_clean_error_naming_it(
    kubeconfig: str, tmp_path: Path
) -> None:
    config = yaml.safe_load(Path(kubeconfig).read_text())
    for c in config["clusters"]:
        c["cluster"]["server"] = "https://127.0.0.1:1"
    path = tmp_path / "unreachable"
    path.write_text(yaml.safe_dump(config))
    for args in (("app", "list"), ("app", "get", "x")):
        p = tether(*args, kubeconfig=str(path))
        assert_clean_error(p, "cannot reach the Kubernetes API at https://127.0.0.1:1")


async def test_a_server_certificate_from_another_ca_is_a_clean_error(
    kubeconfig: str, tmp_path: Path
) -> None:
    config = yaml.safe_load(Path(kubeconfig).read_text())
    for c in config["clusters"]:
        c["cluster"].pop("certificate-authority-data", None)  # the system's CAs: not this one
    path = tmp_path / "system-cas"
    path.write_text(yaml.safe_dump(config))
    p = tether("app", "list", kubeconfig=str(path))
    assert_clean_error(p, "cannot reach the Kubernetes API at", "CERTIFICATE_VERIFY_FAILED")


async def test_a_client_certificate_signed_by_the_cluster_ca_lists_the_apps(
    kubeconfig: str, namespace: str, app: str, tmp_path: Path
) -> None:
    from devcluster.cluster import Cluster

    pki = Cluster().p.pki
    client_cert(tmp_path, (pki / "ca.crt", pki / "ca.key"), "cert-admin", "system:masters")
    user = {"client-certificate": "client.crt", "client-key": "client.key"}  # relative paths
    path = write_kubeconfig(tmp_path / "kubeconfig", kubeconfig, user)
    p = tether("app", "list", "-n", namespace, "-o", "yaml", kubeconfig=path)
    assert p.returncode == 0, p.stderr
    assert [i["metadata"]["name"] for i in yaml.safe_load(p.stdout)["items"]] == [app]


async def test_an_exec_plugins_token_reads_with_its_rbac(
    kube: KubeClient, kubeconfig: str, namespace: str, app: str, tmp_path: Path
) -> None:
    token = await service_account_token(kube, namespace, "reader")
    plugin = tmp_path / "plugin.py"
    answer = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": token},
    }
    plugin.write_text(f"import json\nprint(json.dumps({answer!r}))\n")
    exec_ = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": sys.executable,
        "args": [str(plugin)],
    }
    path = write_kubeconfig(tmp_path / "kubeconfig", kubeconfig, {"exec": exec_})
    refused = tether("app", "get", app, "-n", namespace, kubeconfig=path)
    assert_clean_error(refused, "403", "the identity lacks RBAC permission")

    await grant(kube, namespace, (namespace, "reader"), READ_APPS)
    p = tether("app", "get", app, "-n", namespace, "-o", "json", kubeconfig=path)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["metadata"]["name"] == app


async def test_list_and_get_load_no_event_loop_nor_aiohttp(
    kubeconfig: str, namespace: str, app: str
) -> None:
    code = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: sys.stderr.write(json.dumps([m for m in "
        "('asyncio', 'aiohttp', 'tether.kube.client', 'tether.engine') if m in sys.modules])))\n"
        "from tether.cli.main import main\n"
        "sys.argv = ['tether', *sys.argv[1:]]\n"
        "main()\n"
    )
    for args in (("app", "list"), ("app", "get", app)):
        p = subprocess.run(
            [sys.executable, "-c", code, "--kubeconfig", kubeconfig, *args, "-n", namespace],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert p.returncode == 0, p.stderr
        assert app in p.stdout
        assert json.loads(p.stderr) == [], args


async def test_the_one_shot_client_counts_its_requests_and_keeps_one_connection(
    kubeconfig: str, namespace: str, app: str
) -> None:
    with OneShot.connect(kubeconfig) as client:
        assert client.get(API_VERSION, "Application", "nope", namespace) is None
        items, rv = client.list(API_VERSION, "Application", namespace)
        first = client._link._conn
        again = client.get(API_VERSION, "Application", app, namespace)
        assert client._link._conn is first  # kept alive: one TLS handshake for every request

    assert [i["metadata"]["name"] for i in items] == [app] and rv
    assert again is not None and again["kind"] == "Application"
    # discovery of tether.dev/v1alpha1 once, the missing app, the list, the app
    assert client.requests == {("GET", 200): 3, ("GET", 404): 1}


class ConnectProxy:
    """A real HTTP CONNECT proxy on loopback, in a thread: tunnels each connection to the
    address asked for and remembers what was asked. Stops with the test."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client, contextlib.suppress(OSError):
            head = b""
            while b"\r\n\r\n" not in head:
                head += client.recv(4096)
            target = head.split(b" ")[1].decode()
            self.asked.append(target)
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=30) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self._pipe(client, upstream)

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        ends = [a, b]
        while True:
            ready, _, _ = select.select(ends, [], [], 30)
            if not ready:
                return
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)

    def close(self) -> None:
        self.listener.close()


async def test_requests_go_through_an_http_proxy_when_one_is_configured(
    kubeconfig: str, namespace: str, app: str
) -> None:
    proxy = ConnectProxy()
    try:
        config = load_kubeconfig(kubeconfig)
        via = dataclasses.replace(config, proxy=f"http://127.0.0.1:{proxy.port}")
        with OneShot(via) as client:
            got = client.get(API_VERSION, "Application", app, namespace)
    finally:
        proxy.close()
    assert got is not None and got["metadata"]["name"] == app
    assert proxy.asked == [config.server.removeprefix("https://")]  # one tunnel, kept alive
