"""The one parser of sync and compare options: app-wide entries, per-object annotations with
Argo CD's spelling as an alias, the object's own option winning, and every refusal naming
what to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.api.application import Application, new_application
from tether.errors import InvalidSpec
from tether.model import Manifest, ResourceKey
from tether.sync.annotations import annotation, annotation_with_key
from tether.sync.namespace_metadata import NamespaceMetadata, parse_namespace_metadata
from tether.sync.options import (
    PRUNE,
    SyncOptions,
    check_object_options,
    compare_options,
    object_options,
    parse_app_options,
)
from tether.sync.plan import wave_of
from tether.sync.prune import plan_prune
from tether.sync.tracking import mark

pytestmark = pytest.mark.unit
CASES = yaml.safe_load(
    (Path(__file__).parents[1] / "fixtures" / "sync_options" / "app_options.yaml").read_text()
)


def obj(name: str = "c", **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "prod"}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def app_with(options: list[str], **policy: Any) -> Application:
    o = new_application("web", "tether-system", repo_url="https://g/x", path="p")
    o["spec"]["syncPolicy"] = {"syncOptions": options, **policy}
    return Application.from_obj(o)


@pytest.mark.parametrize("case", CASES["accepted"], ids=lambda c: ",".join(c["entries"]))
def test_app_options_accepted(case: dict[str, Any]) -> None:
    assert parse_app_options(case["entries"], "Application a/b") == case["parsed"]
    assert app_with(case["entries"]).sync_policy.sync_options == case["parsed"]


@pytest.mark.parametrize("case", CASES["refused"], ids=lambda c: ",".join(c["entries"]))
def test_app_options_refused_naming_the_option(case: dict[str, Any]) -> None:
    with pytest.raises(InvalidSpec) as e:
        app_with(case["entries"])
    assert e.value.message.startswith("Application tether-system/web: spec.syncPolicy")
    assert case["message"] in e.value.message
    assert case["hint"] in e.value.hint


def test_an_app_option_only_objects_take_is_refused_the_other_way_round() -> None:
    with pytest.raises(InvalidSpec) as e:
        object_options(obj(**{"tether.dev/sync-options": "CreateNamespace=true"}), strict=True)
    assert "ConfigMap prod/c: annotation tether.dev/sync-options" in e.value.message
    assert "applies to the whole app" in e.value.message
    assert "spec.syncPolicy.syncOptions" in e.value.hint


def test_argocd_annotations_are_aliases_and_tethers_own_wins() -> None:
    argo = obj(
        **{"argocd.argoproj.io/sync-options": "Prune=false", "argocd.argoproj.io/sync-wave": "3"}
    )
    assert object_options(argo) == {"Prune": "false"}
    assert wave_of(Manifest(argo)) == 3
    both = obj(
        **{
            "argocd.argoproj.io/sync-options": "Prune=false",
            "tether.dev/sync-options": "Prune=true",
            "argocd.argoproj.io/hook": "PreSync",
            "tether.dev/hook": "PostSync",
            "argocd.argoproj.io/hook-delete-policy": "HookSucceeded",
        }
    )
    assert object_options(both) == {"Prune": "true"}
    assert annotation(both, "hook") == "PostSync"
    assert annotation_with_key(both, "hook-delete-policy") == (
        "argocd.argoproj.io/hook-delete-policy",
        "HookSucceeded",
    )
    assert annotation(obj(), "sync-wave") is None
    with pytest.raises(ValueError):
        annotation(both, "tracking-id")


def test_the_objects_option_wins_over_the_apps_in_either_direction() -> None:
    opts = SyncOptions({"Prune": "false", "Replace": "true"})
    assert opts.disabled(PRUNE)
    assert opts.enabled(PRUNE, obj(**{"tether.dev/sync-options": "Prune=true"}))
    assert opts.disabled("Replace", obj(**{"argocd.argoproj.io/sync-options": "Replace=false"}))
    assert opts.enabled("Replace", obj())
    assert SyncOptions({}).propagation == "Foreground"
    assert SyncOptions({"PrunePropagationPolicy": "orphan"}).propagation == "Orphan"


def test_live_objects_are_read_leniently_and_manifests_strictly() -> None:
    o = obj(**{"tether.dev/sync-options": "Prune=false, Bogus=1,Delete=false"})
    assert object_options(o) == {"Prune": "false", "Delete": "false"}
    m = Manifest(o, "app/cm.yaml", 4)
    with pytest.raises(InvalidSpec) as e:
        check_object_options([m], {m.key: m})
    assert e.value.message.startswith("app/cm.yaml:4: ConfigMap prod/c: annotation ")
    assert "unknown option 'Bogus'" in e.value.message


def test_compare_options_take_a_bare_ignore_extraneous() -> None:
    o = obj(**{"argocd.argoproj.io/compare-options": "IgnoreExtraneous, ServerSideDiff=true"})
    assert compare_options(o, strict=True) == {"IgnoreExtraneous": "true", "ServerSideDiff": "true"}
    with pytest.raises(InvalidSpec) as e:
        compare_options(obj(**{"tether.dev/compare-options": "IgnoreEverything"}), strict=True)
    assert "unknown option 'IgnoreEverything'" in e.value.message


def test_app_wide_prune_false_keeps_objects_and_says_where_it_came_from() -> None:
    a = app_with(["Prune=false"])
    gone = mark(a, obj("gone"))
    forced = mark(a, obj("forced", **{"argocd.argoproj.io/sync-options": "Prune=true"}))
    live = {ResourceKey.of(gone): gone, ResourceKey.of(forced): forced}
    plan = plan_prune(a, set(live), set(), live)
    assert [k.name for k, _ in plan.delete] == ["forced"]
    assert plan.keep == [
        (ResourceKey.of(gone), "not pruned: spec.syncPolicy.syncOptions: Prune=false")
    ]


def test_prune_order_puts_prune_last_after_the_rest_in_reverse_waves() -> None:
    a = app_with([])
    objs = [
        mark(a, obj("last", **{"tether.dev/sync-options": "PruneLast=true"})),
        mark(a, obj("w1", **{"tether.dev/sync-wave": "1"})),
        mark(a, obj("w5", **{"argocd.argoproj.io/sync-wave": "5"})),
        mark(a, obj("w0")),
    ]
    live = {ResourceKey.of(o): o for o in objs}
    plan = plan_prune(a, set(live), set(), live)
    assert [k.name for k, _ in plan.delete] == ["w5", "w1", "w0", "last"]


def test_managed_namespace_metadata_is_parsed_and_checked() -> None:
    a = app_with(
        ["CreateNamespace=true"],
        managedNamespaceMetadata={"labels": {"team": "a"}, "annotations": {"owner": "x"}},
    )
    md = a.sync_policy.managed_namespace_metadata
    assert md == NamespaceMetadata(labels={"team": "a"}, annotations={"owner": "x"})
    assert md.object("demo")["metadata"] == {
        "name": "demo",
        "labels": {"team": "a"},
        "annotations": {"owner": "x"},
    }
    assert md.held_by(
        {"metadata": {"labels": {"team": "a", "x": "y"}, "annotations": {"owner": "x"}}}
    )
    assert not md.held_by({"metadata": {"labels": {"team": "b"}}})
    assert parse_namespace_metadata(None, "A") is None
    with pytest.raises(InvalidSpec) as e:
        parse_namespace_metadata({"labels": {"n": 1}}, "Application a/b")
    assert "managedNamespaceMetadata.labels.n must be a string" in e.value.message
    with pytest.raises(InvalidSpec) as e:
        parse_namespace_metadata({"label": {}}, "Application a/b")
    assert "unknown key(s) label" in e.value.message
