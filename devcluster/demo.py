"""`make demo`: tether's main job, end to end, on the local control plane and git server.

Pushes a small app to a git repository, creates its Application, syncs it to Healthy,
edits a live field behind Git's back, shows the drift and syncs it back; then starts the
controller, which applies a pushed commit by itself (webhook) and heals a live edit.
Then the same repository holds a Kustomize overlay and a Helm chart with a values file:
two more Applications point at them, and the controller takes all three to Synced/Healthy.
Last, a ServiceAccount that may read and sync the demo's Applications (``tether-operator``,
bound in the demo's namespace only) gets a token: the demo prints the web UI's URL, that
token to log in with, and ``tether --server`` lines that use it.

The demo keeps to a namespace of its own (``tether-demo``: its Application, repository
Secret and webhook Secret), and its controller watches only that namespace, so the
controller left running afterwards never acts on Applications created elsewhere, such as
the tests' in tether-system.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from devcluster.cluster import Cluster, ClusterError
from devcluster.gitserver import GitServer, GitServerError, RepoHandle
from devcluster.procs import free_port, pid_alive, start_time, stop_pid
from devcluster.webhook import github_push

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
APP = "guestbook"
DEST = "demo"
HOME = "tether-demo"
"""Where the demo's Application and Secrets live: the only namespace its controller watches."""
OPERATOR = "tether-demo-operator"
"""The demo's user of the UI and the API: a ServiceAccount in HOME."""
OPERATOR_ROLE = "tether-operator"
"""The ClusterRole (deploy/rbac.yaml) that reads and syncs Applications, bound in HOME only."""

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

KUSTOMIZE_APP = "guestbook-kustomize"
HELM_APP = "guestbook-helm"
RENDERED_FILES = {
    # Kustomize: a base and a "prod" overlay that renames, scales and labels it.
    "kustomize/base/kustomization.yaml": """\
resources: [deployment.yaml, service.yaml]
configMapGenerator:
  - name: guestbook-config
    literals: [GREETING=Hello from the Kustomize base]
""",
    "kustomize/base/deployment.yaml": FILES["guestbook/deployment.yaml"],
    "kustomize/base/service.yaml": FILES["guestbook/service.yaml"],
    "kustomize/overlays/prod/kustomization.yaml": """\
resources: [../../base]
namePrefix: prod-
labels:
  - pairs: {env: prod}
replicas:
  - name: guestbook
    count: 3
configMapGenerator:
  - name: guestbook-config
    behavior: merge
    literals: [GREETING=Hello from the prod overlay]
""",
    # Helm: a chart with its defaults, and a values file for production.
    "helm/guestbook/Chart.yaml": """\
apiVersion: v2
name: guestbook
description: The guestbook, as a Helm chart
version: 0.1.0
appVersion: "1.0"
""",
    "helm/guestbook/values.yaml": """\
replicaCount: 1
image: registry.example/guestbook:1.0
greeting: Hello from the chart's defaults
""",
    "helm/guestbook/values-prod.yaml": """\
replicaCount: 2
greeting: Hello from values-prod.yaml
""",
    "helm/guestbook/templates/configmap.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  GREETING: {{ .Values.greeting | quote }}
""",
    "helm/guestbook/templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels: {app: {{ .Release.Name }}}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: web
          image: {{ .Values.image }}
          ports: [{containerPort: 8080}]
          envFrom: [{configMapRef: {name: {{ .Release.Name }}-config}}]
""",
    "helm/guestbook/templates/service.yaml": """\
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector: {app: {{ .Release.Name }}}
  ports: [{port: 80, targetPort: 8080}]
""",
}

BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def step(n: int, text: str) -> None:
    print(f"\n{BOLD}== {n}. {text}{RESET}", flush=True)


def sh(
    *cmd: str,
    check: bool = True,
    ok_codes: tuple[int, ...] = (0,),
    env: dict[str, str] | None = None,
) -> int:
    """Runs ``cmd``, showing it; ``env`` is added to the environment (and not shown)."""
    shown = " ".join(shlex.quote(c) for c in cmd)
    for p in (str(VENV_BIN) + "/",):
        shown = shown.replace(p, "")
    print(f"{DIM}${RESET} {shown}", flush=True)
    r = subprocess.run(cmd, check=False, env={**os.environ, **env} if env else None)
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
        stop_controller(dev)  # a controller from an earlier run would heal the drift we show
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
    apply_json(kubectl, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": HOME}})
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "demo-app-repo",
            "namespace": HOME,
            "labels": {"tether.dev/secret-type": "repository"},
        },
        "data": {
            k: base64.b64encode(v.encode()).decode()
            for k, v in {"url": repo.http_url, "username": "git", "password": git.token}.items()
        },
    }
    subprocess.run(
        [kubectl, "apply", "-f", "-"],
        input=json.dumps(secret),
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print("secret/demo-app-repo configured (token not shown)")

    step(5, "Create the Application")
    sh(
        tether,
        "-n",
        HOME,
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
    sh(tether, "-n", HOME, "app", "sync", APP, "--timeout", "60")
    sh(tether, "-n", HOME, "app", "get", APP)

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
    sh(tether, "-n", HOME, "app", "diff", APP, "--no-color", ok_codes=(1,))

    step(9, "Sync puts Git's version back")
    sh(tether, "-n", HOME, "app", "sync", APP, "--timeout", "60")
    sh(tether, "-n", HOME, "app", "diff", APP)
    print("in sync with Git again")

    # ---- the continuous engine ------------------------------------------------------------
    step(10, "Start the controller: from now on Git changes and live edits are handled by it")
    webhook_secret = secrets.token_hex(16)
    apply_json(
        kubectl,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "tether-webhook", "namespace": HOME},
            "stringData": {"github.secret": webhook_secret},
        },
    )
    sh(
        tether,
        "-n",
        HOME,
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
        "--auto-sync",
        "--self-heal",
        "--prune",
        "--upsert",
    )
    port = start_controller(dev, kubeconfig)
    print(
        f"controller running (pid in {dev / 'controller.json'}, log {dev / 'controller.log'}, "
        f"http://127.0.0.1:{port})"
    )

    step(11, "Push a commit and send the webhook a Git host would send")
    changed = dict(FILES)
    changed["guestbook/configmap.yaml"] = FILES["guestbook/configmap.yaml"].replace(
        "Hello from Git", "Hello from a new commit"
    )
    sha = repo.commit(
        changed, message="guestbook: new greeting", author=("Bob Example", "bob@example.com")
    )
    t0 = time.monotonic()
    status = send_github_push(port, repo.http_url, sha, webhook_secret)
    print(f"pushed {sha[:10]}; webhook answered {status}")
    wait_for(lambda: live_greeting(kubectl) == "Hello from a new commit", 60)
    print(
        f"the new commit is live {time.monotonic() - t0:.1f}s after the push, "
        "without anyone running a sync"
    )

    step(12, "Someone edits the cluster again: this time the controller heals it")
    t0 = time.monotonic()
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
    wait_for(lambda: live_greeting(kubectl) == "Hello from a new commit", 60)
    print(f"healed {time.monotonic() - t0:.1f}s after the edit")
    time.sleep(1)

    step(13, "The audit trail: every sync, drift (with who changed what) and correction")
    sh(
        tether,
        "audit",
        "--server",
        f"http://127.0.0.1:{port}",
        "--app",
        f"{HOME}/{APP}",
        "--limit",
        "10",
    )
    sh(tether, "-n", HOME, "app", "history", APP)

    show_rendered_apps(repo, dev, port, webhook_secret)

    step(16, "A user for the web UI and the API: a ServiceAccount that may read and sync")
    token = demo_operator(kubectl, HOME, dev / "demo-operator.token")
    server = f"http://127.0.0.1:{port}"
    sh(tether, "--server", server, "-n", HOME, "app", "list", env={"TETHER_TOKEN": token})

    print(f"""
{BOLD}The cluster, git server and controller are still running. Explore:{RESET}
  export KUBECONFIG={kubeconfig}
  export PATH={VENV_BIN}:$PATH
  tether -n {HOME} app list
  tether -n {HOME} app get {APP} -o yaml
  tether -n {HOME} app get {KUSTOMIZE_APP}
  tether -n {HOME} app diff {HELM_APP}
  kubectl -n {DEST}-kustomize get deploy,svc,cm,pods
  kubectl -n {DEST}-helm get deploy,svc,cm,pods
  tether audit --server http://127.0.0.1:{port}
  TETHER_TOKEN=$(cat {dev / "demo-operator.token"}) tether --server http://127.0.0.1:{port} \\
      -n {HOME} app get {APP}
  kubectl -n {DEST} get deploy,svc,cm,pods
  kubectl -n {HOME} get events
  TOKEN=$(kubectl config view --raw -o jsonpath='{{.users[0].user.token}}')
  curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:{port}/metrics | grep ^tether_
  git clone {repo.http_url}   # user: git, password: the token in {git.root / "http-token"}
Stop everything with: make cluster-down
""")
    print_login(server, token, dev / "demo-operator.token")
    return 0


def operator_role() -> dict[str, Any]:
    """The ClusterRole ``tether-operator`` as deploy/rbac.yaml defines it (get, list, watch
    and the custom verb ``sync`` on applications.tether.dev)."""
    for doc in yaml.safe_load_all((REPO / "deploy" / "rbac.yaml").read_text()):
        meta = (doc or {}).get("metadata") or {}
        if doc and doc.get("kind") == "ClusterRole" and meta.get("name") == OPERATOR_ROLE:
            return dict(doc)
    raise SystemExit(f"demo: deploy/rbac.yaml has no ClusterRole {OPERATOR_ROLE}")


def operator_objects(namespace: str) -> list[dict[str, Any]]:
    """The ServiceAccount, its token Secret (Kubernetes 1.20 fills it) and a RoleBinding of
    ``tether-operator`` in ``namespace`` only: the demo user may act on nothing else."""
    return [
        operator_role(),
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": OPERATOR, "namespace": namespace},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": f"{OPERATOR}-token",
                "namespace": namespace,
                "annotations": {"kubernetes.io/service-account.name": OPERATOR},
            },
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": OPERATOR, "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": OPERATOR_ROLE,
            },
            "subjects": [{"kind": "ServiceAccount", "name": OPERATOR, "namespace": namespace}],
        },
    ]


def demo_operator(kubectl: str, namespace: str, token_file: Path) -> str:
    """Creates the demo user in ``namespace``; its token, also written to ``token_file``
    (mode 0600)."""
    for obj in operator_objects(namespace):
        apply_json(kubectl, obj)
    print(
        f"serviceaccount/{OPERATOR} in {namespace}, bound to clusterrole/{OPERATOR_ROLE} "
        f"in namespace {namespace} only"
    )
    token = ""

    def filled() -> bool:
        nonlocal token
        r = subprocess.run(
            [kubectl, "-n", namespace, "get", "secret", f"{OPERATOR}-token", "-o",
             "jsonpath={.data.token}"],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        token = base64.b64decode(r.stdout.strip()).decode() if r.returncode == 0 else ""
        return bool(token)

    wait_for(filled, 60)
    token_file.touch(mode=0o600)
    token_file.chmod(0o600)
    token_file.write_text(token + "\n")
    return token


def print_login(server: str, token: str, token_file: Path) -> None:
    print(f"""{BOLD}The web UI:{RESET} {server}/
Log in with the token of ServiceAccount {HOME}/{OPERATOR}, below. It is a
credential of this local demo cluster only (also in {token_file}): it may read
and sync the demo's Applications, and nothing else.

{token}

The same user on the command line, through the API instead of the Kubernetes API:
  export TETHER_TOKEN=$(cat {token_file})
  tether --server {server} -n {HOME} app list
  tether --server {server} -n {HOME} app diff {APP}
  tether --server {server} -n {HOME} app sync {APP}
""")


def rendered_app(name: str, repo_url: str, path: str, source: dict[str, Any]) -> dict[str, Any]:
    """An Application of a path that is rendered (Kustomize, Helm), synced by the controller."""
    return {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": HOME},
        "spec": {
            "source": {"repoURL": repo_url, "targetRevision": "HEAD", "path": path, **source},
            "destination": {"namespace": f"{DEST}-{name.removeprefix(APP + '-')}"},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["CreateNamespace=true"],
            },
        },
    }


def show_rendered_apps(repo: RepoHandle, dev: Path, port: int, webhook_secret: str) -> None:
    """Steps 14-15: a Kustomize overlay and a Helm chart from the same repository, applied
    by the controller next to the plain directory, all three Synced and Healthy."""
    tether, kubectl = str(VENV_BIN / "tether"), str(VENV_BIN / "kubectl")
    step(14, "Push a Kustomize overlay and a Helm chart to the same repository")
    repo_url = repo.http_url
    sha = repo.commit(
        RENDERED_FILES,
        message="guestbook as a Kustomize overlay and a Helm chart",
        author=("Carol Example", "carol@example.com"),
    )
    status = send_github_push(port, repo_url, sha, webhook_secret)
    print(f"pushed {len(RENDERED_FILES)} files at {sha[:10]} (webhook answered {status}):")
    print("  kustomize/base + kustomize/overlays/prod (namePrefix prod-, 3 replicas, env=prod)")
    print("  helm/guestbook (a chart) with helm/guestbook/values-prod.yaml")

    step(15, "Two more Applications: tether detects how to render each path")
    apps = {
        KUSTOMIZE_APP: rendered_app(KUSTOMIZE_APP, repo_url, "kustomize/overlays/prod", {}),
        HELM_APP: rendered_app(
            HELM_APP,
            repo_url,
            "helm/guestbook",
            {"helm": {"valueFiles": ["values-prod.yaml"], "releaseName": "guestbook"}},
        ),
    }
    for name, obj in apps.items():
        path = dev / f"{name}.yaml"
        path.write_text(yaml.safe_dump(obj, sort_keys=False))
        sh(tether, "app", "apply", "-f", str(path))
    t0 = time.monotonic()
    names = (APP, KUSTOMIZE_APP, HELM_APP)

    def all_healthy() -> bool:
        states = [app_state(tether, n) for n in names]
        return all(st[:2] == ("Synced", "Healthy") and st[3] == sha for st in states)

    wait_for(all_healthy, 180)
    print(f"\nall three Synced and Healthy {time.monotonic() - t0:.1f}s after they were created:")
    for n in names:
        sync, health, types, revision = app_state(tether, n)
        print(f"  {n:<20} {'/'.join(types) or 'Directory':<10} {sync}/{health} at {revision[:10]}")
    greeting = {
        f"{DEST}-kustomize": "configmap -l env=prod",
        f"{DEST}-helm": "configmap/guestbook-config",
    }
    for ns, what in greeting.items():
        sh(kubectl, "-n", ns, "get", *what.split(), "-o", "jsonpath={..data.GREETING}")
        print()


def app_state(tether: str, name: str) -> tuple[str, str, list[str], str]:
    """(sync, health, source types, revision) of an Application, as ``app get`` reads it."""
    r = subprocess.run(
        [tether, "-n", HOME, "app", "get", name, "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        return ("", "", [], "")
    st = json.loads(r.stdout).get("status") or {}
    return (
        str((st.get("sync") or {}).get("status", "")),
        str((st.get("health") or {}).get("status", "")),
        [str(t) for t in st.get("sourceTypes") or []],
        str((st.get("sync") or {}).get("revision", "")),
    )


def apply_json(kubectl: str, obj: dict[str, object]) -> None:
    subprocess.run(
        [kubectl, "apply", "-f", "-"],
        input=json.dumps(obj),
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def live_greeting(kubectl: str) -> str:
    r = subprocess.run(
        [
            kubectl,
            "-n",
            DEST,
            "get",
            "configmap/guestbook-config",
            "-o",
            "jsonpath={.data.GREETING}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return r.stdout.strip()


def wait_for(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: gave up after {timeout:.0f}s; see .dev/controller.log")
        time.sleep(0.1)


def controller_command(dev: Path, kubeconfig: str, port: int) -> list[str]:
    """The demo's controller: on loopback, its files under ``dev``, watching only HOME."""
    return [
        str(VENV_BIN / "tether"),
        "controller",
        "--kubeconfig",
        kubeconfig,
        "--http-host",
        "127.0.0.1",
        "--http-port",
        str(port),
        "--audit-db",
        str(dev / "audit.db"),
        "--cache-dir",
        str(dev / "git-cache"),
        "--namespaces",
        HOME,
    ]


def start_controller(dev: Path, kubeconfig: str) -> int:
    stop_controller(dev)
    port = free_port()
    log = open(dev / "controller.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        controller_command(dev, kubeconfig, port),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    (dev / "controller.json").write_text(
        json.dumps({"pid": proc.pid, "port": port, "start_time": start_time(proc.pid)})
    )

    def ready() -> bool:
        if proc.poll() is not None:
            raise SystemExit(f"demo: the controller exited; see {dev / 'controller.log'}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                return int(r.status) == 200
        except OSError:
            return False

    wait_for(ready, 60)
    return port


def stop_controller(dev: Path) -> int | None:
    """Stops the controller this demo started (by its recorded PID, if it is still that
    process); returns the PID it stopped, None when none was running."""
    state = dev / "controller.json"
    if not state.exists():
        return None
    recorded = json.loads(state.read_text())
    pid = int(recorded["pid"])
    stopped: int | None = None
    if pid_alive(pid) and recorded.get("start_time") in (None, start_time(pid)):
        stop_pid(pid)
        stopped = pid
    state.unlink(missing_ok=True)
    return stopped


def send_github_push(port: int, repo_url: str, sha: str, secret: str) -> int:
    body, headers = github_push(repo_url, sha, secret, pusher="bob")
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/webhook", data=body, method="POST", headers=headers
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return int(r.status)


if __name__ == "__main__":
    if sys.argv[1:] == ["stop-controller"]:
        pid = stop_controller(Path(os.environ.get("TETHER_DEV_DIR", str(REPO / ".dev"))))
        if pid is not None:
            print(f"stopped the demo's controller (pid {pid})")
        sys.exit(0)
    sys.exit(main())
