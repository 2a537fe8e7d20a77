"""Real identities on the local control plane: ServiceAccounts, their tokens, their grants.

Kubernetes 1.20's token controller fills a ``kubernetes.io/service-account-token`` Secret
with a signed token; the API server authenticates it like any other, so a test can act as
an account with exactly the RBAC it gave it.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import yaml

from tether.kube import KubeClient


async def service_account_token(
    kube: KubeClient, namespace: str, name: str, timeout: float = 60.0
) -> str:
    """Creates ServiceAccount ``name`` (if missing) and a token Secret for it; its token."""
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
        }
    )
    secret = f"{name}-token"
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": secret,
                "namespace": namespace,
                "annotations": {"kubernetes.io/service-account.name": name},
            },
        }
    )
    async with asyncio.timeout(timeout):
        while True:
            obj = await kube.get("v1", "Secret", secret, namespace)
            token = ((obj or {}).get("data") or {}).get("token")
            if token:
                return base64.b64decode(token).decode()
            await asyncio.sleep(0.1)


async def grant(
    kube: KubeClient,
    namespace: str,
    account: tuple[str, str],
    rules: list[dict[str, Any]],
    name: str = "test-grant",
) -> None:
    """A Role with ``rules`` in ``namespace``, bound to ServiceAccount (namespace, name);
    returns once the API server's authorizer applies it."""
    sa_ns, sa_name = account
    await kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name, "namespace": namespace},
            "rules": rules,
        }
    )
    await kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": sa_ns}],
        }
    )
    rule = rules[0]
    attributes = {
        "namespace": namespace,
        "verb": rule["verbs"][0],
        "group": rule["apiGroups"][0],
        "resource": rule["resources"][0],
    }
    async with asyncio.timeout(60):
        while True:
            if await may(kube, f"system:serviceaccount:{sa_ns}:{sa_name}", attributes):
                return
            await asyncio.sleep(0.1)


async def may(kube: KubeClient, user: str, attributes: dict[str, str]) -> bool:
    """The API server's answer to a SubjectAccessReview for ``user``."""
    review = await kube.request(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        body={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "resourceAttributes": attributes,
            },
        },
    )
    return bool(review["status"].get("allowed"))


def token_kubeconfig(admin_kubeconfig: str, token: str, path: Path, user: str = "test") -> Path:
    """Same server and CA as the admin kubeconfig; ``token`` as the user."""
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "tether", "cluster": cluster["cluster"]}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "tether", "user": user}}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
