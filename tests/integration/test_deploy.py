"""The install manifests under deploy/: valid for the real API server, complete in their
kustomizations, installable after `tether install-crds` with the documented command, and the
namespace-scoped variant confined to the namespaces it is bound in."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from identities import may
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


COMPONENT = DEPLOY / "postgres"
"""A kustomize component (patches plus a Service), used from an overlay of one's own."""


def manifest_files(root: Path = DEPLOY) -> list[Path]:
    return sorted(
        f
        for f in root.rglob("*.yaml")
        if f.name != "kustomization.yaml" and COMPONENT not in f.parents
    )


def rendered_by(kustomization: Path) -> list[Path]:
    """The files a kustomization lists, following the directories it names."""
    out: list[Path] = []
    for entry in yaml.safe_load((kustomization / "kustomization.yaml").read_text())["resources"]:
        target = (kustomization / entry).resolve()
        out += rendered_by(target) if target.is_dir() else [target]
    return out


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
    await apply_for_real(kube, "base/namespace.yaml")
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
    assert {"RoleBinding", "ClusterRoleBinding", "Deployment", "Service"} <= kinds
    assert {"PersistentVolumeClaim", "NetworkPolicy"} <= kinds


@pytest.mark.parametrize("variant", ["", "namespaced"])
def test_each_kustomization_renders_its_manifests(variant: str) -> None:
    root = DEPLOY / variant
    files = rendered_by(root)
    every = set(manifest_files())
    if variant:
        # The namespace-scoped install: all but the cluster-wide RBAC, plus its own.
        assert set(files) == every - {DEPLOY / "rbac.yaml"}
    else:
        assert set(files) == every - set(manifest_files(DEPLOY / "namespaced"))
    rendered = subprocess.run(
        [KUBECTL, "kustomize", str(root)], capture_output=True, text=True, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    want = [identity(o) for f in files for o in load(f)]
    assert sorted(identity(d) for d in docs) == sorted(want)
    assert len(docs) == len(want)


def test_the_controller_deployment_matches_the_image_and_the_rbac() -> None:
    docs = {(o["kind"], o["metadata"]["name"]): o for o in load(DEPLOY / "base/controller.yaml")}
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
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert [p["name"] for p in svc["ports"]] == list(ports) == ["http", "metrics"]
    assert f"--http-port={ports['http']}" in container["args"]
    # Metrics on their own port, the one the NetworkPolicy opens only to scrapers.
    assert f"--metrics-addr=0.0.0.0:{ports['metrics']}" in container["args"]
    (policy,) = load(DEPLOY / "base/networkpolicy.yaml")
    assert policy["spec"]["podSelector"]["matchLabels"] == pod_labels(docs)
    opened = {
        p["port"]: rule.get("from") for rule in policy["spec"]["ingress"] for p in rule["ports"]
    }
    assert opened["http"] is None and opened["metrics"]


def pod_labels(docs: dict[tuple[str, str], Obj]) -> dict[str, str]:
    labels: dict[str, str] = docs[("Deployment", "tether-controller")]["spec"]["selector"][
        "matchLabels"
    ]
    return labels


def install_command() -> list[str]:
    """The install command docs/install.md gives for deploy/."""
    text = (REPO / "docs" / "install.md").read_text()
    (line,) = {
        ln.split("#")[0].strip()
        for ln in text.splitlines()
        if ln.startswith("kubectl apply --server-side")
        and ln.split("#")[0].strip().endswith(" -k deploy/")
    }
    return line.split()


async def test_the_documented_install_works_after_tether_install_crds(kubeconfig: str) -> None:
    env = {**os.environ, "KUBECONFIG": kubeconfig}

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)

    crds = await asyncio.to_thread(run, [str(REPO / ".venv" / "bin" / "tether"), "install-crds"])
    assert crds.returncode == 0, crds.stderr
    command = install_command()
    assert command[0] == "kubectl"
    # The real kubectl, as documented; a server-side dry run, since the objects are shared.
    for variant in ("deploy/", "deploy/namespaced/"):
        args = [KUBECTL, *command[1:-1], str(REPO / variant), "--dry-run=server"]
        applied = await asyncio.to_thread(run, args)
        assert applied.returncode == 0, f"{' '.join(command)}: {applied.stderr}"
        assert "conflict" not in applied.stderr


async def test_the_namespaced_install_is_admin_of_its_namespaces_only(
    kube: KubeClient, namespace: str
) -> None:
    """The namespaced RBAC, bound to a test account in a test namespace the way the shipped
    RoleBinding binds tether-system: everything there, nothing elsewhere, and token and
    access reviews for the audit API."""
    account = "ns-tether"
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": namespace},
        },
        field_manager=MANAGER,
    )
    for obj in load(DEPLOY / "namespaced" / "rbac.yaml"):
        if "subjects" in obj:
            obj["subjects"] = [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]
        if obj["kind"] == "RoleBinding":
            obj["metadata"] = {**obj["metadata"], "namespace": namespace}
        elif obj["kind"] == "ClusterRoleBinding":
            obj["metadata"] = {**obj["metadata"], "name": f"{namespace}-auth-delegator"}
        elif obj["kind"] != "ClusterRole":
            raise AssertionError(f"unexpected {obj['kind']} in namespaced/rbac.yaml")
        await kube.apply(obj, field_manager=MANAGER)
    user = f"system:serviceaccount:{namespace}:{account}"

    def attrs(verb: str, resource: str, ns: str = "", group: str = "") -> dict[str, str]:
        out = {"verb": verb, "resource": resource, "group": group}
        return {**out, "namespace": ns} if ns else out

    allowed = [
        attrs("list", "secrets", namespace),
        attrs("create", "roles", namespace, "rbac.authorization.k8s.io"),
        attrs("bind", "clusterroles", namespace, "rbac.authorization.k8s.io"),
        attrs("patch", "deployments", namespace, "apps"),
        attrs("watch", "applications", namespace, "tether.dev"),
        attrs("create", "tokenreviews", "", "authentication.k8s.io"),
        attrs("create", "subjectaccessreviews", "", "authorization.k8s.io"),
    ]
    refused = [
        attrs("list", "secrets", "default"),
        attrs("patch", "deployments", "kube-system", "apps"),
        attrs("create", "namespaces"),
        attrs("create", "customresourcedefinitions", "", "apiextensions.k8s.io"),
        attrs("create", "clusterroles", "", "rbac.authorization.k8s.io"),
    ]
    async with asyncio.timeout(60):  # until the authorizer has seen the new bindings
        while True:
            if all([await may(kube, user, a) for a in allowed]):
                break
            await asyncio.sleep(0.1)
    assert [a for a in refused if await may(kube, user, a)] == []
    await kube.delete(
        "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", f"{namespace}-auth-delegator"
    )


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_manifests_are_labelled_as_part_of_tether(path: Path) -> None:
    for obj in load(path):
        labels = obj["metadata"].get("labels") or {}
        assert labels.get("app.kubernetes.io/part-of") == "tether", identity(obj)


def render_with_postgres(overlay: Path) -> list[Obj]:
    """``deploy/`` with the PostgreSQL component, from an overlay outside ``deploy/``, as
    docs/install.md and the component's kustomization.yaml describe."""
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(DEPLOY, overlay)],
                "components": [os.path.relpath(COMPONENT, overlay)],
            }
        )
    )
    out = subprocess.run(
        [KUBECTL, "kustomize", str(overlay)], capture_output=True, text=True, check=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


async def test_the_postgres_component_gives_two_replicas_reading_the_url_from_a_secret(
    kube: KubeClient, tmp_path: Path
) -> None:
    docs = render_with_postgres(tmp_path / "overlay")
    by_id = {(o["kind"], o["metadata"]["name"]): o for o in docs}
    deployment = by_id[("Deployment", "tether-controller")]
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container.get("env", [])}
    assert env["TETHER_AUDIT_URL"]["valueFrom"]["secretKeyRef"]["name"] == "tether-audit-postgres"
    # The URL (and its password) never on the command line; no SQLite volume left behind.
    assert not any("postgres" in a or "--audit-db" in a for a in container["args"])
    assert "--leader-elect" in container["args"]
    assert ("PersistentVolumeClaim", "tether-audit") not in by_id
    assert "/var/lib/tether" not in {m["mountPath"] for m in container.get("volumeMounts", [])}
    assert ("Service", "tether-controller-replicas") in by_id
    # And the real API server takes every object as rendered.
    await apply_for_real(kube, "base/namespace.yaml")
    for obj in docs:
        got = await kube.apply(obj, field_manager=MANAGER, dry_run=True)
        assert differences(obj, got) == [], identity(obj)
