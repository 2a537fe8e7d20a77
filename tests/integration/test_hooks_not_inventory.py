"""Hooks are not the app's resources, against the real control plane and git server: they are
split out of the desired objects, never compared, never in ``status.resources`` or the
inventory, and an instance a hook left behind is never pruned."""

from __future__ import annotations

from typing import Any

import yaml
from own_namespace_app import app, engine, home
from test_engine import AppFixture, cm

from cluster_helpers import app_status
from tether.api.application import APP_LABEL, TRACKING_ANNOTATION, Application
from tether.errors import InvalidSpec
from tether.kube import KubeClient
from tether.model import ResourceKey, SyncStatus
from tether.sync.hooks import (
    HOOK_ID_LABEL,
    HOOK_OF_ANNOTATION,
    INSTANCE_OF_LABEL,
    HookPhase,
    hook_of,
    instance_labels,
    mark,
)

_FIXTURES = (app, engine, home)


def hook_job(annotations: dict[str, str], **meta: str) -> dict[str, Any]:
    """A Job that completes at once (the node simulator ends run-to-completion pods
    Succeeded)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {**meta, "annotations": annotations},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "run", "image": "busybox:1"}],
                }
            },
        },
    }


MIGRATE = hook_job(
    {"tether.dev/hook": "PreSync", "tether.dev/hook-delete-policy": "HookSucceeded"},
    name="migrate",
)
OLD_MIGRATE = hook_job({"tether.dev/hook": "PreSync"}, name="migrate-v1")
"""A hook an earlier commit had: its last run is still in the cluster."""
SEED = hook_job(
    {
        "argocd.argoproj.io/hook": "PostSync",
        "argocd.argoproj.io/hook-delete-policy": "HookSucceeded",
    },
    generateName="seed-",
)


async def leftover(kube: KubeClient, a: Application, definition: dict[str, Any], name: str) -> None:
    """An instance of the hook ``definition`` as a sync leaves it in the destination namespace
    (marked as the app's hook, with the instance labels), already run to completion."""
    obj = mark(
        a,
        {
            **definition,
            "metadata": {**definition["metadata"], "namespace": a.destination.namespace},
        },
    )
    obj["metadata"].pop("generateName", None)
    obj["metadata"]["name"] = name
    await kube.create(obj)


async def test_hooks_are_kept_apart_and_their_instances_never_become_resources(
    app: AppFixture, kube: KubeClient
) -> None:
    app.repo.commit(
        {
            "app/cm.yaml": cm("settings", {"mode": "blue"}),
            "app/migrate.yaml": yaml.safe_dump(MIGRATE),
            "app/seed.yaml": yaml.safe_dump(SEED),
        }
    )
    a = await app.create()
    engine = app.engine

    desired = await engine.desired.fetch_desired(a)
    config = ResourceKey("", "ConfigMap", app.dest, "settings")
    assert [m.key for m in desired.manifests] == [config]
    assert set(desired.sources) == {config}
    by_file = {m.source_file: m for m in desired.hooks}
    assert set(by_file) == {"app/migrate.yaml", "app/seed.yaml"}
    for m in desired.hooks:
        meta = m.obj["metadata"]
        assert meta["namespace"] == app.dest  # the app's destination, like any object
        assert TRACKING_ANNOTATION not in meta["annotations"]
        assert meta["annotations"][HOOK_OF_ANNOTATION] == f"{a.namespace}/{a.name}"
        assert meta["labels"][APP_LABEL] == a.label_value
        assert meta["labels"][INSTANCE_OF_LABEL] == a.label_value
    seed = hook_of(by_file["app/seed.yaml"], first_install=True)
    assert seed is not None and seed.phases == {HookPhase.POST_SYNC}
    assert seed.generate_name == "seed-" and "name" not in seed.manifest.obj["metadata"]
    assert (
        instance_labels(a, seed)[HOOK_ID_LABEL]
        == seed.manifest.obj["metadata"]["labels"][HOOK_ID_LABEL]
    )

    cmp = await engine.compare(a)
    assert cmp.error is None, cmp.error
    assert set(cmp.resources) == {config}

    res = await engine.sync(a, prune=True)
    assert res.ok, res.message
    assert await kube.get("v1", "ConfigMap", "settings", app.dest) is not None

    # What earlier syncs left behind, marked as the engine marks hooks: the last run of a hook
    # since removed from Git, and a run of the generateName hook.
    await leftover(kube, a, OLD_MIGRATE, "migrate-v1")
    await leftover(kube, a, SEED, "seed-x7k2p")
    a = await app.get()
    cmp = await engine.compare(a)
    assert cmp.sync_status == SyncStatus.SYNCED, cmp.diffs()
    assert set(cmp.resources) == {config}

    res = await engine.sync(a, prune=True)
    assert res.ok, res.message
    assert all(r.action != "pruned" for r in res.results), res.results
    for name in ("migrate-v1", "seed-x7k2p"):
        assert await kube.get("batch/v1", "Job", name, app.dest) is not None, name

    status = await app_status(kube, a.namespace, a.name)
    listed = {(r["kind"], r["name"]) for r in status["resources"]}
    inventory = {(r["kind"], r["name"]) for r in status["inventory"]}
    assert listed == inventory == {("ConfigMap", "settings")}
    assert status["sync"]["status"] == "Synced"


async def test_a_mistake_in_a_hook_fails_the_comparison_naming_file_and_line(
    app: AppFixture,
) -> None:
    bad = hook_job({"argocd.argoproj.io/hook": "BeforeSync"}, name="migrate")
    app.repo.commit(
        {"app/cm.yaml": cm("settings", {"mode": "blue"}), "app/migrate.yaml": yaml.safe_dump(bad)}
    )
    cmp = await app.engine.compare(await app.create())
    assert isinstance(cmp.error, InvalidSpec), cmp.error
    assert cmp.error.message == (
        f"app/migrate.yaml:1: Job {app.dest}/migrate: annotation argocd.argoproj.io/hook "
        "names an unknown hook phase 'BeforeSync'"
    )
    assert [c.type for c in cmp.conditions] == ["InvalidSpec"]
