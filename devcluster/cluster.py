"""The local control plane: etcd + kube-apiserver + kube-controller-manager + node simulator.

A developer and CI tool, not part of the tether package. Everything it starts is recorded
by PID in the state directory and stopped by those PIDs only.

    python -m devcluster.cluster up      # idempotent; writes .dev/kubeconfig
    python -m devcluster.cluster down    # stops what `up` started, deletes its data
    python -m devcluster.cluster status

Environment:
    TETHER_DEV_DIR            state directory (default: <repo>/.dev)
    TETHER_DEVCLUSTER_CACHE   where built Kubernetes binaries are cached (see build-k8s.sh)
    TETHER_APISERVER_PORT     fixed kube-apiserver port (default: a free one)
    TETHER_SIM_NODES          number of simulated nodes (default 2)
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from devcluster import postgres
from devcluster.procs import free_port, pid_alive, start_time, stop_pid, stop_pids

REPO = Path(__file__).resolve().parent.parent
K8S_VERSION = "1.20.2"
PATCH_ID = "reflect2-1.0.2-zerovalue"  # keep in sync with build-k8s.sh


class ClusterError(Exception):
    """A component failed; the message names it and its log."""


def dev_dir() -> Path:
    return Path(os.environ.get("TETHER_DEV_DIR", str(REPO / ".dev"))).resolve()


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "tether-devcluster"
    return Path(os.environ.get("TETHER_DEVCLUSTER_CACHE", str(default)))


def bin_dir() -> Path:
    return cache_dir() / f"k8s-{K8S_VERSION}-{PATCH_ID}" / "bin"


def log(msg: str) -> None:
    print(f"[devcluster] {msg}", file=sys.stderr, flush=True)


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Paths:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "cluster"

    @property
    def pki(self) -> Path:
        return self.data / "pki"

    @property
    def logs(self) -> Path:
        return self.data / "logs"

    @property
    def state(self) -> Path:
        return self.data / "state.json"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    def log_of(self, name: str) -> Path:
        return self.logs / f"{name}.log"


def _run(cmd: list[str], what: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise ClusterError(f"{what} failed: {' '.join(cmd[:3])}...: {r.stderr.strip()[-500:]}")


def make_pki(p: Paths) -> dict[str, str]:
    if shutil.which("openssl") is None:
        raise ClusterError("openssl not found: apt-get install openssl")
    pki = p.pki
    pki.mkdir(parents=True, exist_ok=True)
    _run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-keyout",
            str(pki / "ca.key"),
            "-out",
            str(pki / "ca.crt"),
            "-subj",
            "/CN=tether-devcluster-ca",
        ],
        "creating the cluster CA",
    )
    ext = pki / "apiserver.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
        "DNS:kubernetes.default.svc.cluster.local\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _run(
        [
            "openssl",
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(pki / "apiserver.key"),
            "-out",
            str(pki / "apiserver.csr"),
            "-subj",
            "/CN=kube-apiserver",
        ],
        "creating the apiserver key",
    )
    _run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            str(pki / "apiserver.csr"),
            "-CA",
            str(pki / "ca.crt"),
            "-CAkey",
            str(pki / "ca.key"),
            "-CAcreateserial",
            "-days",
            "3650",
            "-out",
            str(pki / "apiserver.crt"),
            "-extfile",
            str(ext),
        ],
        "signing the apiserver certificate",
    )
    _run(["openssl", "genrsa", "-out", str(pki / "sa.key"), "2048"], "creating the SA key")
    _run(
        ["openssl", "rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub")],
        "extracting the SA public key",
    )
    token = secrets.token_hex(24)
    (pki / "tokens.csv").write_text(f"{token},admin,admin,system:masters\n")
    for f in pki.iterdir():
        f.chmod(0o600)
    return {"token": token}


def write_kubeconfig(path: Path, server: str, ca_file: Path, token: str) -> None:
    ca = base64.b64encode(ca_file.read_bytes()).decode()
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "tether-dev", "cluster": {"server": server, "certificate-authority-data": ca}}
        ],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "tether-dev", "context": {"cluster": "tether-dev", "user": "admin"}}],
        "current-context": "tether-dev",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cfg, indent=2))  # JSON is valid YAML; kubectl reads it
    tmp.chmod(0o600)
    tmp.replace(path)


class Cluster:
    def __init__(self, root: Path | None = None) -> None:
        self.p = Paths(root or dev_dir())
        self.state: dict[str, object] = {}
        if self.p.state.exists():
            self.state = json.loads(self.p.state.read_text())

    # ---- state ---------------------------------------------------------------------------
    def _reload(self) -> None:
        self.state = json.loads(self.p.state.read_text()) if self.p.state.exists() else {}

    def _ours(self) -> dict[str, int]:
        """The recorded processes still running that are the ones we started: a PID whose
        start time differs was reused by an unrelated process, which is left alone."""
        starts = self.state.get("start_times") or {}
        assert isinstance(starts, dict)
        return {
            name: pid
            for name, pid in self._pids().items()
            if pid_alive(pid) and starts.get(name) in (None, start_time(pid))
        }

    def _save(self) -> None:
        self.p.data.mkdir(parents=True, exist_ok=True)
        self.p.state.write_text(json.dumps(self.state, indent=2))

    def _pids(self) -> dict[str, int]:
        pids = self.state.get("pids", {})
        assert isinstance(pids, dict)
        return {str(k): int(v) for k, v in pids.items()}

    def running(self) -> bool:
        if self.state.get("bin_dir") != str(bin_dir()):
            return False  # started from another build: restart on the current one
        pids = self._pids()
        needed = {"etcd", "kube-apiserver", "kube-controller-manager", "nodesim"}
        if not needed <= set(pids) or not all(pid_alive(pids[n]) for n in needed):
            return False
        try:
            return self._readyz(timeout=3)
        except Exception:
            return False

    # ---- http against the apiserver ----------------------------------------------------
    def _ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.p.pki / "ca.crt"))

    def _get(self, path: str, timeout: float = 5) -> tuple[int, bytes]:
        url = f"https://127.0.0.1:{self.state['apiserver_port']}{path}"
        req = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {self.state['token']}"}
        )
        try:
            with urllib.request.urlopen(req, context=self._ssl(), timeout=timeout) as r:
                return int(r.status), r.read()
        except urllib.error.HTTPError as e:
            return int(e.code), e.read()

    def _readyz(self, timeout: float = 5) -> bool:
        code, _ = self._get("/readyz", timeout=timeout)
        return code == 200

    # ---- processes -----------------------------------------------------------------------
    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> int:
        self.p.logs.mkdir(parents=True, exist_ok=True)
        logf = open(self.p.log_of(name), "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            cmd,
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=str(self.p.data),
        )
        logf.close()
        pids = self._pids()
        pids[name] = proc.pid
        self.state["pids"] = pids
        starts = dict(self.state.get("start_times") or {})  # type: ignore[call-overload]
        starts[name] = start_time(proc.pid)
        self.state["start_times"] = starts
        cmds = dict(self.state.get("commands") or {})  # type: ignore[call-overload]
        cmds[name] = cmd
        self.state["commands"] = cmds
        self._save()
        return proc.pid

    def restart_apiserver(self, down_for: float = 0.0) -> None:
        """Stops kube-apiserver (by PID) and starts it again with the same command: for
        tests of how clients survive an API server restart."""
        self._reload()  # another process may have restarted it since this one read the state
        cmds = self.state.get("commands") or {}
        assert isinstance(cmds, dict)
        stop_pid(self._pids()["kube-apiserver"])
        time.sleep(down_for)
        self._spawn("kube-apiserver", list(cmds["kube-apiserver"]))
        self._wait("kube-apiserver", self._readyz, 90)

    def _fail(self, name: str, why: str) -> ClusterError:
        logp = self.p.log_of(name)
        tail = ""
        if logp.exists():
            lines = logp.read_text(errors="replace").splitlines()[-15:]
            tail = "\n    ".join(lines)
            if any("address already in use" in ln for ln in lines):
                why += " (a port it needs is already in use by another process)"
        return ClusterError(f"{name} {why}; log: {logp}\n  last lines:\n    {tail}")

    def _wait(self, name: str, check: object, timeout: float) -> None:
        assert callable(check)
        pid = self._pids()[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                raise self._fail(name, "exited during start-up")
            try:
                if check():
                    return
            except Exception:
                pass
            time.sleep(0.2)
        raise self._fail(name, f"did not become ready within {timeout:.0f}s")

    # ---- up / down -----------------------------------------------------------------------
    def _alive(self) -> bool:
        pids = self._pids()
        return (
            bool(pids)
            and self.state.get("bin_dir") == str(bin_dir())
            and all(pid_alive(p) for p in pids.values())
        )

    def up(self) -> None:
        if self.state and self._alive():
            # Every process is there: the API server may just be restarting (tests do that);
            # give it time rather than rebuild the cluster under everyone using it.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self.running():
                    log(f"already running (kubeconfig: {self.p.kubeconfig})")
                    postgres_up()
                    return
                time.sleep(0.5)
        if self.state and self.running():
            log(f"already running (kubeconfig: {self.p.kubeconfig})")
            postgres_up()
            return
        if self.state:
            log("found a stale or partial cluster; cleaning it up first")
            self.down(quiet=True)
            self.state = {}
        self._check_tools()
        build = REPO / "devcluster" / "build-k8s.sh"
        r = subprocess.run(["bash", str(build)], check=False)
        if r.returncode != 0:
            raise ClusterError(
                f"building Kubernetes failed (see messages above; log: {cache_dir() / 'build.log'})"
            )
        t0 = time.monotonic()
        self.p.data.mkdir(parents=True, exist_ok=True)
        self.state = make_pki(self.p)
        etcd_port, peer_port = free_port(), free_port()
        api_port = int(os.environ.get("TETHER_APISERVER_PORT") or free_port())
        if port_in_use(api_port):
            raise ClusterError(
                f"port {api_port} for kube-apiserver is already in use "
                "(unset TETHER_APISERVER_PORT or choose another)"
            )
        self.state.update(etcd_port=etcd_port, apiserver_port=api_port, bin_dir=str(bin_dir()))
        self._save()

        log(f"starting etcd on 127.0.0.1:{etcd_port}")
        self._spawn(
            "etcd",
            [
                shutil.which("etcd") or "etcd",
                "--name",
                "default",
                "--data-dir",
                str(self.p.data / "etcd"),
                "--listen-client-urls",
                f"http://127.0.0.1:{etcd_port}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{etcd_port}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-cluster",
                f"default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes",
                str(4 * 1024**3),
            ],
            env={"ETCD_UNSUPPORTED_ARCH": "arm64"} if os.uname().machine == "aarch64" else None,
        )
        self._wait("etcd", lambda: _http_ok(f"http://127.0.0.1:{etcd_port}/health"), 30)

        log(f"starting kube-apiserver v{K8S_VERSION} on 127.0.0.1:{api_port}")
        pki = self.p.pki
        self._spawn(
            "kube-apiserver",
            [
                str(bin_dir() / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                f"--secure-port={api_port}",
                "--insecure-port=0",
                "--advertise-address=127.0.0.1",
                f"--cert-dir={pki}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--token-auth-file={pki / 'tokens.csv'}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--authorization-mode=Node,RBAC",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--enable-priority-and-fairness=false",
                "--max-requests-inflight=2000",
                "--max-mutating-requests-inflight=1000",
                "--event-ttl=1h",
                "--allow-privileged=true",
            ],
        )
        self._wait("kube-apiserver", self._readyz, 90)
        write_kubeconfig(
            self.p.kubeconfig,
            f"https://127.0.0.1:{api_port}",
            pki / "ca.crt",
            str(self.state["token"]),
        )

        log("starting kube-controller-manager")
        self._spawn(
            "kube-controller-manager",
            [
                str(bin_dir() / "kube-controller-manager"),
                f"--kubeconfig={self.p.kubeconfig}",
                "--leader-elect=false",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                "--use-service-account-credentials=false",
                "--controllers=*,-nodeipam,-nodelifecycle,-ttl,-bootstrapsigner,-tokencleaner",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--port=0",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
            ],
        )
        self._wait("kube-controller-manager", self._default_sa_exists, 60)

        nodes = os.environ.get("TETHER_SIM_NODES", "2")
        log(f"starting the node simulator ({nodes} nodes)")
        self._spawn(
            "nodesim",
            [
                sys.executable,
                "-m",
                "devcluster.nodesim",
                "--kubeconfig",
                str(self.p.kubeconfig),
                "--nodes",
                nodes,
            ],
            env={"PYTHONPATH": str(REPO)},
        )
        self._wait("nodesim", self._nodes_ready, 30)
        postgres_up()
        log(f"ready in {time.monotonic() - t0:.1f}s; kubeconfig: {self.p.kubeconfig}")

    def _default_sa_exists(self) -> bool:
        code, _ = self._get("/api/v1/namespaces/default/serviceaccounts/default")
        return code == 200

    def _nodes_ready(self) -> bool:
        code, body = self._get("/api/v1/nodes")
        return code == 200 and len(json.loads(body).get("items", [])) > 0

    def _check_tools(self) -> None:
        if shutil.which("etcd") is None:
            raise ClusterError("etcd not found: run 'make deps' or apt-get install etcd-server")

    def down(self, quiet: bool = False, grace: float = 10.0) -> None:
        """Stops every recorded process and, once all are gone, deletes the data.

        Each is sent SIGTERM and given ``grace`` seconds before SIGKILL. The data (etcd's
        files among it) is deleted only when no recorded process is left and nothing else
        still serves the cluster's ports; otherwise ClusterError says what still runs, and
        the data stays.
        """
        self._reload()  # the file, not this object's copy: a restart elsewhere changes PIDs
        ours = self._ours()
        order = ["nodesim", "kube-controller-manager", "kube-apiserver", "etcd"]
        for name in order + [n for n in ours if n not in order]:
            pid = ours.get(name)
            if pid is None:
                continue
            if not quiet:
                log(f"stopping {name} (pid {pid})")
            if stop_pids([pid], grace=grace):
                raise ClusterError(
                    f"{name} (pid {pid}) is still running after SIGKILL; "
                    f"its data is kept in {self.p.data}"
                )
        busy = [
            f"{name} port {port}"
            for name, port in (
                ("kube-apiserver", self.state.get("apiserver_port")),
                ("etcd", self.state.get("etcd_port")),
            )
            if isinstance(port, int) and port_in_use(port)
        ]
        if busy:
            raise ClusterError(
                f"something still listens on {', '.join(busy)} although the recorded processes "
                f"are gone (a process started outside {self.p.state}?); stop it, then run "
                f"'down' again. The data is kept in {self.p.data}"
            )
        if self.p.data.exists():
            shutil.rmtree(self.p.data)
        self.p.kubeconfig.unlink(missing_ok=True)
        self.state = {}
        try:
            postgres.down()
        except postgres.PostgresError as e:
            raise ClusterError(f"PostgreSQL: {e}") from e
        if not quiet:
            log("stopped; data deleted")

    def status(self) -> dict[str, object]:
        pids = self._pids()
        return {
            "running": bool(self.state) and self.running(),
            "kubeconfig": str(self.p.kubeconfig),
            "components": {
                n: {"pid": pid, "alive": pid_alive(pid), "log": str(self.p.log_of(n))}
                for n, pid in pids.items()
            },
        }


def postgres_up() -> None:
    """The audit store's PostgreSQL test server (quick when it already runs)."""
    try:
        postgres.up()
    except postgres.PostgresError as e:
        raise ClusterError(f"PostgreSQL: {e}") from e


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status) == 200
    except Exception:
        return False


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    cmd = args[0] if args else "status"
    c = Cluster()
    try:
        if cmd == "up":
            c.up()
        elif cmd == "down":
            c.down()
        elif cmd == "status":
            print(json.dumps(c.status(), indent=2))
        else:
            print("usage: python -m devcluster.cluster up|down|status", file=sys.stderr)
            return 2
    except ClusterError as e:
        log(f"ERROR: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
