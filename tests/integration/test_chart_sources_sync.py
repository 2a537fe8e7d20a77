"""Applications whose source is a chart in a Helm repository or an OCI registry sync to the
real control plane, with credentials from repo-creds templates matched by type and host."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from devcluster.chartrepo import ChartRepo

from helm_repos import CHART, OCI_PASSWORD, OCI_USER, Registry
from source_apps import apply_app, repo_secret, synced_healthy, unique_name
from tether.api.application import Application
from tether.engine import Engine
from tether.errors import SourceError
from tether.kube import KubeClient
from tether.source.helm_repo import clear_index_cache


@pytest.fixture(autouse=True)
def _fresh_index_cache() -> None:
    clear_index_cache()


async def chart_app(engine: Engine, namespace: str, repo_url: str, revision: str) -> Application:
    """An Application in ``namespace`` deploying CHART there."""
    source: dict[str, Any] = {
        "repoURL": repo_url,
        "chart": CHART,
        "targetRevision": revision,
        "helm": {"releaseName": "greeter"},
    }
    return await apply_app(engine, unique_name("chart"), namespace, {"source": source}, namespace)


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
