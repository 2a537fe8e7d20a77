"""A sync that fails part-way, on the real control plane and git server: what was applied
stays recorded, what failed is named, and the next sync finishes the job."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from devcluster.gitserver import RepoHandle

from cluster_helpers import cm_yaml, widget_crd
from tether.api.application import API_VERSION, Application, new_application
from tether.engine import Engine
from tether.kube import KubeClient
from tether.source import GitCache


async def app_for(kube: KubeClient, ns: str, repo: RepoHandle, dest: str) -> Application:
    obj = new_application("partial", ns, repo_url=repo.http_url, path="app", dest_namespace=dest)
    await kube.apply(obj)
    got = await kube.get(API_VERSION, "Application", "partial", ns)
    assert got is not None
    return Application.from_obj(got)


async def inventory(kube: KubeClient, ns: str) -> set[str]:
    got = await kube.get(API_VERSION, "Application", "partial", ns)
    return {i["name"] for i in ((got or {}).get("status") or {}).get("inventory") or []}


async def going(kube: KubeClient, name: str, ns: str) -> bool:
    """Gone, or being deleted (a foreground delete waits for the garbage collector)."""
    obj = await kube.get("v1", "ConfigMap", name, ns)
    return obj is None or bool(obj["metadata"].get("deletionTimestamp"))


@pytest.fixture
async def crd_group(kube: KubeClient) -> AsyncIterator[str]:
    """A group name of this test's own; its CRD is deleted afterwards."""
    group = f"g{uuid.uuid4().hex[:8]}.tether.test"
    yield group
    await kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", f"widgets.{group}", "")


async def test_a_later_step_failing_keeps_what_earlier_steps_applied_and_says_what_failed(
    kube: KubeClient,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    crd_group: str,
) -> None:
    crd = widget_crd(crd_group, "widgets", "Widget")
    # The Widget cannot be checked before its CRD exists; the server refuses it only after
    # the CRD and the ConfigMap were applied.
    widget = {
        "apiVersion": f"{crd_group}/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": "not a number"},
    }
    git_repo.commit(
        {
            "app/crd.yaml": yaml.safe_dump(crd),
            "app/cm.yaml": cm_yaml("first", {}),
            "app/widget.yaml": yaml.safe_dump(widget),
        }
    )
    engine = Engine(kube, GitCache(tmp_path / "git"))
    res = await engine.sync(await app_for(kube, home, git_repo, namespace))

    assert res.phase == "Failed"
    assert f"Widget.{crd_group} {namespace}/w" in res.message, res.message
    assert "app/widget.yaml" in res.message
    actions = {r.key.name: r.action for r in res.results}
    assert actions[f"widgets.{crd_group}"] == "created" and actions["first"] == "created"
    assert actions["w"] == "failed"
    assert await kube.get("v1", "ConfigMap", "first", namespace) is not None
    # The status records the failure and owns what was applied, so a later sync or delete
    # knows about it.
    st = ((await kube.get(API_VERSION, "Application", "partial", home)) or {})["status"]
    assert st["operationState"]["phase"] == "Failed"
    assert {"first", f"widgets.{crd_group}"} <= await inventory(kube, home)
    assert "w" not in await inventory(kube, home)

    # Fixed in Git: the next sync applies the rest.
    widget["spec"]["size"] = 3
    git_repo.commit({"app/widget.yaml": yaml.safe_dump(widget)})
    engine.git.forget_refs()
    res = await engine.sync(await engine.get_app("partial", home))
    assert res.ok, res.message
    assert {"first", "w", f"widgets.{crd_group}"} <= await inventory(kube, home)


async def test_a_prune_failing_midway_stops_there_and_the_next_sync_finishes_it(
    kube: KubeClient,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    names = ["a", "b", "c", "d", "e", "f", "g"]
    git_repo.commit({f"app/{n}.yaml": cm_yaml(n, {}) for n in names})
    engine = Engine(kube, GitCache(tmp_path / "git"))
    res = await engine.sync(await app_for(kube, home, git_repo, namespace))
    assert res.ok, res.message
    # e, f and g leave Git.
    git_repo.commit({}, delete=["app/e.yaml", "app/f.yaml", "app/g.yaml"])
    engine.git.forget_refs()
    app = await engine.get_app("partial", home)
    cmp = await engine.compare(app)
    # Between the comparison and the prune, f is replaced by another object of that name:
    # the prune of f is refused (its uid changed) and the prune stops there.
    f = await kube.get("v1", "ConfigMap", "f", namespace)
    assert f is not None
    await kube.delete("v1", "ConfigMap", "f", namespace, propagation="Background")
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "f",
                "namespace": namespace,
                "labels": f["metadata"]["labels"],
                "annotations": f["metadata"]["annotations"],
            },
        }
    )
    res = await engine.sync(app, prune=True, comparison=cmp)

    assert res.phase == "Failed"
    assert f"ConfigMap {namespace}/f: prune failed" in res.message
    actions = {r.key.name: r.action for r in res.results}
    assert actions["e"] == "pruned" and actions["f"] == "failed" and "g" not in actions
    assert await going(kube, "e", namespace)
    assert await kube.get("v1", "ConfigMap", "g", namespace) is not None
    # What was not pruned stays in the inventory, so the next sync prunes it.
    assert await inventory(kube, home) == {"a", "b", "c", "d", "f", "g"}

    res = await engine.sync(await engine.get_app("partial", home), prune=True)
    assert res.ok, res.message
    assert {r.key.name for r in res.results if r.action == "pruned"} == {"f", "g"}
    assert await inventory(kube, home) == {"a", "b", "c", "d"}
