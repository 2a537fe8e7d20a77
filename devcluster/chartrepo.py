"""A real HTTP Helm chart repository for tests: serves a directory (``index.yaml`` and chart
archives made by the real ``helm package`` and ``helm repo index``) on 127.0.0.1, with
optional HTTP Basic auth and a log of every request to assert on."""

from __future__ import annotations

import base64
import hmac
import os
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HELM = Path(sys.executable).parent / "helm"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    authorization: str
    """The Authorization header as received, ``""`` when none."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    repo: ChartRepo


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self, body: bool) -> None:
        repo = self.server.repo
        auth = self.headers.get("Authorization", "")
        with repo.lock:
            repo.requests.append(Request(self.command, self.path, auth))
        if repo.username and not hmac.compare_digest(auth, repo.expected_auth):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="charts"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = self.path.split("?", 1)[0]
        redirect = repo.redirects.get(path)
        if redirect:
            self.send_response(302)
            self.send_header("Location", redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        target = (repo.root / path.lstrip("/")).resolve()
        if not target.is_relative_to(repo.root.resolve()) or not target.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = target.read_bytes()
        self.send_response(200)
        ctype = "application/x-yaml" if target.suffix == ".yaml" else "application/gzip"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)


class ChartRepo:
    """Serves ``root`` over HTTP on a free loopback port until ``stop()``."""

    def __init__(
        self, root: Path, *, username: str = "", password: str = "", tls: bool = False
    ) -> None:
        self.root = root
        self.username = username
        self.password = password
        self.tls = tls
        """Serve HTTPS with a fresh self-signed certificate (for 127.0.0.1)."""
        self.requests: list[Request] = []
        self.redirects: dict[str, str] = {}
        """Request path -> Location answered with a 302 (set by tests)."""
        self.lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def expected_auth(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"

    @property
    def port(self) -> int:
        assert self._server is not None, "the chart repository is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> ChartRepo:
        self.root.mkdir(parents=True, exist_ok=True)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.repo = self
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self_signed_cert(self.root.parent / "tls"))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> ChartRepo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests_for(self, suffix: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path.split("?", 1)[0].endswith(suffix)]

    def add_chart(self, chart_dir: Path, version: str, *, app_version: str = "") -> Path:
        """Packages ``chart_dir`` as ``version`` into the repository (``helm package``)."""
        argv = [str(HELM), "package", str(chart_dir), "-d", str(self.root), "--version", version]
        if app_version:
            argv += ["--app-version", app_version]
        helm(*argv)
        name = chart_name(chart_dir)
        return self.root / f"{name}-{version}.tgz"

    def index(self, url: str = "") -> Path:
        """(Re)writes ``index.yaml`` for the archives in the repository (``helm repo
        index``); ``url`` makes the archive URLs absolute under it (another server)."""
        argv = [str(HELM), "repo", "index", str(self.root)]
        if url:
            argv += ["--url", url]
        helm(*argv)
        return self.root / "index.yaml"


def self_signed_cert(directory: Path) -> tuple[str, str]:
    """A certificate and key for 127.0.0.1 made by openssl: (cert path, key path)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not cert.exists():
        argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        argv += ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        subprocess.run(
            [*argv, "-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return str(cert), str(key)


def chart_name(chart_dir: Path) -> str:
    for line in (chart_dir / "Chart.yaml").read_text().splitlines():
        if line.startswith("name:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    raise ValueError(f"{chart_dir}/Chart.yaml has no name")


def helm(*argv: str, env: dict[str, str] | None = None) -> str:
    """Runs helm with a throwaway home, so no user's repositories or registries leak in;
    ``env`` adds variables (a registry config for ``helm push``)."""
    home = Path(os.environ.get("TMPDIR", "/tmp")) / f"tether-chartrepo-helm-{os.getuid()}"
    full = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
        "HELM_REGISTRY_CONFIG": str(home / "registry.json"),
        **(env or {}),
    }
    done = subprocess.run(argv, env=full, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed: {done.stderr.strip()}")
    return done.stdout


def write_chart(root: Path, name: str, *, config_value: str = "hello") -> Path:
    """A small chart directory with one ConfigMap whose data comes from values."""
    chart = root / name
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text(
        f"apiVersion: v2\nname: {name}\ndescription: test chart\nversion: 0.1.0\n"
    )
    (chart / "values.yaml").write_text(f"greeting: {config_value}\n")
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
        "  chartVersion: {{ .Chart.Version | quote }}\n"
    )
    return chart
