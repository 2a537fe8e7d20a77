"""The resource tree an app's page shows, from YAML fixtures: managed objects, hooks and
pruned objects as roots, owned objects below them through ownerReferences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.model import ResourceKey
from tether.server.api import tree

pytestmark = pytest.mark.unit
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "api"


def load(name: str) -> Any:
    return yaml.safe_load((FIXTURES / name).read_text())


def nodes() -> dict[str, dict[str, Any]]:
    app = load("tree-app.yaml")
    live = load("tree-live.yaml")
    by_key = {ResourceKey.of(o): o for o in live["roots"]}
    return {f"{n['kind']}/{n['name']}": n for n in tree.build(app, by_key, live["candidates"])}


def test_managed_objects_are_roots_with_their_status_and_health() -> None:
    n = nodes()
    web = n["Deployment/web"]
    assert (web["uid"], web["managed"], web["hook"], web["pruned"]) == ("dep-1", True, False, False)
    assert web["status"] == "Synced" and web["health"] == {"status": "Healthy", "message": ""}
    assert web["parents"] == [] and web["createdAt"] == "2026-11-27T10:00:00Z"
    settings = n["ConfigMap/settings"]
    assert settings["status"] == "OutOfSync" and settings["health"] is None


def test_deployment_replicaset_pod_chain_whatever_the_order_listed() -> None:
    n = nodes()
    assert n["ReplicaSet/web-abc"]["parents"] == ["dep-1"]
    assert n["Pod/web-abc-1"]["parents"] == ["rs-1"]
    assert not n["Pod/web-abc-1"]["managed"]
    assert n["Pod/web-abc-1"]["health"]["status"] in ("Healthy", "Progressing")


def test_hooks_and_pruned_objects_are_marked() -> None:
    n = nodes()
    job = n["Job/migrate"]
    assert job["hook"] and not job["managed"] and job["uid"] == "job-1"
    assert n["Pod/migrate-x"]["parents"] == ["job-1"]
    old = n["Service/old"]
    assert old["pruned"] and old["uid"] == "" and not old["managed"]


def test_objects_owned_by_something_outside_the_tree_are_left_out() -> None:
    n = nodes()
    assert "Pod/stranger" not in n and "ReplicaSet/orphan" not in n
    assert len(n) == 7


def test_contains_only_the_trees_objects() -> None:
    app = load("tree-app.yaml")
    live = load("tree-live.yaml")
    built = tree.build(app, {ResourceKey.of(o): o for o in live["roots"]}, live["candidates"])
    assert tree.contains(built, ResourceKey("", "Pod", "shop", "web-abc-1"))
    assert tree.contains(built, ResourceKey("", "Service", "shop", "old"))
    assert not tree.contains(built, ResourceKey("", "Secret", "shop", "web-abc-1"))
    assert not tree.contains(built, ResourceKey("", "Pod", "kube-system", "web-abc-1"))


def test_an_app_never_synced_has_no_nodes() -> None:
    assert tree.build({"metadata": {"name": "x"}}, {}, []) == []
    assert not tree.may_own(tree.roots({"status": {"resources": [{"kind": "ConfigMap"}]}}))
