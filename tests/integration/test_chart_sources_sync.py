"""Applications whose source is a chart in a Helm repository or an OCI registry sync to the
real control plane, with credentials from repo-creds templates matched by type and host."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from devcluster.chartrepo import ChartRepo

from helm_repos import CHART, OCI_PASSWORD, OCI_USER, Registry
from tether.api.application import API_VERSION, Application, crd_manifests
from tether.compare import Comparison
from tether.engine import Engine
from tether.errors import SourceError
from tether.kube import KubeClient
from tether.model import HealthStatus, SyncStatus
from tether.source import GitCache
from tether.source.helm_repo import clear_index_cache


@pytest.fixture(scope="module")
async def engine(kube: KubeClient, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    for crd in crd_manifests():
        await kube.apply(crd)
    await kube.wait_for_resource(API_VERSION, "Application")
    return Engine(kube, GitCache(tmp_path_factory.mktemp("gitcache")))


@pytest.fixture(autouse=True)
def _fresh_index_cache() -> None:
    clear_index_cache()


async def repo_secret(kube: KubeClient, namespace: str, name: str, label: str, **data: str) -> None:
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"tether.dev/secret-type": label},
            },
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
    )


async def chart_app(engine: Engine, namespace: str, repo_url: str, revision: str) -> Application:
    """An Application in ``namespace`` deploying CHART there."""
    name = f"chart-{uuid.uuid4().hex[:8]}"
    source: dict[str, Any] = {
        "repoURL": repo_url,
        "chart": CHART,
        "targetRevision": revision,
        "helm": {"releaseName": "greeter"},
    }
    await engine.kube.apply(
        {
            "apiVersion": API_VERSION,
            "kind": "Application",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"source": source, "destination": {"namespace": namespace}},
        }
    )
    return await engine.get_app(name, namespace)


async def synced_healthy(engine: Engine, app: Application) -> Comparison:
    res = await engine.sync(app)
    assert res.ok, res.message
    deadline = asyncio.get_running_loop().time() + 90
    cmp = await engine.compare(app)
    while cmp.health.status != HealthStatus.HEALTHY or cmp.sync_status != SyncStatus.SYNCED:
        assert asyncio.get_running_loop().time() < deadline, (cmp.health, cmp.conditions)
        await asyncio.sleep(0.2)
        cmp = await engine.compare(app)
    return cmp


async def greeting_data(kube: KubeClient, namespace: str) -> dict[str, str]:
    obj = await kube.get("v1", "ConfigMap", "greeter-cm", namespace)
    assert obj is not None, "the chart's ConfigMap was not applied"
    return dict(obj.get("data") or {})


async def test_chart_from_an_oci_registry_with_a_credential_template_syncs(
    engine: Engine, kube: KubeClient, namespace: str, oci_registry_auth: Registry
) -> None:
    # One template for the whole registry, spelled without scheme; the source with oci://.
    host = oci_registry_auth.server.host
    await repo_secret(
        kube,
        namespace,
        "registry-template",
        "repo-creds",
        type="oci",
        url=host,
        username=OCI_USER,
        password=OCI_PASSWORD,
    )
    app = await chart_app(engine, namespace, oci_registry_auth.url, "1.2.*")
    cmp = await synced_healthy(engine, app)
    assert await greeting_data(kube, namespace) == {
        "greeting": "hello from 1.2.4",
        "chartVersion": "1.2.4",
    }
    assert cmp.desired is not None and cmp.desired.source_revisions[0].revision == "1.2.4"


async def test_helm_credentials_match_by_type_and_a_refusal_names_the_secret(
    engine: Engine,
    kube: KubeClient,
    namespace: str,
    chart_repo_factory: Callable[..., ChartRepo],
) -> None:
    repo = chart_repo_factory("robot", "helm-pass-31")
    # A Git credential for the same URL is never offered to the chart repository.
    await repo_secret(
        kube, namespace, "git-same-url", "repository", url=repo.url, password="git-pass"
    )
    await repo_secret(
        kube,
        namespace,
        "charts-template",
        "repo-creds",
        type="helm",
        url=repo.url,
        username="robot",
        password="stale-helm-pass",
    )
    app = await chart_app(engine, namespace, repo.url + "/", "2.0.0")
    cmp = await engine.compare(app)
    assert isinstance(cmp.error, SourceError), cmp.error
    assert cmp.error.reason == "AuthenticationFailed"
    assert f"Secret {namespace}/charts-template" in str(cmp.error)
    assert "stale-helm-pass" not in str(cmp.error)
    assert all("git-pass" not in r.authorization for r in repo.requests)

    # A repository Secret for the same URL wins over the template.
    await repo_secret(
        kube,
        namespace,
        "charts-exact",
        "repository",
        type="helm",
        url=repo.url,
        username="robot",
        password="helm-pass-31",
    )
    await synced_healthy(engine, app)
    assert (await greeting_data(kube, namespace))["chartVersion"] == "2.0.0"
