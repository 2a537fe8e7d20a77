"""Sync options acted on against the real control plane: Replace, Force, Validate,
SkipDryRunOnMissingResource, PrunePropagationPolicy, ApplyOutOfSyncOnly,
RespectIgnoreDifferences, CreateNamespace with managedNamespaceMetadata, Argo CD's annotations
as aliases, IgnoreExtraneous, and an unknown option refused."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from devcluster.gitserver import RepoHandle
from own_namespace_app import app, engine, home
from test_engine import AppFixture, cm, deployment

from cluster_helpers import (
    WAIT,
    ControllerProcess,
    app_status,
    cm_yaml,
    condition,
    eventually,
    new_app,
    run_tether,
    widget_crd,
)
from tether.api.application import Application, new_application
from tether.errors import InvalidSpec
from tether.kube import KubeClient
from tether.model import ResourceKey, SyncStatus

_FIXTURES = (app, engine, home)


async def create(a: AppFixture, options: list[str], **spec: Any) -> Application:
    """The fixture's Application with these sync options and extra spec fields."""
    obj = new_application(
        a.name, a.namespace, repo_url=a.repo.http_url, path="app", dest_namespace=a.dest
    )
    policy = dict(spec.pop("syncPolicy", {}))
    obj["spec"]["syncPolicy"] = {**policy, "syncOptions": options}
    obj["spec"].update(spec)
    await a.engine.kube.apply(obj)
    return await a.get()


def job(name: str, image: str, annotations: dict[str, str] | None = None) -> str:
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return yaml.safe_dump(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta,
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "run", "image": image}],
                    }
                }
            },
        }
    )


async def test_unknown_option_is_refused_naming_it(app: AppFixture, kubeconfig: str) -> None:
    app.repo.commit({"app/cm.yaml": cm("c", {})})
    obj = new_application(app.name, app.namespace, repo_url=app.repo.http_url, path="app")
    obj["spec"]["syncPolicy"] = {"syncOptions": ["CreateNamespace=true", "PruneLastly=true"]}
    await app.engine.kube.apply(obj)  # the CRD's pattern lets it through: tether must not
    with pytest.raises(InvalidSpec) as e:
        await app.get()
    assert "unknown option 'PruneLastly'" in e.value.message
    assert "did you mean PruneLast?" in e.value.hint
    code, out = await run_tether(kubeconfig, "app", "sync", app.name, "-n", app.namespace)
    assert code != 0 and "unknown option 'PruneLastly'" in out, out

    # On an object: the comparison fails, naming the file and the annotation.
    app.repo.commit(
        {"app/cm.yaml": cm("c", {}, {"argocd.argoproj.io/sync-options": "Prune=sometimes"})}
    )
    a = await create(app, [])
    res = await app.engine.sync(a)
    assert not res.ok
    assert "app/cm.yaml:" in res.message
    assert "annotation argocd.argoproj.io/sync-options" in res.message
    assert "option Prune does not take the value 'sometimes'" in res.message
    assert await app.engine.kube.get("v1", "ConfigMap", "c", app.dest) is None


async def test_the_controller_reports_an_unknown_option(
    kube: KubeClient,
    home: str,
    git_repo: RepoHandle,
    namespace: str,
    tmp_path: Path,
    kubeconfig: str,
    processes: list[ControllerProcess],
) -> None:
    git_repo.commit({"app/cm.yaml": cm_yaml("c", {})})
    obj = new_app("typo", home, git_repo.http_url, namespace)
    obj["spec"]["syncPolicy"]["syncOptions"] = ["ApplyOutOfSyncOnly=yes"]
    await kube.apply(obj)
    processes.append(ControllerProcess(tmp_path, "ctl", kubeconfig, home).start())

    async def reported() -> dict[str, Any] | None:
        found = condition(await app_status(kube, home, "typo"), "InvalidSpec")
        if found and "option ApplyOutOfSyncOnly does not take the value 'yes'" in found["message"]:
            return found
        return None

    found = await eventually(reported, WAIT, "an InvalidSpec condition naming the option")
    assert "ApplyOutOfSyncOnly=true or ApplyOutOfSyncOnly=false" in found["message"]


async def test_replace_puts_the_whole_object(app: AppFixture, kube: KubeClient) -> None:
    opts = {"tether.dev/sync-options": "Replace=true,Validate=false"}
    app.repo.commit({"app/cm.yaml": cm("settings", {"mode": "blue"}, opts)})
    res = await app.engine.sync(await create(app, []))
    assert res.ok, res.message
    assert [(r.action, r.message) for r in res.results] == [("created", "created (Replace=true)")]
    live = await kube.get("v1", "ConfigMap", "settings", app.dest)
    assert live is not None
    # Another writer adds a key; server-side apply would leave it, a replace drops it.
    await kube.merge_patch(live, {"data": {"extra": "x"}}, field_manager="someone")
    app.repo.commit({"app/cm.yaml": cm("settings", {"mode": "green"}, opts)})
    res = await app.engine.sync(await app.get())
    assert res.ok, res.message
    assert [(r.action, r.message) for r in res.results] == [
        ("configured", "replaced (Replace=true)")
    ]
    after = await kube.get("v1", "ConfigMap", "settings", app.dest)
    assert after is not None and after["data"] == {"mode": "green"}
    assert after["metadata"]["uid"] == live["metadata"]["uid"]  # replaced, not re-created


async def test_force_recreates_on_an_immutable_field_only_when_asked(
    app: AppFixture, kube: KubeClient
) -> None:
    app.repo.commit({"app/job.yaml": job("migrate", "busybox:1")})
    res = await app.engine.sync(await create(app, []))
    assert res.ok, res.message
    first = await kube.get("batch/v1", "Job", "migrate", app.dest)
    assert first is not None

    app.repo.commit({"app/job.yaml": job("migrate", "busybox:2")})
    res = await app.engine.sync(await app.get())
    assert not res.ok
    assert "field is immutable" in res.message and "Force=true" in res.message
    still = await kube.get("batch/v1", "Job", "migrate", app.dest)
    assert still is not None and still["metadata"]["uid"] == first["metadata"]["uid"]

    forced = {"argocd.argoproj.io/sync-options": "Force=true"}
    app.repo.commit({"app/job.yaml": job("migrate", "busybox:2", forced)})
    res = await app.engine.sync(await app.get())
    assert res.ok, res.message
    (r,) = res.results
    assert r.action == "created" and r.message.startswith("deleted and re-created (Force=true)")
    now = await kube.get("batch/v1", "Job", "migrate", app.dest)
    assert now is not None and now["metadata"]["uid"] != first["metadata"]["uid"]
    image = now["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "busybox:2"


async def test_crd_and_its_resource_in_one_sync(app: AppFixture, kube: KubeClient) -> None:
    group = f"opt{uuid.uuid4().hex[:6]}.example.com"
    crd = widget_crd(group, "widgets", "Widget")
    widget = {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {
            "name": "w",
            "annotations": {"argocd.argoproj.io/sync-options": "SkipDryRunOnMissingResource=true"},
        },
        "spec": {"size": 2},
    }
    app.repo.commit({"app/crd.yaml": yaml.safe_dump(crd), "app/w.yaml": yaml.safe_dump(widget)})
    try:
        res = await app.engine.sync(await create(app, []))
        assert res.ok, res.message
        live = await kube.get(f"{group}/v1", "Widget", "w", app.dest)
        assert live is not None and live["spec"] == {"size": 2}
    finally:
        await kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", f"widgets.{group}")


async def test_a_resource_whose_crd_comes_from_elsewhere(app: AppFixture, kube: KubeClient) -> None:
    group = f"opt{uuid.uuid4().hex[:6]}.example.com"
    gadget = {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    app.repo.commit({"app/g.yaml": yaml.safe_dump({**gadget, "spec": {"size": 1}})})
    res = await app.engine.sync(await create(app, []))
    assert not res.ok
    assert "app/g.yaml:" in res.message
    assert f"does not serve kind Gadget in apiVersion {group}/v1" in res.message
    assert "SkipDryRunOnMissingResource=true" in res.message

    # With the option, the dry run is skipped and the apply waits for the kind, which
    # something else (here: the test) creates meanwhile.
    crd_name = f"gadgets.{group}"
    sync = asyncio.create_task(
        app.engine.sync(await create(app, ["SkipDryRunOnMissingResource=true"]))
    )
    try:
        await kube.apply(widget_crd(group, "gadgets", "Gadget"))
        res = await asyncio.wait_for(sync, WAIT)
        assert res.ok, res.message
        assert await kube.get(f"{group}/v1", "Gadget", "g", app.dest) is not None
    finally:
        await kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd_name)


async def test_prune_propagation_orphan_leaves_the_dependents(
    app: AppFixture, kube: KubeClient
) -> None:
    app.repo.commit({"app/web.yaml": deployment("web", replicas=1), "app/cm.yaml": cm("c", {})})
    res = await app.engine.sync(await create(app, ["PrunePropagationPolicy=orphan"]))
    assert res.ok, res.message

    async def replica_sets() -> list[dict[str, Any]]:
        items, _ = await kube.list("apps/v1", "ReplicaSet", app.dest)
        return items

    (rs,) = await eventually(replica_sets, WAIT, "the Deployment's ReplicaSet")
    app.repo.commit({"app/web.yaml": None})
    res = await app.engine.sync(await app.get(), prune=True)
    assert res.ok, res.message
    assert ("web", "pruned") in {(r.key.name, r.action) for r in res.results}

    async def deployment_gone() -> bool:
        return await kube.get("apps/v1", "Deployment", "web", app.dest) is None

    await eventually(deployment_gone, WAIT, "the Deployment deleted")

    async def orphaned() -> bool:
        live = await kube.get("apps/v1", "ReplicaSet", rs["metadata"]["name"], app.dest)
        return live is not None and not live["metadata"].get("ownerReferences")

    await eventually(orphaned, WAIT, "the ReplicaSet left, without its owner")


async def test_apply_out_of_sync_only_leaves_synced_objects_alone(
    app: AppFixture, kube: KubeClient
) -> None:
    app.repo.commit({"app/a.yaml": cm("a", {"v": "1"}), "app/b.yaml": cm("b", {"v": "1"})})
    res = await app.engine.sync(await create(app, ["ApplyOutOfSyncOnly=true"]))
    assert res.ok, res.message
    a_before = await kube.get("v1", "ConfigMap", "a", app.dest)
    assert a_before is not None
    app.repo.commit({"app/b.yaml": cm("b", {"v": "2"})})
    res = await app.engine.sync(await app.get())
    assert res.ok, res.message
    assert {(r.key.name, r.action) for r in res.results} == {
        ("a", "unchanged"),
        ("b", "configured"),
    }
    a_after = await kube.get("v1", "ConfigMap", "a", app.dest)
    assert a_after is not None
    assert a_after["metadata"]["resourceVersion"] == a_before["metadata"]["resourceVersion"]


async def test_respect_ignore_differences_keeps_the_live_replicas(
    app: AppFixture, kube: KubeClient
) -> None:
    app.repo.commit({"app/web.yaml": deployment("web", image="nginx:1.26", replicas=1)})
    ignore = [{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]
    a = await create(app, ["RespectIgnoreDifferences=true"], ignoreDifferences=ignore)
    res = await app.engine.sync(a)
    assert res.ok, res.message
    live = await kube.get("apps/v1", "Deployment", "web", app.dest)
    assert live is not None
    await kube.merge_patch(live, {"spec": {"replicas": 3}}, field_manager="autoscaler")
    app.repo.commit({"app/web.yaml": deployment("web", image="nginx:1.27", replicas=1)})
    res = await app.engine.sync(await app.get())
    assert res.ok, res.message
    after = await kube.get("apps/v1", "Deployment", "web", app.dest)
    assert after is not None
    assert after["spec"]["replicas"] == 3
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"


async def test_created_namespace_carries_managed_metadata(
    app: AppFixture, kube: KubeClient
) -> None:
    app.dest = f"t-md-{uuid.uuid4().hex[:6]}"
    app.repo.commit({"app/cm.yaml": cm("c", {})})
    policy = {
        "managedNamespaceMetadata": {
            "labels": {"team": "payments"},
            "annotations": {"example.com/owner": "alice"},
        }
    }
    try:
        res = await app.engine.sync(await create(app, ["CreateNamespace=true"], syncPolicy=policy))
        assert res.ok, res.message
        ns_result = next(r for r in res.results if r.key.kind == "Namespace")
        assert ns_result.action == "created"
        assert "managedNamespaceMetadata" in ns_result.message
        ns = await kube.get("v1", "Namespace", app.dest)
        assert ns is not None
        assert ns["metadata"]["labels"]["team"] == "payments"
        assert ns["metadata"]["annotations"]["example.com/owner"] == "alice"

        policy["managedNamespaceMetadata"]["labels"] = {"team": "billing"}
        res = await app.engine.sync(await create(app, ["CreateNamespace=true"], syncPolicy=policy))
        assert res.ok, res.message
        ns = await kube.get("v1", "Namespace", app.dest)
        assert ns is not None and ns["metadata"]["labels"]["team"] == "billing"
        assert ("Namespace", "configured") in {(r.key.kind, r.action) for r in res.results}
    finally:
        await kube.delete("v1", "Namespace", app.dest, propagation="Background")


async def test_argocd_annotations_protect_and_hide_what_left_git(
    app: AppFixture, kube: KubeClient, kubeconfig: str
) -> None:
    keep = {"argocd.argoproj.io/sync-options": "Prune=false"}
    quiet = {"argocd.argoproj.io/compare-options": "IgnoreExtraneous"}
    app.repo.commit(
        {
            "app/keep.yaml": cm("keep", {}, keep),
            "app/quiet.yaml": cm("quiet", {}, quiet),
            "app/a.yaml": cm("a", {}),
            "app/b.yaml": cm("b", {}),
        }
    )
    res = await app.engine.sync(await create(app, []))
    assert res.ok, res.message

    # IgnoreExtraneous: an object that left Git (not pruned) does not make the app OutOfSync.
    app.repo.commit({"app/quiet.yaml": None})
    res = await app.engine.sync(await app.get())
    assert res.ok, res.message
    cmp = await app.engine.compare(await app.get())
    key = ResourceKey("", "ConfigMap", app.dest, "quiet")
    assert cmp.resources[key].diff.status.value == "Extraneous"
    assert "IgnoreExtraneous" in cmp.resources[key].message
    assert cmp.sync_status == SyncStatus.SYNCED
    code, out = await run_tether(kubeconfig, "-n", app.namespace, "app", "diff", app.name)
    assert code == 0, out

    # Prune=false in Argo CD's annotation keeps an object that left Git.
    app.repo.commit({"app/keep.yaml": None})
    res = await app.engine.sync(await app.get(), prune=True)
    assert res.ok, res.message
    actions = {r.key.name: (r.action, r.message) for r in res.results}
    assert actions["keep"] == (
        "kept",
        "not pruned: annotation argocd.argoproj.io/sync-options: Prune=false",
    )
    assert actions["quiet"][0] == "pruned"
    assert await kube.get("v1", "ConfigMap", "keep", app.dest) is not None


async def test_a_forced_apply_names_the_manager_it_took_fields_from(
    app: AppFixture, kube: KubeClient
) -> None:
    app.repo.commit({"app/cm.yaml": cm("settings", {"mode": "blue"})})
    res = await app.engine.sync(await create(app, ["ServerSideApply=true"]))
    assert res.ok, res.message
    live = await kube.get("v1", "ConfigMap", "settings", app.dest)
    assert live is not None
    await kube.merge_patch(live, {"data": {"mode": "red"}}, field_manager="kubectl-edit")
    res = await app.engine.sync(await app.get())
    assert res.ok, res.message
    assert [(r.action, r.message) for r in res.results] == [
        ("configured", "took over fields from field manager(s) kubectl-edit")
    ]
    after = await kube.get("v1", "ConfigMap", "settings", app.dest)
    assert after is not None and after["data"] == {"mode": "blue"}
