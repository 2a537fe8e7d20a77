"""The commands that compare and sync (``tether app diff``, ``app sync``) send their requests
through ``tether.kube.threaded`` (the one-shot client's connections in worker threads), against
the real control plane and git server: the same answers, no aiohttp loaded for a diff, a
clean error for an unreachable server, and a server URL with a path of its own (a proxy in
front of the API server, as Rancher's ``/k8s/clusters/<id>``) reached through that path by
every client."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import ssl
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from devcluster.gitserver import RepoHandle

from cluster_helpers import TETHER, cm_yaml, new_app, tether_loading
from tether.api.application import API_VERSION
from tether.kube import KubeClient
from tether.kube.config import load_config

PREFIX = "/k8s/clusters/c-test"


def tether(kubeconfig: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [TETHER, "--kubeconfig", kubeconfig, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def manual_app(kube: KubeClient, home: str, repo: RepoHandle, dest: str) -> str:
    repo.commit({"app/cm.yaml": cm_yaml("settings", {"mode": "blue"})})
    await kube.apply(new_app("threaded", home, repo.http_url, dest, "app", auto_sync=False))
    return "threaded"


async def test_diff_loads_no_aiohttp_and_sync_then_diff_agree(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    app = await manual_app(kube, home, git_repo, namespace)

    p, loaded = await tether_loading("--kubeconfig", kubeconfig, "-n", home, "app", "diff", app)
    assert p.returncode == 1, p.stdout + p.stderr  # the ConfigMap is not in the cluster yet
    assert "settings" in p.stdout and "mode: blue" in p.stdout, p.stdout
    assert loaded == [], "a diff sends its requests without aiohttp"

    synced = tether(kubeconfig, "-n", home, "app", "sync", app, "--timeout", "60")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    cm = await kube.get("v1", "ConfigMap", "settings", namespace)
    assert cm is not None and cm["data"] == {"mode": "blue"}

    again = tether(kubeconfig, "-n", home, "app", "diff", app)
    assert again.returncode == 0, again.stdout + again.stderr


async def test_diff_against_an_unreachable_server_is_a_clean_error(
    kubeconfig: str, tmp_path: Path
) -> None:
    config = yaml.safe_load(Path(kubeconfig).read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))

    p = tether(str(path), "-n", "default", "app", "diff", "anything")
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    assert p.stderr.startswith("error: "), p.stderr
    assert "127.0.0.1:1" in p.stderr, p.stderr


class PathProxy:
    """A real reverse proxy on loopback (plain HTTP, in a thread) that serves the API server
    under ``PREFIX``, as a proxy in front of a cluster does: a request under it goes to the API
    server with its headers (the token) and body; any other path is answered 404 and
    remembered."""

    def __init__(self, kubeconfig: str) -> None:
        upstream = load_config(kubeconfig)
        target = urllib.parse.urlsplit(upstream.server)
        context = upstream.tls(None) or ssl.create_default_context()
        self.strays: list[str] = []
        self.forwarded: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if not self.path.startswith(PREFIX + "/"):
                    proxy.strays.append(self.path)
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path = self.path.removeprefix(PREFIX)
                proxy.forwarded.append(path)
                conn = http.client.HTTPSConnection(
                    target.hostname or "", target.port, context=context, timeout=60
                )
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("authorization", "content-type", "accept", "user-agent")
                }
                conn.request(self.command, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                self.send_response(resp.status)
                self.send_header("Content-Type", resp.getheader("Content-Type") or "")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{PREFIX}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def path_proxy(kubeconfig: str) -> Iterator[PathProxy]:
    proxy = PathProxy(kubeconfig)
    yield proxy
    proxy.stop()


async def test_a_server_url_with_a_path_is_reached_through_it(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    path_proxy: PathProxy,
    tmp_path: Path,
) -> None:
    app = await manual_app(kube, home, git_repo, namespace)
    config = yaml.safe_load(Path(kubeconfig).read_text())
    cluster = config["clusters"][0]["cluster"]
    cluster.pop("certificate-authority-data", None)
    cluster["server"] = path_proxy.url
    proxied = tmp_path / "kubeconfig"
    proxied.write_text(yaml.safe_dump(config))

    got = tether(str(proxied), "-n", home, "app", "get", app, "-o", "json")  # one-shot client
    assert got.returncode == 0, got.stdout + got.stderr
    assert json.loads(got.stdout)["metadata"]["name"] == app

    diff = tether(str(proxied), "-n", home, "app", "diff", app)  # the threaded client
    assert diff.returncode == 1, diff.stdout + diff.stderr
    assert "settings" in diff.stdout

    async with await KubeClient.connect(str(proxied)) as through:  # the aiohttp client
        obj = await through.get(API_VERSION, "Application", app, home)
    assert obj is not None and obj["metadata"]["name"] == app

    assert path_proxy.strays == [], "every request went under the server URL's path"
    assert any(
        p.startswith(f"/apis/tether.dev/v1alpha1/namespaces/{home}/applications/{app}")
        for p in path_proxy.forwarded
    ), path_proxy.forwarded
