"""What the per-kind rules change in a sync, on the real control plane: new Services and
workloads the check vouches for cost one apply each and no dry-run, and one the server would
refuse fails the sync before anything is applied."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from devcluster.gitserver import RepoHandle
from tests.integration.test_schema_against_server import with_meta
from tests.integration.test_schema_rules_against_server import container, deploy, pod, svc, workload
from tests.integration.test_sync_requests import counted_sync, delete_app, files, new_app

from source_apps import APPS_NS
from tether.api.application import API_VERSION, crd_manifests
from tether.engine import Engine
from tether.kube import KubeClient
from tether.source import GitCache


@pytest.fixture
async def client(kubeconfig: str) -> AsyncIterator[KubeClient]:
    """A client of this test's own, so its request counters hold this test's requests only."""
    k = await KubeClient.connect(kubeconfig)
    for crd in crd_manifests():
        await k.apply(crd)
    await k.wait_for_resource(API_VERSION, "Application")
    await k.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APPS_NS}})
    yield k
    await k.close()


WORKLOADS = [
    svc({"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}),
    deploy(pod(container(ports=[{"name": "http", "containerPort": 8080}]))),
    with_meta(workload("StatefulSet"), name="db"),
    with_meta(workload("DaemonSet"), name="agent"),
    with_meta(workload("Job"), name="migrate"),
]


async def test_vouched_services_and_workloads_are_applied_without_a_dry_run(
    client: KubeClient, git_repo: RepoHandle, namespace: str, kube: KubeClient, tmp_path: Path
) -> None:
    engine = Engine(client, GitCache(tmp_path / "git"))
    git_repo.commit(files(WORKLOADS), message="workloads")
    app = await new_app(engine, git_repo, namespace)
    res, sent = await counted_sync(engine, app)
    assert res.ok, res.message
    assert sorted(r.action for r in res.results) == ["created"] * len(WORKLOADS)
    assert sent[("PATCH", 201)] == len(WORKLOADS), sent  # one apply each, no dry-run
    for obj in WORKLOADS:
        api_version, kind, name = obj["apiVersion"], obj["kind"], obj["metadata"]["name"]
        assert await kube.get(api_version, kind, name, namespace) is not None, kind
    await delete_app(engine, app)


async def test_a_workload_the_rules_refuse_fails_the_sync_with_nothing_applied(
    client: KubeClient, git_repo: RepoHandle, namespace: str, kube: KubeClient, tmp_path: Path
) -> None:
    engine = Engine(client, GitCache(tmp_path / "git"))
    greedy = container(resources={"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}})
    bad = with_meta(deploy(pod(greedy)), name="greedy")
    git_repo.commit(files([*WORKLOADS, bad]), message="one bad")
    app = await new_app(engine, git_repo, namespace)
    res, sent = await counted_sync(engine, app)
    assert not res.ok
    assert "greedy" in res.message and "must be less than or equal to the memory limit" in (
        res.message
    ), res.message
    assert sent[("PATCH", 201)] == 0, sent  # nothing applied, nothing dry-run
    assert await kube.get("v1", "Service", "web", namespace) is None
    await delete_app(engine, app)
