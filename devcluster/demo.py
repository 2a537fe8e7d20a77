"""`make demo`: tether's main job, end to end, on the local control plane and git server.

Pushes a small app to a git repository, creates its Application, syncs it to Healthy,
edits a live field behind Git's back, shows the drift, and syncs it back.
"""

from __future__ import annotations

import base64
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from devcluster.cluster import Cluster, ClusterError
from devcluster.gitserver import GitServer, GitServerError

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
APP = "guestbook"
DEST = "demo"

FILES = {
    "guestbook/configmap.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: guestbook-config
data:
  GREETING: "Hello from Git"
""",
    "guestbook/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: guestbook
  labels: {app: guestbook}
spec:
  replicas: 2
  selector:
    matchLabels: {app: guestbook}
  template:
    metadata:
      labels: {app: guestbook}
    spec:
      containers:
        - name: web
          image: registry.example/guestbook:1.0
          ports: [{containerPort: 8080}]
          envFrom: [{configMapRef: {name: guestbook-config}}]
""",
    "guestbook/service.yaml": """\
apiVersion: v1
kind: Service
metadata:
  name: guestbook
spec:
  selector: {app: guestbook}
  ports: [{port: 80, targetPort: 8080}]
""",
}

BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def step(n: int, text: str) -> None:
    print(f"\n{BOLD}== {n}. {text}{RESET}", flush=True)


def sh(*cmd: str, check: bool = True, ok_codes: tuple[int, ...] = (0,)) -> int:
    shown = " ".join(shlex.quote(c) for c in cmd)
    for p in (str(VENV_BIN) + "/",):
        shown = shown.replace(p, "")
    print(f"{DIM}${RESET} {shown}", flush=True)
    r = subprocess.run(cmd, check=False)
    if check and r.returncode not in ok_codes:
        raise SystemExit(f"demo: '{shown}' failed with exit code {r.returncode}")
    return r.returncode


def main() -> int:
    dev = Path(os.environ.get("TETHER_DEV_DIR", str(REPO / ".dev")))
    try:
        step(
            1,
            "Start the local control plane (etcd, kube-apiserver, controllers, 2 simulated nodes)",
        )
        cluster = Cluster()
        cluster.up()
        kubeconfig = str(cluster.p.kubeconfig)
        os.environ["KUBECONFIG"] = kubeconfig

        step(2, "Start the local git server and push the sample app")
        git = GitServer(dev / "git")
        git.start()
        repo = git.create_repo("demo-app", exist_ok=True)
        sha = repo.commit(
            FILES, message="guestbook: first version", author=("Alice Example", "alice@example.com")
        )
        print(f"pushed {len(FILES)} files to {repo.http_url} at {sha[:10]}")
    except (ClusterError, GitServerError) as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1

    tether = str(VENV_BIN / "tether")
    kubectl = str(VENV_BIN / "kubectl")

    step(3, "Install the Application CRD")
    sh(tether, "install-crds")

    step(4, "Give tether read access to the repository (a labelled Secret)")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "demo-app-repo",
            "namespace": "tether-system",
            "labels": {"tether.dev/secret-type": "repository"},
        },
        "data": {
            k: base64.b64encode(v.encode()).decode()
            for k, v in {"url": repo.http_url, "username": "git", "password": git.token}.items()
        },
    }
    subprocess.run(
        [kubectl, "apply", "-f", "-"],
        input=__import__("json").dumps(secret),
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print("secret/demo-app-repo configured (token not shown)")

    step(5, "Create the Application")
    sh(
        tether,
        "app",
        "create",
        APP,
        "--repo",
        repo.http_url,
        "--path",
        "guestbook",
        "--dest-namespace",
        DEST,
        "--sync-option",
        "CreateNamespace=true",
        "--upsert",
    )

    step(6, "Sync it and wait until it is Healthy")
    sh(tether, "app", "sync", APP, "--timeout", "60")
    sh(tether, "app", "get", APP)

    step(7, "Someone edits the cluster behind Git's back")
    sh(kubectl, "-n", DEST, "scale", "deployment/guestbook", "--replicas=5")
    sh(
        kubectl,
        "-n",
        DEST,
        "patch",
        "configmap/guestbook-config",
        "--type=merge",
        "-p",
        '{"data":{"GREETING":"edited by hand"}}',
    )
    time.sleep(1)

    step(8, "tether sees the drift (exit code 1 means: differs from Git)")
    sh(tether, "app", "diff", APP, "--no-color", ok_codes=(1,))

    step(9, "Sync puts Git's version back")
    sh(tether, "app", "sync", APP, "--timeout", "60")
    sh(tether, "app", "diff", APP)
    print("in sync with Git again")

    print(f"""
{BOLD}The cluster and git server are still running. Explore:{RESET}
  export KUBECONFIG={kubeconfig}
  export PATH={VENV_BIN}:$PATH
  tether app list
  tether app get {APP} -o yaml
  kubectl -n {DEST} get deploy,svc,cm,pods
  git clone {repo.http_url}   # user: git, password: the token in {git.root / "http-token"}
Stop everything with: make cluster-down
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
