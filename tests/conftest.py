"""Shared fixtures: the real local control plane, the real git server, a namespace per test."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from devcluster.cluster import Cluster  # noqa: E402

from tether.kube import KubeClient  # noqa: E402

pytest_plugins = [
    name
    for name in ("git_fixtures", "cluster_helpers", "helm_repos", "source_apps", "api_fixtures")
    if (Path(__file__).parent / f"{name}.py").exists()
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything not marked as a unit test talks to real services.
    for item in items:
        if "unit" not in item.keywords:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[str]:
    """The local control plane, started if needed (`make test` starts it first)."""
    cluster = Cluster()
    cluster.up()
    path = str(cluster.p.kubeconfig)
    os.environ["KUBECONFIG"] = path
    yield path


@pytest.fixture(scope="session")
async def kube(kubeconfig: str) -> AsyncIterator[KubeClient]:
    client = await KubeClient.connect(kubeconfig)
    yield client
    await client.close()


@pytest.fixture
async def namespace(kube: KubeClient) -> AsyncIterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    await kube.delete("v1", "Namespace", name, propagation="Background")
