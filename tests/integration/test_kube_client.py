"""The Kubernetes client against the real control plane, reached every way a configuration
allows: the dev kubeconfig, a ServiceAccount's token, a client certificate the cluster's CA
signed (files relative to the kubeconfig), a TLS server name, exec plugins (a token renewed
after a 401, a client certificate), and in-cluster loading from a service-account directory
whose token rotates."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from devcluster.cluster import Cluster

from cluster_helpers import WAIT, eventually
from identities import grant, service_account_token, token_kubeconfig
from kube_pki import client_cert
from tether.errors import KubeError
from tether.kube import KubeClient
from tether.kube.auth import ExecAuth
from tether.kube.config import in_cluster_config

LIST_CONFIGMAPS = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]


def dev_ca() -> tuple[Path, Path]:
    pki = Cluster().p.pki
    return pki / "ca.crt", pki / "ca.key"


def dev_cluster(kubeconfig: str) -> dict[str, Any]:
    config = yaml.safe_load(Path(kubeconfig).read_text())
    return dict(config["clusters"][0]["cluster"])


def write_kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def test_the_dev_kubeconfig_connects_and_counts_requests(kubeconfig: str) -> None:
    async with await KubeClient.connect(kubeconfig) as client:
        version = await client.request("GET", "/version")
        items, rv = await client.list("v1", "Namespace")

    assert version["gitVersion"].startswith("v1.")
    assert rv and any(i["metadata"]["name"] == "default" for i in items)
    assert client.requests[("GET", 200)] == 3  # /version, discovery of v1, the list


async def test_headers_a_caller_passes_win_over_the_clients_own(
    kube: KubeClient, namespace: str
) -> None:
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "meta", "namespace": namespace},
            "data": {"big": "x" * 100},
        }
    )
    accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"

    body = await kube.request(
        "GET", f"/api/v1/namespaces/{namespace}/configmaps", headers={"Accept": accept}
    )

    assert body["kind"] == "PartialObjectMetadataList"
    meta = next(i for i in body["items"] if i["metadata"]["name"] == "meta")
    assert "data" not in meta


async def test_a_service_account_token_kubeconfig_acts_with_its_rbac(
    kube: KubeClient, kubeconfig: str, namespace: str, tmp_path: Path
) -> None:
    token = await service_account_token(kube, namespace, "lister")
    path = token_kubeconfig(kubeconfig, token, tmp_path / "kubeconfig")
    async with await KubeClient.connect(str(path)) as client:
        with pytest.raises(KubeError) as e:
            await client.list("v1", "ConfigMap", namespace)
        assert e.value.status == 403

        await grant(kube, namespace, (namespace, "lister"), LIST_CONFIGMAPS)
        items, _ = await client.list("v1", "ConfigMap", namespace)

        assert isinstance(items, list)
        assert await client.bearer_token() == token


async def test_a_client_certificate_signed_by_the_cluster_ca(
    kubeconfig: str, tmp_path: Path
) -> None:
    client_cert(tmp_path, dev_ca(), "cert-admin", "system:masters")
    cluster = dev_cluster(kubeconfig)
    user = {"client-certificate": "client.crt", "client-key": "client.key"}
    path = write_kubeconfig(tmp_path / "kubeconfig", cluster, user)

    async with await KubeClient.connect(str(path)) as client:
        items, _ = await client.list("v1", "Namespace")
        assert await client.bearer_token() is None

    assert any(i["metadata"]["name"] == "kube-system" for i in items)


async def test_the_tls_server_name_is_the_name_checked(kubeconfig: str, tmp_path: Path) -> None:
    cluster = dev_cluster(kubeconfig)
    user = yaml.safe_load(Path(kubeconfig).read_text())["users"][0]["user"]
    good = write_kubeconfig(
        tmp_path / "good", {**cluster, "tls-server-name": "kubernetes.default.svc"}, user
    )
    bad = write_kubeconfig(tmp_path / "bad", {**cluster, "tls-server-name": "wrong.example"}, user)

    async with await KubeClient.connect(str(good)) as client:
        assert (await client.request("GET", "/version"))["major"]
    async with await KubeClient.connect(str(bad)) as client:
        with pytest.raises(KubeError, match="cannot reach the Kubernetes API") as e:
            await client.request("GET", "/version")
    assert "wrong.example" in str(e.value)


PLUGIN = """#!{python}
import json, os, pathlib
state = pathlib.Path(os.environ["PLUGIN_STATE"])
answers = (state / "answers.jsonl").read_text().splitlines()
count = state / "count"
n = int(count.read_text()) + 1 if count.exists() else 1
count.write_text(str(n))
status = json.loads(answers[min(n, len(answers)) - 1])
print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1beta1",
                   "kind": "ExecCredential", "status": status}}))
"""


def plugin_kubeconfig(kubeconfig: str, tmp_path: Path, answers: list[dict[str, str]]) -> Path:
    """A kubeconfig whose user is an exec plugin answering ``answers`` in turn (then the
    last one again)."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "answers.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
    plugin = tmp_path / "plugin"
    plugin.write_text(PLUGIN.format(python=sys.executable))
    plugin.chmod(0o755)
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": str(plugin),
            "env": [{"name": "PLUGIN_STATE", "value": str(state)}],
        }
    }
    return write_kubeconfig(tmp_path / "kubeconfig", dev_cluster(kubeconfig), user)


def admin_token(kubeconfig: str) -> str:
    return str(yaml.safe_load(Path(kubeconfig).read_text())["users"][0]["user"]["token"])


async def test_an_exec_token_rejected_with_401_is_renewed_once(
    kubeconfig: str, tmp_path: Path
) -> None:
    answers = [{"token": "stale-token"}, {"token": admin_token(kubeconfig)}]
    path = plugin_kubeconfig(kubeconfig, tmp_path, answers)

    async with await KubeClient.connect(str(path)) as client:
        body = await client.request("GET", "/api/v1/namespaces/default")

    assert body["metadata"]["name"] == "default"
    auth = client.config.auth
    assert isinstance(auth, ExecAuth) and auth.runs == 2
    assert client.requests == {("GET", 401): 1, ("GET", 200): 1}


async def test_an_exec_token_still_rejected_after_renewal_fails_with_401(
    kubeconfig: str, tmp_path: Path
) -> None:
    path = plugin_kubeconfig(kubeconfig, tmp_path, [{"token": "stale"}, {"token": "staler"}])

    async with await KubeClient.connect(str(path)) as client:
        with pytest.raises(KubeError) as e:
            await client.request("GET", "/api/v1/namespaces/default")

    assert e.value.status == 401 and "credentials" in str(e.value)
    auth = client.config.auth
    assert isinstance(auth, ExecAuth) and auth.runs == 2
    assert client.requests == {("GET", 401): 2}


async def test_an_exec_plugin_may_answer_with_a_client_certificate(
    kubeconfig: str, tmp_path: Path
) -> None:
    cert, key = client_cert(tmp_path / "pki", dev_ca(), "exec-admin", "system:masters")
    answer = {"clientCertificateData": cert.read_text(), "clientKeyData": key.read_text()}
    path = plugin_kubeconfig(kubeconfig, tmp_path, [answer])

    async with await KubeClient.connect(str(path)) as client:
        items, _ = await client.list("v1", "Namespace")

    assert any(i["metadata"]["name"] == "default" for i in items)


async def test_in_cluster_uses_the_service_account_and_follows_its_rotation(
    kube: KubeClient, kubeconfig: str, namespace: str, tmp_path: Path
) -> None:
    first = await service_account_token(kube, namespace, "before")
    second = await service_account_token(kube, namespace, "after")
    await grant(kube, namespace, (namespace, "after"), LIST_CONFIGMAPS)
    sa_dir = tmp_path / "serviceaccount"
    sa_dir.mkdir()
    ca = base64.b64decode(dev_cluster(kubeconfig)["certificate-authority-data"])
    (sa_dir / "ca.crt").write_bytes(ca)
    (sa_dir / "token").write_text(first)
    host, port = dev_cluster(kubeconfig)["server"].removeprefix("https://").rsplit(":", 1)
    env = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}
    config = in_cluster_config(sa_dir, env, token_check=0.5)

    async with KubeClient(config) as client:
        with pytest.raises(KubeError) as e:
            await client.list("v1", "ConfigMap", namespace)
        assert e.value.status == 403 and f"{namespace}:before" in str(e.value)

        # The kubelet swaps the projected token in one rename.
        (sa_dir / "token.new").write_text(second)
        os.replace(sa_dir / "token.new", sa_dir / "token")

        async def lists() -> bool:
            try:
                await client.list("v1", "ConfigMap", namespace)
            except KubeError as e:
                assert e.status == 403
                return False
            return True

        await eventually(lists, WAIT, "the rotated token used")
        assert await client.bearer_token() == second
