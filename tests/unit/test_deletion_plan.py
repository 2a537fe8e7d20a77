"""What deleting an Application asks for, and the order its objects go in (pure logic)."""

from __future__ import annotations

from typing import Any

import pytest

from tether.deletion.cascade import Progress
from tether.deletion.plan import Target, keep_reason, plan_cascade
from tether.deletion.policy import (
    ARGOCD_BACKGROUND_FINALIZER,
    ARGOCD_FINALIZER,
    FINALIZER,
    POLICY_ANNOTATION,
    Policy,
    deletion_changed,
    deletion_policy,
    holds_ours,
    propagation,
    without_ours,
)
from tether.model import Obj, ResourceKey

pytestmark = pytest.mark.unit

APP_NS, APP = "tether-system", "shop"


def application(
    finalizers: list[str] | None = None,
    annotations: dict[str, str] | None = None,
    options: list[str] | None = None,
) -> Obj:
    return {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": APP,
            "namespace": APP_NS,
            "finalizers": finalizers or [],
            "annotations": annotations or {},
        },
        "spec": {"syncPolicy": {"syncOptions": options or []}},
    }


def live(
    api_version: str,
    kind: str,
    name: str,
    namespace: str = "demo",
    *,
    owner: str = f"{APP_NS}_{APP}",
    **annotations: str,
) -> Obj:
    obj: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "annotations": dict(annotations)},
    }
    if namespace:
        obj["metadata"]["namespace"] = namespace
    key = ResourceKey.of(obj)
    obj["metadata"]["annotations"]["tether.dev/tracking-id"] = key.tracking_id(*owner.split("_", 1))
    return obj


@pytest.fixture
def app_objects() -> list[Obj]:
    return [
        live("v1", "Namespace", "demo", ""),
        live("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com", ""),
        live("v1", "ConfigMap", "settings"),
        live("apps/v1", "Deployment", "web"),
        live("v1", "Service", "web"),
        live("rbac.authorization.k8s.io/v1", "RoleBinding", "web"),
        live("batch/v1", "Job", "migrate", **{"tether.dev/sync-wave": "-1"}),
        live("v1", "ConfigMap", "late", **{"argocd.argoproj.io/sync-wave": "5"}),
        live("v1", "Secret", "kept", **{"tether.dev/sync-options": "Delete=false"}),
        live("v1", "ConfigMap", "argo-kept", **{"argocd.argoproj.io/sync-options": "Delete=false"}),
        live("v1", "ConfigMap", "helm-kept", **{"helm.sh/resource-policy": "keep"}),
        live("v1", "ConfigMap", "theirs", owner="tether-system_other"),
    ]


def plan_of(objs: list[Obj], gone: list[ResourceKey] | None = None) -> Any:
    inventory = {ResourceKey.of(o): str(o["apiVersion"]) for o in objs}
    for k in gone or []:
        inventory[k] = "v1"
    return plan_cascade(APP_NS, APP, inventory, {ResourceKey.of(o): o for o in objs})


def labels(plan: Any) -> list[tuple[str, list[str]]]:
    return [(s.label, [t.key.name for t in s.targets]) for s in plan.steps]


def test_steps_go_highest_wave_first_workloads_before_what_they_use_then_crds_then_namespaces(
    app_objects: list[Obj],
) -> None:
    plan = plan_of(app_objects)
    assert labels(plan) == [
        ("wave 5 (ConfigMap)", ["late"]),
        ("wave 0 (Deployment, Service)", ["web", "web"]),
        ("wave 0 (RoleBinding)", ["web"]),
        ("wave 0 (ConfigMap)", ["settings"]),
        ("wave -1 (Job)", ["migrate"]),
        ("CustomResourceDefinitions", ["widgets.example.com"]),
        ("Namespaces", ["demo"]),
    ]


def test_delete_false_in_either_spelling_helm_keep_and_other_apps_objects_stay(
    app_objects: list[Obj],
) -> None:
    kept = dict((k.name, why) for k, why in plan_of(app_objects).kept)
    assert set(kept) == {"kept", "argo-kept", "helm-kept", "theirs"}
    assert "Delete=false" in kept["kept"] and "Delete=false" in kept["argo-kept"]
    assert "helm.sh/resource-policy" in kept["helm-kept"]
    assert "another application" in kept["theirs"]


def test_tethers_own_sync_options_win_over_argo_cds() -> None:
    both = live(
        "v1",
        "ConfigMap",
        "x",
        **{
            "tether.dev/sync-options": "Prune=false",
            "argocd.argoproj.io/sync-options": "Delete=false",
        },
    )
    assert keep_reason(both, APP_NS, APP) == ""


def test_the_application_itself_in_its_own_inventory_is_never_waited_for() -> None:
    me = live("tether.dev/v1alpha1", "Application", APP, APP_NS)
    assert keep_reason(me, APP_NS, APP) == "the Application itself"


def test_objects_already_gone_are_reported_and_an_empty_plan_has_no_steps() -> None:
    gone = ResourceKey("", "ConfigMap", "demo", "old")
    plan = plan_of([], [gone])
    assert plan.steps == [] and plan.gone == [gone]


def test_a_wave_that_is_not_a_number_counts_as_zero() -> None:
    plan = plan_of([live("v1", "ConfigMap", "odd", **{"tether.dev/sync-wave": "soon"})])
    assert labels(plan) == [("wave 0 (ConfigMap)", ["odd"])]


@pytest.mark.parametrize(
    ("annotations", "finalizers", "want", "error"),
    [
        ({}, [], Policy.CASCADE, False),
        ({POLICY_ANNOTATION: "orphan"}, [FINALIZER], Policy.ORPHAN, False),
        ({POLICY_ANNOTATION: "Cascade"}, [], Policy.CASCADE, False),
        ({POLICY_ANNOTATION: "orphaned"}, [], Policy.CASCADE, True),
    ],
)
def test_deletion_policy_from_the_annotation(
    annotations: dict[str, str], finalizers: list[str], want: Policy, error: bool
) -> None:
    p = deletion_policy(application(finalizers, annotations))
    assert p.policy is want
    assert bool(p.error) is error
    if error:
        assert "'cascade'" in p.error and "'orphan'" in p.error and POLICY_ANNOTATION in p.error


def test_argo_cd_finalizers_count_as_ours_and_are_removed_with_ours_others_stay() -> None:
    app = application([ARGOCD_FINALIZER, "example.com/keep", FINALIZER])
    assert holds_ours(app)
    assert without_ours(app) == ["example.com/keep"]
    assert not holds_ours(application(["example.com/keep"]))
    assert holds_ours(application(["post-delete-finalizer.argoproj.io/cleanup"]))


@pytest.mark.parametrize(
    ("finalizers", "options", "want"),
    [
        ([FINALIZER], [], "Foreground"),
        ([ARGOCD_BACKGROUND_FINALIZER], [], "Background"),
        ([FINALIZER], ["PrunePropagationPolicy=background"], "Background"),
        ([ARGOCD_BACKGROUND_FINALIZER], ["PrunePropagationPolicy=foreground"], "Foreground"),
        ([FINALIZER], ["PrunePropagationPolicy=orphan"], "Orphan"),
    ],
)
def test_propagation(finalizers: list[str], options: list[str], want: str) -> None:
    app = application(finalizers, options=options)
    assert propagation(app, deletion_policy(app)) == want


def test_progress_names_what_it_waits_for_and_why() -> None:
    held = live("v1", "ConfigMap", "held")
    held["metadata"]["finalizers"] = ["example.com/hold", "foregroundDeletion"]
    held["metadata"]["deletionTimestamp"] = "2026-11-27T00:00:00Z"
    t = Target(ResourceKey.of(held), "v1", held)
    msg = Progress(step="wave 0 (ConfigMap)", waiting=[t]).message()
    assert msg == (
        "deleting wave 0 (ConfigMap): waiting for ConfigMap demo/held to go "
        "(it has finalizer(s) example.com/hold)"
    )
    err = Progress(errors=[(t.key, "forbidden (403)")]).message()
    assert err == "could not delete 1 object(s): ConfigMap demo/held: forbidden (403)"


def test_only_a_change_that_bears_on_the_deletion_wakes_the_controller() -> None:
    alive = application([FINALIZER])
    deleted = application([FINALIZER])
    deleted["metadata"]["deletionTimestamp"] = "2026-11-27T00:00:00Z"
    assert not deletion_changed(None, alive)
    assert deletion_changed(alive, deleted) and deletion_changed(None, deleted)
    status_write = {**deleted, "status": {"conditions": [{"type": "Deleting"}]}}
    assert not deletion_changed(deleted, status_write)
    orphaned = application([FINALIZER], {POLICY_ANNOTATION: "orphan"})
    orphaned["metadata"]["deletionTimestamp"] = "2026-11-27T00:00:00Z"
    assert deletion_changed(deleted, orphaned)
