"""Pure rules of a sync: ordering, prune selection and safety, tracking, the Application spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.api.application import Application, new_application, parse_duration
from tether.errors import InvalidSpec, PruneBlocked
from tether.model import Manifest, ResourceKey
from tether.sync.defaults import set_native_defaults
from tether.sync.plan import plan_steps
from tether.sync.prune import check_prune_safety, plan_prune
from tether.sync.tracking import manifest_hash, mark, object_sync_options, owned_by, owner_of

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def app(name: str = "web") -> Application:
    return Application.from_obj(
        new_application(
            name, "tether-system", repo_url="https://g/x", path="p", dest_namespace="prod"
        )
    )


def obj(
    kind: str, name: str, api_version: str = "v1", ns: str = "prod", **meta: object
) -> dict[str, object]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, **({"namespace": ns} if ns else {}), **meta},
    }


def test_steps_put_namespaces_and_crds_first_then_config_then_workloads() -> None:
    ms = [
        Manifest(obj("Deployment", "d", "apps/v1")),
        Manifest(obj("ConfigMap", "c")),
        Manifest(obj("Namespace", "prod", ns="")),
        Manifest(obj("CustomResourceDefinition", "x.y", "apiextensions.k8s.io/v1", ns="")),
        Manifest(obj("Service", "s")),
        Manifest(obj("RoleBinding", "rb", "rbac.authorization.k8s.io/v1")),
        Manifest(obj("Role", "r", "rbac.authorization.k8s.io/v1")),
    ]
    steps = [[m.key.kind for m in s.manifests] for s in plan_steps(ms)]
    assert steps == [
        ["Namespace"],
        ["CustomResourceDefinition"],
        ["ConfigMap", "Role"],
        ["RoleBinding"],
        ["Service", "Deployment"],
    ]


def test_sync_waves_order_before_kinds() -> None:
    early = obj("Deployment", "early", "apps/v1", annotations={"tether.dev/sync-wave": "-1"})
    ms = [Manifest(obj("ConfigMap", "c")), Manifest(early)]
    steps = plan_steps(ms)
    assert [(s.wave, [m.key.name for m in s.manifests]) for s in steps] == [
        (-1, ["early"]),
        (0, ["c"]),
    ]


def test_mark_sets_tracking_label_and_hash_without_touching_input() -> None:
    a = app()
    o = obj("ConfigMap", "c")
    marked = mark(a, o)
    assert "annotations" not in o["metadata"]  # type: ignore[operator]
    ann = marked["metadata"]["annotations"]
    assert ann["tether.dev/tracking-id"] == "tether-system_web:/ConfigMap:prod/c"
    assert ann["tether.dev/manifest-hash"] == manifest_hash(o)
    assert marked["metadata"]["labels"] == {"tether.dev/app": "tether-system_web"}
    assert owned_by(a, marked) and not owned_by(app("other"), marked)
    assert owner_of(marked) == "tether-system_web"


def test_object_sync_options_parse_the_annotation() -> None:
    o = obj("ConfigMap", "c", annotations={"tether.dev/sync-options": "Prune=false, Delete=false"})
    assert object_sync_options(o) == {"Prune": "false", "Delete": "false"}


def keyed(
    a: Application, *names: str, owner: Application | None = None, **extra_ann: str
) -> dict[ResourceKey, dict[str, object]]:
    out = {}
    for n in names:
        o = mark(owner or a, obj("ConfigMap", n, annotations=dict(extra_ann)))
        out[ResourceKey.of(o)] = o
    return out


def test_prune_plan_skips_foreign_and_protected_objects() -> None:
    a = app()
    live = keyed(a, "gone", "kept")
    live.update(keyed(a, "protected", **{"tether.dev/sync-options": "Prune=false"}))
    live.update(keyed(a, "stolen", owner=app("other")))
    inventory = set(live) | {ResourceKey("", "ConfigMap", "prod", "stay")}
    desired = {
        ResourceKey("", "ConfigMap", "prod", "kept"),
        ResourceKey("", "ConfigMap", "prod", "stay"),
    }
    plan = plan_prune(a, inventory, desired, live)
    assert [k.name for k, _ in plan.delete] == ["gone"]
    reasons = {k.name: why for k, why in plan.keep}
    assert "Prune=false" in reasons["protected"]
    assert "tether-system_other" in reasons["stolen"]


def test_prune_safety_blocks_mass_prune_and_guarded_kinds() -> None:
    a = app()
    live = keyed(a, "a", "b", "c", "d")
    inventory = set(live)
    plan = plan_prune(a, inventory, {ResourceKey("", "ConfigMap", "prod", "a")}, live)
    with pytest.raises(PruneBlocked, match="3 of the 4"):
        check_prune_safety(plan, inventory, allow_mass_prune=False)
    check_prune_safety(plan, inventory, allow_mass_prune=True)
    half = plan_prune(a, inventory, {ResourceKey("", "ConfigMap", "prod", n) for n in "ab"}, live)
    check_prune_safety(half, inventory, allow_mass_prune=False)  # exactly half is allowed
    ns = mark(a, obj("Namespace", "team", ns=""))
    live_ns = {**live, ResourceKey.of(ns): ns}
    plan = plan_prune(a, set(live_ns), set(live), live_ns)
    with pytest.raises(PruneBlocked, match="Namespace"):
        check_prune_safety(plan, set(live_ns), allow_mass_prune=False)


def test_native_defaults_fill_protocol_for_server_side_apply() -> None:
    svc = {"kind": "Service", "spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}}
    set_native_defaults(svc)
    assert [p["protocol"] for p in svc["spec"]["ports"]] == ["TCP", "UDP"]
    dep = {
        "kind": "Deployment",
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]}
            }
        },
    }
    set_native_defaults(dep)
    assert dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] == "TCP"


def test_application_spec_parses_argo_shape() -> None:
    a = Application.from_obj(
        {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "x", "namespace": "tether-system"},
            "spec": {
                "source": {
                    "repoURL": "https://g/r.git",
                    "path": "k8s",
                    "directory": {"recurse": True, "include": "*.yaml"},
                },
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "prod"},
                "syncPolicy": {
                    "automated": {"prune": True, "selfHeal": True},
                    "syncOptions": ["CreateNamespace=true"],
                    "retry": {
                        "limit": 3,
                        "backoff": {"duration": "10s", "factor": 3, "maxDuration": "1m"},
                    },
                },
                "ignoreDifferences": [
                    {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}
                ],
            },
        }
    )
    assert a.source.target_revision == "HEAD" and a.source.directory.recurse
    assert a.sync_policy.automated and a.sync_policy.prune and a.sync_policy.self_heal
    assert a.sync_policy.option("CreateNamespace") == "true"
    assert [a.sync_policy.retry.delay(n) for n in (1, 2, 3)] == [10.0, 30.0, 60.0]


def test_application_rejects_other_clusters_and_bad_values() -> None:
    base = new_application("x", "ns", repo_url="https://g/r", path=".")
    base["spec"]["destination"] = {"server": "https://elsewhere:6443"}
    with pytest.raises(InvalidSpec, match="not supported"):
        Application.from_obj(base)
    with pytest.raises(InvalidSpec, match="duration"):
        parse_duration("5 minutes")
    assert parse_duration("250ms") == 0.25


def test_deploy_crd_is_the_packaged_crd() -> None:
    packaged = REPO / "src" / "tether" / "manifests" / "crd-application.yaml"
    assert (REPO / "deploy" / "crds" / "application.yaml").read_text() == packaged.read_text()
