"""What a hook is: every spelling of the annotations, Helm's hooks on install against upgrade,
delete policies, weights, the errors (naming the object, its file and line), how hooks are
marked, and generateName allowed for hooks only."""

from __future__ import annotations

from typing import Any

import pytest

from tether.api.application import APP_LABEL, TRACKING_ANNOTATION, Application, new_application
from tether.errors import InvalidSpec, RenderError
from tether.model import Manifest
from tether.render.helm_output import mark_hook as helm_mark_hook
from tether.render.parse import check_unique, parse_manifests
from tether.sync.hooks import (
    HOOK_ID_LABEL,
    HOOK_OF_ANNOTATION,
    INSTANCE_OF_LABEL,
    DeletePolicy,
    Hook,
    HookPhase,
    hook_of,
    instance_labels,
    instance_selector,
    is_hook,
    mark,
)

pytestmark = pytest.mark.unit

PRE, SYNC, POST = HookPhase.PRE_SYNC, HookPhase.SYNC, HookPhase.POST_SYNC


def job(annotations: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "migrate", **meta}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": {}}


def manifest(annotations: dict[str, str] | None = None, **meta: Any) -> Manifest:
    return Manifest(job(annotations, **meta), "app/migrate.yaml", 7)


def the_hook(annotations: dict[str, str], *, first_install: bool = False, **meta: Any) -> Hook:
    found = hook_of(manifest(annotations, **meta), first_install=first_install)
    assert found is not None
    return found


# ---- which objects are hooks ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "hook"),
    [
        (None, False),
        ({}, False),
        ({"tether.dev/sync-wave": "1"}, False),
        ({"tether.dev/hook": "PreSync"}, True),
        ({"argocd.argoproj.io/hook": "PostSync"}, True),
        ({"helm.sh/hook": "pre-install"}, True),
        ({"tether.dev/hook": ""}, False),
        ({"tether.dev/hook": " , "}, False),
        ({"helm.sh/hook": "crd-install"}, False),  # Helm 2's CRD hook: an ordinary object
    ],
)
def test_is_hook(annotations: dict[str, str] | None, hook: bool) -> None:
    assert is_hook(job(annotations)) is hook
    assert (hook_of(manifest(annotations), first_install=False) is not None) is hook


@pytest.mark.parametrize(
    ("value", "phases"),
    [
        ("PreSync", {PRE}),
        ("Sync", {SYNC}),
        ("PostSync", {POST}),
        ("SyncFail", {HookPhase.SYNC_FAIL}),
        ("PreDelete", {HookPhase.PRE_DELETE}),
        ("PostDelete", {HookPhase.POST_DELETE}),
        ("PreSync, PostSync", {PRE, POST}),
        ("Skip", {HookPhase.SKIP}),
        ("PreSync,Skip", {HookPhase.SKIP}),  # Skip wins: never applied
    ],
)
@pytest.mark.parametrize("prefix", ["tether.dev/", "argocd.argoproj.io/"])
def test_tether_and_argo_cd_phases(prefix: str, value: str, phases: set[HookPhase]) -> None:
    for first_install in (True, False):
        hook = the_hook({prefix + "hook": value}, first_install=first_install)
        assert hook.phases == phases
        assert hook.hook_type == value


def test_tether_spelling_wins_over_argo_cd_which_wins_over_helm() -> None:
    both = {"tether.dev/hook": "PostSync", "argocd.argoproj.io/hook": "PreSync"}
    assert the_hook(both).phases == {POST}
    argo_and_helm = {"argocd.argoproj.io/hook": "Sync", "helm.sh/hook": "pre-install"}
    assert the_hook(argo_and_helm, first_install=True).phases == {SYNC}
    assert the_hook(argo_and_helm, first_install=True).hook_type == "Sync"


# ---- Helm's hooks: install against upgrade ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "on_install", "on_upgrade"),
    [
        ("pre-install", {PRE}, set()),
        ("pre-upgrade", set(), {PRE}),
        ("pre-install,pre-upgrade", {PRE}, {PRE}),
        ("post-install", {POST}, set()),
        ("post-upgrade", set(), {POST}),
        ("post-install, post-upgrade", {POST}, {POST}),
        ("pre-install,post-upgrade", {PRE}, {POST}),
        ("pre-delete", {HookPhase.PRE_DELETE}, {HookPhase.PRE_DELETE}),
        ("post-delete", {HookPhase.POST_DELETE}, {HookPhase.POST_DELETE}),
        ("pre-rollback", set(), set()),
        ("post-rollback", set(), set()),
        ("Pre-Install", {PRE}, set()),  # Helm reads its names in any case
    ],
)
def test_helm_hooks_on_install_and_on_upgrade(
    value: str, on_install: set[HookPhase], on_upgrade: set[HookPhase]
) -> None:
    for given in ({"helm.sh/hook": value}, {"tether.dev/hook": value}):
        assert the_hook(given, first_install=True).phases == on_install
        assert the_hook(given, first_install=False).phases == on_upgrade
        assert the_hook(given, first_install=True).hook_type == value


def test_the_helm_renderer_marking_reads_the_same_as_helms_annotation() -> None:
    obj = job({"helm.sh/hook": "pre-install, pre-upgrade", "helm.sh/hook-weight": "-5"})
    helm_mark_hook(obj, "chart/templates/job.yaml")
    hook = hook_of(Manifest(obj, "chart/templates/job.yaml"), first_install=False)
    assert hook is not None
    assert (hook.phases, hook.weight, hook.hook_type) == ({PRE}, -5, "pre-install,pre-upgrade")


def test_the_helm_renderer_leaves_an_argo_cd_hook_as_it_is() -> None:
    obj = job({"helm.sh/hook": "post-install", "argocd.argoproj.io/hook": "PreSync"})
    helm_mark_hook(obj, "chart/templates/job.yaml")
    assert "tether.dev/hook" not in obj["metadata"]["annotations"]
    assert the_hook(obj["metadata"]["annotations"], first_install=True).phases == {PRE}


# ---- delete policies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "policies"),
    [
        ({}, {DeletePolicy.BEFORE_HOOK_CREATION}),
        ({"tether.dev/hook-delete-policy": ""}, {DeletePolicy.BEFORE_HOOK_CREATION}),
        ({"tether.dev/hook-delete-policy": "HookSucceeded"}, {DeletePolicy.HOOK_SUCCEEDED}),
        (
            {"argocd.argoproj.io/hook-delete-policy": "HookFailed,BeforeHookCreation"},
            {DeletePolicy.HOOK_FAILED, DeletePolicy.BEFORE_HOOK_CREATION},
        ),
        (
            {"helm.sh/hook-delete-policy": "hook-succeeded, hook-failed"},
            {DeletePolicy.HOOK_SUCCEEDED, DeletePolicy.HOOK_FAILED},
        ),
        (
            {"helm.sh/hook-delete-policy": "before-hook-creation"},
            {DeletePolicy.BEFORE_HOOK_CREATION},
        ),
        (
            {
                "tether.dev/hook-delete-policy": "HookSucceeded",
                "argocd.argoproj.io/hook-delete-policy": "HookFailed",
                "helm.sh/hook-delete-policy": "before-hook-creation",
            },
            {DeletePolicy.HOOK_SUCCEEDED},
        ),
        (
            {
                "argocd.argoproj.io/hook-delete-policy": "HookFailed",
                "helm.sh/hook-delete-policy": "hook-succeeded",
            },
            {DeletePolicy.HOOK_FAILED},
        ),
    ],
)
def test_delete_policies(annotations: dict[str, str], policies: set[DeletePolicy]) -> None:
    assert the_hook({"tether.dev/hook": "PreSync", **annotations}).delete_policies == policies


# ---- weights --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "weight"),
    [
        ({}, 0),
        ({"tether.dev/sync-wave": "-2"}, -2),
        ({"argocd.argoproj.io/sync-wave": "3"}, 3),
        ({"tether.dev/sync-wave": "1", "argocd.argoproj.io/sync-wave": "9"}, 1),
        ({"tether.dev/hook-weight": "-5"}, -5),
        ({"helm.sh/hook-weight": " +4 "}, 4),
        ({"tether.dev/sync-wave": "2", "tether.dev/hook-weight": "-5"}, 2),
    ],
)
def test_weights(annotations: dict[str, str], weight: int) -> None:
    assert the_hook({"tether.dev/hook": "Sync", **annotations}).weight == weight


# ---- errors ---------------------------------------------------------------------------------


def test_an_unknown_phase_names_the_object_file_line_and_the_valid_phases() -> None:
    with pytest.raises(InvalidSpec) as e:
        hook_of(
            manifest({"tether.dev/hook": "PreSync,BeforeSync"}, namespace="shop"),
            first_install=False,
        )
    assert e.value.message == (
        "app/migrate.yaml:7: Job shop/migrate: annotation tether.dev/hook names an unknown "
        "hook phase 'BeforeSync'"
    )
    for phase in ("PreSync", "Sync", "PostSync", "SyncFail", "PreDelete", "PostDelete", "Skip"):
        assert phase in e.value.hint
    for helm in ("pre-install", "pre-upgrade", "post-install", "post-upgrade", "pre-delete"):
        assert helm in e.value.hint


def test_an_unknown_helm_phase_names_helms_annotation() -> None:
    with pytest.raises(InvalidSpec) as e:
        hook_of(manifest({"helm.sh/hook": "pre-instal"}), first_install=True)
    assert "annotation helm.sh/hook names an unknown hook phase 'pre-instal'" in e.value.message
    assert e.value.message.startswith("app/migrate.yaml:7: Job migrate:")


def test_an_unknown_delete_policy_lists_the_valid_ones() -> None:
    annotations = {"tether.dev/hook": "PreSync", "argocd.argoproj.io/hook-delete-policy": "Always"}
    with pytest.raises(InvalidSpec) as e:
        hook_of(manifest(annotations), first_install=False)
    assert e.value.message == (
        "app/migrate.yaml:7: Job migrate: annotation argocd.argoproj.io/hook-delete-policy "
        "names an unknown delete policy 'Always'"
    )
    assert "HookSucceeded, HookFailed or BeforeHookCreation" in e.value.hint


def test_a_weight_that_is_not_a_number_names_its_annotation() -> None:
    annotations = {"helm.sh/hook": "post-install", "helm.sh/hook-weight": "last"}
    m = Manifest(job(annotations, name=None, generateName="notify-"), "chart/t/n.yaml", 3)
    with pytest.raises(InvalidSpec) as e:
        hook_of(m, first_install=True)
    assert e.value.message == (
        "chart/t/n.yaml:3: Job notify-*: annotation helm.sh/hook-weight is 'last', not a "
        "whole number"
    )


# ---- marking and instances -----------------------------------------------------------------


def app() -> Application:
    return Application.from_obj(new_application("shop", "apps", repo_url="file:///r", path="."))


def test_a_hook_is_marked_as_the_apps_hook_never_with_its_tracking_id() -> None:
    original = job({"tether.dev/hook": "PreSync"}, namespace="shop", labels={"team": "a"})
    marked = mark(app(), original)
    meta = marked["metadata"]
    assert TRACKING_ANNOTATION not in meta["annotations"]
    assert meta["annotations"][HOOK_OF_ANNOTATION] == "apps/shop"
    assert meta["labels"]["team"] == "a"
    assert meta["labels"][APP_LABEL] == app().label_value
    assert meta["labels"][INSTANCE_OF_LABEL] == app().label_value
    assert "labels" not in original["metadata"] or APP_LABEL not in original["metadata"]["labels"]
    hook = hook_of(Manifest(marked), first_install=False)
    assert hook is not None
    assert instance_labels(app(), hook) == {
        INSTANCE_OF_LABEL: app().label_value,
        HOOK_ID_LABEL: meta["labels"][HOOK_ID_LABEL],
    }
    assert instance_selector(app(), hook) == (
        f"{HOOK_ID_LABEL}={meta['labels'][HOOK_ID_LABEL]},{INSTANCE_OF_LABEL}={app().label_value}"
    )


def test_each_hook_has_its_own_id_and_every_instance_of_one_hook_the_same() -> None:
    def hook_id(**meta: Any) -> str:
        return str(
            mark(app(), job({"tether.dev/hook": "Sync"}, **meta))["metadata"]["labels"][
                HOOK_ID_LABEL
            ]
        )

    fixed = hook_id(namespace="shop")
    generated = hook_id(name=None, generateName="migrate", namespace="shop")
    assert len({fixed, generated, hook_id(namespace="other"), hook_id(name="seed")}) == 4
    assert hook_id(namespace="shop", labels={"run": "2"}) == fixed  # content does not count


# ---- generateName: hooks only --------------------------------------------------------------


GENERATED = b"""\
apiVersion: batch/v1
kind: Job
metadata:
  generateName: before-
  annotations: {argocd.argoproj.io/hook: PreSync}
---
apiVersion: batch/v1
kind: Job
metadata:
  generateName: before-
  annotations: {helm.sh/hook: pre-install}
---
apiVersion: batch/v1
kind: Job
metadata:
  generateName: after-
  annotations: {tether.dev/hook: PostSync}
"""


def test_hooks_may_use_generate_name_and_never_collide() -> None:
    manifests = parse_manifests(GENERATED, "app/jobs.yaml")
    assert [(m.obj["metadata"]["generateName"], m.line) for m in manifests] == [
        ("before-", 1),
        ("before-", 7),
        ("after-", 13),
    ]
    check_unique(manifests + manifests)


def test_a_plain_object_with_generate_name_is_refused() -> None:
    text = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: cfg-\n"
    with pytest.raises(RenderError) as e:
        parse_manifests(text, "app/cm.yaml")
    assert e.value.message == "app/cm.yaml:1: ConfigMap object has no metadata.name"
    assert "generateName is allowed only for hooks" in e.value.hint


def test_a_hook_with_neither_name_nor_generate_name_is_refused() -> None:
    text = b"apiVersion: v1\nkind: Pod\nmetadata:\n  annotations: {tether.dev/hook: Sync}\n"
    with pytest.raises(RenderError) as e:
        parse_manifests(text, "app/pod.yaml")
    assert e.value.message == "app/pod.yaml:1: Pod object has no metadata.name"


def test_named_hooks_defined_twice_are_still_refused() -> None:
    text = b"""\
apiVersion: batch/v1
kind: Job
metadata: {name: once, annotations: {tether.dev/hook: PreSync}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once, annotations: {tether.dev/hook: PostSync}}
"""
    with pytest.raises(RenderError) as e:
        parse_manifests(text, "app/jobs.yaml")
    assert e.value.message == (
        "app/jobs.yaml:5: Job.batch once is defined twice: here and at app/jobs.yaml:1"
    )


def test_a_blank_annotation_gives_way_to_the_next_spelling() -> None:
    hook = the_hook(
        {
            "tether.dev/hook": " ",
            "argocd.argoproj.io/hook": "PostSync",
            "tether.dev/hook-delete-policy": "",
            "helm.sh/hook-delete-policy": "hook-failed",
            "tether.dev/sync-wave": "",
            "helm.sh/hook-weight": "7",
        }
    )
    assert (hook.phases, hook.delete_policies, hook.weight) == (
        {POST},
        {DeletePolicy.HOOK_FAILED},
        7,
    )
