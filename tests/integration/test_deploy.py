"""The install manifests under deploy/: valid for the real API server, complete in the
kustomization, and granting the controller's ServiceAccount what it needs and no more."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.kube import KubeClient
from tether.model import Obj

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUBECTL = str(REPO / ".venv" / "bin" / "kubectl")
SYSTEM_NS = "tether-system"
SA = "tether-controller"
# Real applies use their own field manager, so they never take fields away from what
# other tests (or `tether install-crds`) applied to the shared tether-system namespace.
MANAGER = "tether-deploy-test"


def manifest_files() -> list[Path]:
    files = sorted(DEPLOY.glob("*.yaml")) + sorted(DEPLOY.glob("crds/*.yaml"))
    return [f for f in files if f.name != "kustomization.yaml"]


def load(path: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def identity(obj: Obj) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


def differences(want: Any, got: Any, path: str = "") -> list[str]:
    """Where ``got`` lacks or changes what ``want`` says (fields ``want`` omits are free)."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: expected a mapping, got {got!r}"]
        out: list[str] = []
        for k, v in want.items():
            if k not in got:
                # Zero values are omitted from the server's answer (Go's omitempty).
                if v not in (0, "", False, None, {}, []):
                    out.append(f"{path}.{k}: dropped by the server")
            else:
                out.extend(differences(v, got[k], f"{path}.{k}"))
        return out
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: expected {want!r}, got {got!r}"]
        return [
            d
            for i, (w, g) in enumerate(zip(want, got, strict=True))
            for d in differences(w, g, f"{path}[{i}]")
        ]
    return [] if want == got else [f"{path}: expected {want!r}, got {got!r}"]


async def apply_for_real(kube: KubeClient, *files: str) -> None:
    for name in files:
        for obj in load(DEPLOY / name):
            await kube.apply(obj, field_manager=MANAGER)


async def test_every_manifest_passes_a_server_side_dry_run(kube: KubeClient) -> None:
    # Namespaced objects validate only in a namespace that exists.
    await apply_for_real(kube, "namespace.yaml")
    seen = []
    for path in manifest_files():
        for obj in load(path):
            got = await kube.apply(obj, field_manager=MANAGER, dry_run=True)
            # The server kept every field we wrote: a misspelt or misplaced field would be
            # refused, or silently dropped by an API server as old as 1.20.
            assert differences(obj, got) == [], f"{path.name}: {identity(obj)}"
            seen.append(identity(obj))
    kinds = {kind for _, kind, _, _ in seen}
    assert {"Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole"} <= kinds
    assert {"Role", "RoleBinding", "ClusterRoleBinding", "Deployment", "Service"} <= kinds
    assert "PersistentVolumeClaim" in kinds


def test_the_kustomization_renders_every_manifest() -> None:
    listed = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(str(f.relative_to(DEPLOY)) for f in manifest_files())

    rendered = subprocess.run(
        [KUBECTL, "kustomize", str(DEPLOY)], capture_output=True, text=True, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    want = [identity(o) for f in manifest_files() for o in load(f)]
    assert sorted(identity(d) for d in docs) == sorted(want)
    assert len(docs) == len(want)


def test_the_controller_deployment_matches_the_image_and_the_rbac() -> None:
    docs = {(o["kind"], o["metadata"]["name"]): o for o in load(DEPLOY / "controller.yaml")}
    pod = docs[("Deployment", "tether-controller")]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == SA
    (container,) = pod["containers"]
    assert container["args"][0] == "controller" and "--leader-elect" in container["args"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/var/lib/tether"]]["persistentVolumeClaim"]["claimName"] == (
        "tether-audit"
    )
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert "emptyDir" in volumes[mounts["/home/tether/.cache"]]
    # The Dockerfile's user: runAsNonRoot can only be checked against a numeric uid.
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"USER {pod['securityContext']['runAsUser']}:" in dockerfile
    svc = docs[("Service", "tether-controller")]["spec"]
    assert [p["name"] for p in svc["ports"]] == ["http"]
    assert [p["name"] for p in container["ports"]] == ["http"]


async def service_account_token(kube: KubeClient, timeout: float = 30.0) -> str:
    """The token Kubernetes 1.20's token controller puts in a Secret for the account."""
    async with asyncio.timeout(timeout):
        while True:
            secrets, _ = await kube.list("v1", "Secret", SYSTEM_NS)
            for s in secrets:
                annotations = s["metadata"].get("annotations") or {}
                if (
                    s.get("type") == "kubernetes.io/service-account-token"
                    and annotations.get("kubernetes.io/service-account.name") == SA
                    and (s.get("data") or {}).get("token")
                ):
                    return base64.b64decode(s["data"]["token"]).decode()
            await asyncio.sleep(0.2)


def token_kubeconfig(admin_kubeconfig: str, token: str, path: Path) -> Path:
    """Same server and CA as the admin kubeconfig; the ServiceAccount's token as the user."""
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "tether", "cluster": cluster["cluster"]}],
        "users": [{"name": SA, "user": {"token": token}}],
        "contexts": [{"name": SA, "context": {"cluster": "tether", "user": SA}}],
        "current-context": SA,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


# (verb, resource, namespace or "*" for all namespaces or "" for cluster scope, subresource)
NEEDED = [
    # Its own state in tether-system.
    ("list", "applications.tether.dev", SYSTEM_NS, ""),
    ("watch", "applications.tether.dev", SYSTEM_NS, ""),
    ("patch", "applications.tether.dev", SYSTEM_NS, "status"),
    ("get", "leases.coordination.k8s.io", SYSTEM_NS, ""),
    ("create", "leases.coordination.k8s.io", SYSTEM_NS, ""),
    ("update", "leases.coordination.k8s.io", SYSTEM_NS, ""),
    ("get", "secrets", SYSTEM_NS, ""),
    ("list", "secrets", SYSTEM_NS, ""),
    ("list", "configmaps", SYSTEM_NS, ""),
    ("watch", "configmaps", SYSTEM_NS, ""),
    # Applications kept in other namespaces.
    ("watch", "applications.tether.dev", "*", ""),
    ("patch", "applications.tether.dev", "{other}", "status"),
    # Events wherever the objects are.
    ("create", "events", "*", ""),
    ("create", "events.events.k8s.io", "*", ""),
    ("patch", "events", "{other}", ""),
    # What apps deploy, in any namespace: read, diff, apply (SSA is a PATCH), prune.
    ("patch", "deployments.apps", "{other}", ""),
    ("watch", "deployments.apps", "*", ""),
    ("create", "configmaps", "{other}", ""),
    ("delete", "configmaps", "{other}", ""),
    ("list", "pods", "*", ""),
    ("create", "namespaces", "", ""),
    ("get", "secrets", "{other}", ""),
    ("patch", "secrets", "{other}", ""),
]
REFUSED = [
    # Least privilege: Secrets cannot be enumerated outside tether-system.
    ("list", "secrets", "{other}", ""),
    ("watch", "secrets", "{other}", ""),
    ("list", "secrets", "*", ""),
    ("impersonate", "serviceaccounts", "", ""),
    ("escalate", "clusterroles.rbac.authorization.k8s.io", "", ""),
]


def can_i(kubeconfig: Path, verb: str, resource: str, namespace: str, sub: str) -> bool:
    args = [KUBECTL, "--kubeconfig", str(kubeconfig), "auth", "can-i", verb, resource]
    if namespace == "*":
        args.append("--all-namespaces")
    elif namespace:
        args += ["--namespace", namespace]
    if sub:
        args.append(f"--subresource={sub}")
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), f"{' '.join(args[3:])}: {proc.stdout}{proc.stderr}"
    return answer == "yes"


async def test_the_service_account_has_what_the_controller_needs_and_no_more(
    kube: KubeClient, kubeconfig: str, namespace: str, tmp_path: Path
) -> None:
    # Left in place afterwards: the controller runs with this ServiceAccount.
    await apply_for_real(kube, "namespace.yaml", "rbac.yaml")
    token = await service_account_token(kube)
    config = token_kubeconfig(kubeconfig, token, tmp_path / "tether-controller.kubeconfig")

    def check(rules: list[tuple[str, str, str, str]], expected: bool) -> list[str]:
        wrong = []
        for verb, resource, ns, sub in rules:
            ns = ns.format(other=namespace)
            if can_i(config, verb, resource, ns, sub) != expected:
                where = "all namespaces" if ns == "*" else (ns or "cluster scope")
                wrong.append(f"{verb} {resource}{'/' + sub if sub else ''} in {where}")
        return wrong

    # Each check shells out to kubectl: run them off the event loop.
    missing = await asyncio.to_thread(check, NEEDED, True)
    excess = await asyncio.to_thread(check, REFUSED, False)
    assert missing == [], f"the controller's ServiceAccount cannot: {missing}"
    assert excess == [], f"the controller's ServiceAccount should not be able to: {excess}"


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_manifests_are_labelled_as_part_of_tether(path: Path) -> None:
    for obj in load(path):
        labels = obj["metadata"].get("labels") or {}
        assert labels.get("app.kubernetes.io/part-of") == "tether", identity(obj)
