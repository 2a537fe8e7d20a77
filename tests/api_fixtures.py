"""What the tests of the HTTP API, the UI and ``tether --server`` share: the controller runtime
started in this process on a free port (``started``; the ``serve`` fixture for a test's
``home``), real ServiceAccounts allowed verbs on Applications (``app_account``) or anything
else cluster-wide (``cluster_grant``), the Application CRDs, a namespace's git credentials,
namespaces cleaned up, one JSON call to the API, the ``tether`` command run as a user would,
a self-signed certificate, and a Deployment that never gets ready (to hold an operation
open)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from devcluster.gitserver import GitServer

from cluster_helpers import TETHER, WAIT, eventually, release_applications, runtime_options
from identities import grant, may, service_account_token
from tether.api.application import API_VERSION, crd_manifests
from tether.controller.runtime import Runtime
from tether.kube import KubeClient

NEVER_READY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: slow, annotations: {tether.dev/sync-wave: '2'}}
spec:
  replicas: 1
  selector: {matchLabels: {app: slow}}
  template:
    metadata:
      labels: {app: slow}
      annotations: {sim.tether.dev/behavior: never-ready}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
"""
"""A Deployment in wave 2 that never gets ready: an operation syncing it stays running."""


def app_rules(*verbs: str) -> list[dict[str, Any]]:
    """RBAC rules allowing ``verbs`` on Applications."""
    return [{"apiGroups": ["tether.dev"], "resources": ["applications"], "verbs": list(verbs)}]


async def app_account(
    kube: KubeClient,
    namespace: str,
    name: str,
    verbs: Sequence[str],
    grant_name: str = "test-grant",
) -> str:
    """The token of ServiceAccount ``namespace/name``, allowed ``verbs`` on the Applications
    of ``namespace`` (none when ``verbs`` is empty)."""
    token = await service_account_token(kube, namespace, name)
    if verbs:
        await grant(kube, namespace, (namespace, name), app_rules(*verbs), name=grant_name)
    return token


@asynccontextmanager
async def cluster_grant(
    kube: KubeClient, account: tuple[str, str], rules: list[dict[str, Any]], name: str
) -> AsyncIterator[None]:
    """A ClusterRole ``name`` with ``rules`` bound to ServiceAccount ``account`` while the
    block runs (once the authorizer applies its first rule, if that rule is on resources);
    both deleted afterwards."""
    rbac = "rbac.authorization.k8s.io/v1"
    sa_ns, sa_name = account
    await kube.apply(
        {"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}
    )
    await kube.apply(
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": rbac.split("/")[0], "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": sa_ns}],
        }
    )
    first = rules[0]
    try:
        if "resources" in first:  # a rule of non-resource URLs: the test waits for its effect
            attributes = {
                "verb": first["verbs"][0],
                "group": first["apiGroups"][0],
                "resource": first["resources"][0],
            }
            user = f"system:serviceaccount:{sa_ns}:{sa_name}"
            await eventually(lambda: may(kube, user, attributes), WAIT, f"{name} applied")
        yield
    finally:
        await kube.delete(rbac, "ClusterRoleBinding", name)
        await kube.delete(rbac, "ClusterRole", name)


async def install_crds(kube: KubeClient) -> None:
    """The Application CRDs, applied and served."""
    for crd in crd_manifests():
        await kube.apply(crd)
    await kube.wait_for_resource(API_VERSION, "Application")


async def repo_credentials(kube: KubeClient, git_server: GitServer, namespace: str) -> None:
    """The git server's credentials for every repository, in ``namespace``."""
    base = git_server.http_url("x").rsplit("/", 1)[0]
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "git-creds",
                "namespace": namespace,
                "labels": {"tether.dev/secret-type": "repository"},
            },
            "stringData": {"url": base, "username": "git", "password": git_server.token},
        }
    )


async def api_call(
    base: str,
    method: str,
    path: str,
    token: str | None,
    body: Any = None,
    params: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request to the API at ``base`` with ``token`` (none if None): status and JSON."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as s,
        s.request(method, base + path, headers=headers, json=body, params=params) as r,
    ):
        return r.status, await r.json(content_type=None)


@dataclass
class Result:
    """What a ``tether`` command did."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def run_cli(
    *args: str, without: Collection[str] = (), env: dict[str, str] | None = None
) -> Result:
    """``tether *args`` as a separate process; the variables ``without`` are unset and
    ``env`` is added to this process's environment."""
    environ = {k: v for k, v in os.environ.items() if k not in without}
    environ.update(env or {})
    proc = await asyncio.create_subprocess_exec(
        TETHER, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environ
    )
    out, err = await proc.communicate()
    return Result(proc.returncode or 0, out.decode(), err.decode())


async def run_cli_without_kubeconfig(*args: str) -> Result:
    """``tether *args`` with no kubeconfig and no ``TETHER_SERVER``: ``--server`` needs
    neither."""
    return await run_cli(
        *args, without=("KUBECONFIG", "TETHER_SERVER"), env={"KUBECONFIG": "/nonexistent"}
    )


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, signed by themselves: (cert, key)."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    args += ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(["openssl", *args], check=True, capture_output=True)
    return cert, key


@dataclass
class Served:
    """A controller runtime running in this process, and the base URL of its HTTP server."""

    rt: Runtime
    url: str


Serve = Callable[..., AbstractAsyncContextManager[Served]]


@asynccontextmanager
async def started(
    kubeconfig: str, tmp: Path, namespaces: Sequence[str], **kw: Any
) -> AsyncIterator[Served]:
    """A ``Runtime`` watching ``namespaces`` (the first is its home) on a free port of
    127.0.0.1 (``https`` when given a certificate), its files in ``tmp``; ``kw`` are more
    ``RuntimeOptions``. Stopped when the block ends."""
    opts = runtime_options(namespaces[0], tmp, kubeconfig, **kw)
    opts.namespaces = list(namespaces)
    scheme = "https" if kw.get("tls_cert_file") else "http"
    async with Runtime(opts) as rt:
        yield Served(rt, f"{scheme}://127.0.0.1:{rt.port}")


async def cleanup_namespaces(kube: KubeClient, namespaces: Iterable[str]) -> None:
    """Releases the Applications of ``namespaces`` and deletes them (without waiting)."""
    for ns in namespaces:
        await release_applications(kube, ns)
        await kube.delete("v1", "Namespace", ns, propagation="Background")


@pytest.fixture
def serve(home: str, tmp_path: Path, kubeconfig: str) -> Serve:
    """``async with serve(**runtime_options) as s``: ``started`` for the test's ``home``
    (and its ``tmp_path``); ``namespaces=`` and ``kubeconfig=`` replace the defaults."""

    def running(**kw: Any) -> AbstractAsyncContextManager[Served]:
        namespaces = kw.pop("namespaces", [home])
        return started(kw.pop("kubeconfig", kubeconfig), tmp_path, namespaces, **kw)

    return running
