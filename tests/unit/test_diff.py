"""Drift detection: normalizing, restricting to Git's fields, ignore rules, redaction, rendering."""

from __future__ import annotations

import base64
import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.diff import (
    IgnoreRule,
    apply_ignores,
    diff_object,
    fields_of,
    normalize,
    redact,
    redact_pair,
    render_diffs,
    restrict_to,
)
from tether.diff.jq_paths import JqRunner
from tether.diff.merge_keys import shape_of
from tether.errors import InvalidSpec
from tether.model import Obj, ResourceDiff, ResourceDiffStatus, ResourceKey

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diff"
DEPLOYMENT = ResourceKey("apps", "Deployment", "shop", "web")
SECRET = ResourceKey("", "Secret", "shop", "db-credentials")
OLD_PASSWORD = "hunter2-old-value"
NEW_PASSWORD = "correct-horse-battery"


def load(name: str) -> Obj:
    obj: Obj = yaml.safe_load((FIXTURES / name).read_text())
    return obj


def deployment() -> tuple[Obj, Obj, Obj]:
    """(desired, predicted, live). A dry-run of a manifest the cluster already matches returns
    the live object, so predicted starts as a copy of it."""
    live = load("deployment-live.yaml")
    return load("deployment-desired.yaml"), copy.deepcopy(live), live


def container(obj: Obj, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == name
    )
    return found


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- Deployments -----------------------------------------------------------------------------


def test_server_defaulted_deployment_matches_its_manifest() -> None:
    desired, predicted, live = deployment()

    result = diff_object(DEPLOYMENT, desired, predicted, live, [])

    assert result.status is ResourceDiffStatus.SYNCED
    assert result.changed_paths == []
    assert result.diff_text == ""


def test_without_a_dry_run_the_manifest_stands_in() -> None:
    desired, _, live = deployment()

    assert diff_object(DEPLOYMENT, desired, None, live).status is ResourceDiffStatus.SYNCED


def test_changed_image_is_the_only_changed_path() -> None:
    desired, predicted, live = deployment()
    container(desired, "web")["image"] = "registry.example.com/shop/web:1.5.0"
    container(predicted, "web")["image"] = "registry.example.com/shop/web:1.5.0"
    predicted["metadata"]["generation"] = 4

    result = diff_object(DEPLOYMENT, desired, predicted, live)

    assert result.status is ResourceDiffStatus.OUT_OF_SYNC
    assert result.changed_paths == ["spec.template.spec.containers[name=web].image"]
    lines = result.diff_text.splitlines()
    assert lines[:2] == ["--- live/Deployment/shop/web", "+++ desired/Deployment/shop/web"]
    removed = [line for line in lines[2:] if line.startswith("-")]
    added = [line for line in lines[2:] if line.startswith("+")]
    assert removed == ["-        image: registry.example.com/shop/web:1.4.2"]
    assert added == ["+        image: registry.example.com/shop/web:1.5.0"]


def test_changes_by_hand_to_fields_git_sets_are_drift() -> None:
    desired, predicted, live = deployment()
    container(live, "web")["args"].append("--debug")
    container(live, "log-shipper")["volumeMounts"][0]["readOnly"] = False

    result = diff_object(DEPLOYMENT, desired, predicted, live)

    assert result.status is ResourceDiffStatus.OUT_OF_SYNC
    assert result.changed_paths == [
        "spec.template.spec.containers[name=web].args",
        "spec.template.spec.containers[name=log-shipper].volumeMounts[mountPath=/var/log/web]"
        ".readOnly",
    ]


def test_list_items_are_matched_by_name_when_the_server_reorders_and_adds() -> None:
    desired, predicted, live = deployment()
    pod = live["spec"]["template"]["spec"]
    pod["containers"].reverse()
    pod["containers"].append({"name": "istio-proxy", "image": "istio/proxyv2:1.24.2"})
    pod["volumes"].insert(0, {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}})
    container(live, "web")["env"].reverse()

    result = diff_object(DEPLOYMENT, desired, predicted, live)

    assert result.status is ResourceDiffStatus.SYNCED


def test_a_list_item_git_has_and_live_lacks_is_drift() -> None:
    desired, predicted, live = deployment()
    live["spec"]["template"]["spec"]["containers"] = [container(live, "web")]

    result = diff_object(DEPLOYMENT, desired, predicted, live)

    assert result.status is ResourceDiffStatus.OUT_OF_SYNC
    assert result.changed_paths == ["spec.template.spec.containers[name=log-shipper]"]
    assert "+      - image: registry.example.com/tools/log-shipper:2.0.1" in result.diff_text


def another_manager(obj: Obj, manager: str, fields: Obj) -> None:
    """Records in ``obj``'s field sets that ``manager`` owns ``fields``."""
    obj["metadata"]["managedFields"].append(
        {"manager": manager, "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": fields}
    )


def test_volume_mounts_are_matched_by_mount_path_as_the_server_merges_them() -> None:
    # Another manager mounts the same volume a second time, ahead of Git's mount. Matched by
    # name, Git's mount would be compared with the other one and reported as drift that no sync
    # could remove; the server merges volumeMounts by mountPath and so does the diff.
    desired, predicted, live = deployment()
    extra = {"name": "logs", "mountPath": "/debug", "readOnly": False}
    for obj in (predicted, live):
        container(obj, "log-shipper")["volumeMounts"].insert(0, dict(extra))
    mount = {'k:{"mountPath":"/debug"}': {".": {}, "f:mountPath": {}, "f:name": {}}}
    another_manager(
        live,
        "debugger",
        {
            "f:spec": {
                "f:template": {
                    "f:spec": {
                        "f:containers": {'k:{"name":"log-shipper"}': {"f:volumeMounts": mount}}
                    }
                }
            }
        },
    )

    assert diff_object(DEPLOYMENT, desired, predicted, live).status is ResourceDiffStatus.SYNCED

    container(live, "log-shipper")["volumeMounts"][1]["readOnly"] = False
    result = diff_object(DEPLOYMENT, desired, predicted, live)
    assert result.changed_paths == [
        "spec.template.spec.containers[name=log-shipper].volumeMounts[mountPath=/var/log/web]"
        ".readOnly"
    ]


def test_a_renamed_port_is_reported_on_the_port_the_server_keys_it_by() -> None:
    desired, predicted, live = deployment()
    container(live, "web")["ports"][1]["name"] = "prom"

    result = diff_object(DEPLOYMENT, desired, predicted, live)

    assert result.changed_paths == [
        "spec.template.spec.containers[name=web].ports[containerPort=9090].name"
    ]


def test_an_item_added_to_an_atomic_list_is_drift_even_with_a_name() -> None:
    # RoleBinding subjects carry names, but the server keeps the list whole (atomic): a subject
    # added by hand is removed by the next sync, so it is drift, not someone else's item.
    desired = load("rolebinding-desired.yaml")
    live = load("rolebinding-live.yaml")
    predicted = copy.deepcopy(live)
    key = ResourceKey("rbac.authorization.k8s.io", "RoleBinding", "shop", "web-view")
    assert diff_object(key, desired, predicted, live).status is ResourceDiffStatus.SYNCED

    live["subjects"].append(
        {"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}
    )
    result = diff_object(key, desired, predicted, live)

    assert result.status is ResourceDiffStatus.OUT_OF_SYNC
    assert result.changed_paths == ["subjects[1]"]
    assert "mallory" in result.diff_text


def test_a_set_keeps_only_the_members_git_lists() -> None:
    template: Obj = {"metadata": {"finalizers": ["example.com/cleanup"]}}
    live: Obj = {
        "metadata": {
            "finalizers": ["kubernetes.io/pvc-protection", "example.com/cleanup"],
            "managedFields": [
                {
                    "manager": "tether",
                    "fieldsV1": {"f:metadata": {"f:finalizers": {'v:"example.com/cleanup"': {}}}},
                }
            ],
        }
    }

    assert restrict_to(live, template) == template
    live["metadata"]["finalizers"] = ["kubernetes.io/pvc-protection"]
    assert restrict_to(live, template) == {}


def test_a_custom_resources_lists_follow_the_keys_its_schema_declares() -> None:
    key = ResourceKey("example.com", "Gateway", "shop", "edge")
    desired: Obj = {
        "apiVersion": "example.com/v1",
        "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": "shop"},
        "spec": {"listeners": [{"port": 443, "hostname": "a.example.com", "tls": "strict"}]},
    }
    live = copy.deepcopy(desired)
    live["spec"]["listeners"].insert(0, {"port": 80, "hostname": "a.example.com"})
    listener = {'k:{"hostname":"a.example.com","port":443}': {".": {}, "f:tls": {}}}
    live["metadata"]["managedFields"] = [
        {"manager": "tether", "fieldsV1": {"f:spec": {"f:listeners": listener}}}
    ]
    predicted = copy.deepcopy(live)

    assert diff_object(key, desired, predicted, live).status is ResourceDiffStatus.SYNCED
    live["spec"]["listeners"][1]["tls"] = "off"
    assert diff_object(key, desired, predicted, live).changed_paths == [
        "spec.listeners[hostname=a.example.com,port=443].tls"
    ]


def test_an_annotation_added_live_that_git_does_not_set_is_not_drift() -> None:
    desired, predicted, live = deployment()
    live["metadata"]["annotations"]["example.com/restarted-by"] = "on-call"
    live["metadata"]["labels"]["team"] = "storefront"

    assert diff_object(DEPLOYMENT, desired, predicted, live).status is ResourceDiffStatus.SYNCED


def test_a_label_git_sets_changed_live_is_drift() -> None:
    desired, predicted, live = deployment()
    live["metadata"]["labels"]["app.kubernetes.io/version"] = "1.4.2-hotfix"

    result = diff_object(DEPLOYMENT, desired, predicted, live)

    assert result.status is ResourceDiffStatus.OUT_OF_SYNC
    assert result.changed_paths == ['metadata.labels["app.kubernetes.io/version"]']
    assert "-    app.kubernetes.io/version: 1.4.2-hotfix" in result.diff_text
    assert "+    app.kubernetes.io/version: 1.4.2" in result.diff_text


# -- Ignore rules ----------------------------------------------------------------------------

HPA_RULE = {
    "group": "apps",
    "kind": "Deployment",
    "managedFieldsManagers": ["kube-controller-manager"],
}


def test_replicas_scaled_by_an_hpa_are_ignored_by_manager() -> None:
    desired, predicted, live = deployment()
    live["spec"]["replicas"] = 5

    plain = diff_object(DEPLOYMENT, desired, predicted, live)
    ignored = diff_object(DEPLOYMENT, desired, predicted, live, [IgnoreRule.from_spec(HPA_RULE)])

    assert plain.status is ResourceDiffStatus.OUT_OF_SYNC
    assert plain.changed_paths == ["spec.replicas"]
    assert ignored.status is ResourceDiffStatus.SYNCED


def test_a_manager_rule_leaves_fields_other_managers_own() -> None:
    desired, predicted, live = deployment()
    live["spec"]["replicas"] = 5
    container(live, "web")["image"] = "registry.example.com/shop/web:debug"

    result = diff_object(DEPLOYMENT, desired, predicted, live, [IgnoreRule.from_spec(HPA_RULE)])

    assert result.status is ResourceDiffStatus.OUT_OF_SYNC
    assert result.changed_paths == ["spec.template.spec.containers[name=web].image"]


def test_a_manager_rule_finds_fields_inside_keyed_list_items() -> None:
    desired, predicted, live = deployment()
    container(live, "web")["image"] = "registry.example.com/shop/web:1.4.3"
    live["metadata"]["managedFields"].append(
        {
            "manager": "image-updater",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:spec": {
                    "f:template": {
                        "f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}
                    }
                }
            },
        }
    )
    rule = IgnoreRule("apps", "Deployment", managed_fields_managers=["image-updater"])

    p, lv = apply_ignores(DEPLOYMENT, predicted, live, [rule])

    assert "image" not in container(p, "web")
    assert "image" not in container(lv, "web")
    assert container(p, "log-shipper")["image"] == container(predicted, "log-shipper")["image"]
    assert container(live, "web")["image"].endswith(":1.4.3"), "inputs are left alone"
    assert diff_object(DEPLOYMENT, desired, predicted, live, [rule]).status is (
        ResourceDiffStatus.SYNCED
    )


def test_json_pointers_ignore_fields_for_matching_objects_only() -> None:
    desired, predicted, live = deployment()
    live["spec"]["replicas"] = 3
    live["metadata"]["labels"]["app.kubernetes.io/version"] = "1.4.2-hotfix"
    spec = {
        "group": "apps",
        "kind": "Deployment",
        "name": "web",
        "jsonPointers": ["/spec/replicas", "/metadata/labels/app.kubernetes.io~1version"],
    }
    other = IgnoreRule.from_spec({**spec, "name": "api"})

    assert diff_object(DEPLOYMENT, desired, predicted, live, [other]).changed_paths == [
        'metadata.labels["app.kubernetes.io/version"]',
        "spec.replicas",
    ]
    assert diff_object(
        DEPLOYMENT, desired, predicted, live, [IgnoreRule.from_spec(spec)]
    ).status is (ResourceDiffStatus.SYNCED)


def test_json_pointers_follow_rfc_6901() -> None:
    obj: Obj = {
        "a~b": {"c/d": 1, "e": 2},
        "items": [{"x": 1, "y": 1}, {"x": 2}],
        "keep": True,
    }
    original = copy.deepcopy(obj)
    pointers = ["/a~0b/c~1d", "/items/0/x", "/items/5/x", "/items/-", "/items/01", "/missing/y"]
    rule = IgnoreRule("", "ConfigMap", json_pointers=pointers)
    key = ResourceKey("", "ConfigMap", "shop", "settings")

    p, lv = apply_ignores(key, obj, obj, [rule])

    expected = {"a~b": {"e": 2}, "items": [{"y": 1}, {"x": 2}], "keep": True}
    assert p == expected
    assert lv == expected
    assert obj == original
    assert p["keep"] is True and p is not obj

    untouched = IgnoreRule("", "ConfigMap", json_pointers=["/nothing/here"])
    same_p, same_l = apply_ignores(key, obj, obj, [untouched])
    assert same_p is obj and same_l is obj


def test_whole_list_items_can_be_ignored_by_index() -> None:
    obj: Obj = {"spec": {"tolerations": [{"key": "a"}, {"key": "b"}, {"key": "c"}]}}
    rule = IgnoreRule("", "*", json_pointers=["/spec/tolerations/1"])

    p, _ = apply_ignores(ResourceKey("", "Pod", "shop", "x"), obj, obj, [rule])

    assert p == {"spec": {"tolerations": [{"key": "a"}, {"key": "c"}]}}


def test_jq_path_expressions_ignore_the_fields_they_select() -> None:
    desired, predicted, live = deployment()
    container(live, "log-shipper")["image"] = "registry.example.com/tools/log-shipper:9.9"
    live["spec"]["replicas"] = 7
    rule = IgnoreRule.from_spec(
        {
            "group": "apps",
            "kind": "Deployment",
            "jqPathExpressions": [
                '.spec.template.spec.containers[] | select(.name == "log-shipper") | .image',
                ".spec.replicas",
            ],
        }
    )

    result = diff_object(DEPLOYMENT, desired, predicted, live, [rule])
    p, lv = apply_ignores(DEPLOYMENT, predicted, live, [rule])

    assert result.status is ResourceDiffStatus.SYNCED
    assert "image" not in container(p, "log-shipper") and "image" in container(p, "web")
    assert "replicas" not in lv["spec"]
    assert live["spec"]["replicas"] == 7, "inputs are left alone"


def test_a_jq_expression_that_selects_nothing_changes_nothing() -> None:
    desired, predicted, live = deployment()
    live["spec"]["replicas"] = 7
    rule = IgnoreRule(
        "apps", "Deployment", jq_path_expressions=['.spec.nothing | select(. == "x")']
    )

    result = diff_object(DEPLOYMENT, desired, predicted, live, [rule])

    assert result.changed_paths == ["spec.replicas"]


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        # Runs into the memory limit or the time limit, whichever comes first on this machine.
        ("[range(1e9)]", "(MiB of memory|took longer than 1s)"),
        (".spec | until(false; .)", "took longer than 1s, the limit"),
        (".spec[", "syntax error"),
        (".x) | [range(1e5)] | del(.[0]", "gave a result larger than the object"),
    ],
)
def test_a_jq_expression_that_runs_away_or_is_invalid_fails_the_comparison(
    expression: str, why: str
) -> None:
    desired, predicted, live = deployment()
    rule = IgnoreRule("apps", "Deployment", jq_path_expressions=[expression])

    with pytest.raises(InvalidSpec) as err:
        diff_object(DEPLOYMENT, desired, predicted, live, [rule])

    assert str(err.value).startswith(f"{DEPLOYMENT}: ignoreDifferences: jqPathExpressions")
    assert repr(expression) in str(err.value)
    assert re.search(why, str(err.value))
    # The next comparison gets a working jq again.
    fine = IgnoreRule("apps", "Deployment", jq_path_expressions=[".spec.replicas"])
    assert diff_object(DEPLOYMENT, desired, predicted, live, [fine]).status is (
        ResourceDiffStatus.SYNCED
    )


def test_jq_that_needs_more_memory_than_its_limit_is_stopped() -> None:
    jq = JqRunner(time_limit=600.0, memory_limit=128 * 2**20)
    try:
        with pytest.raises(InvalidSpec, match="needed more than 128 MiB of memory"):
            jq.delete("[range(1e9)]", [{}])
        assert jq.restarts == 1
        assert jq.delete(".a", [{"a": 1, "b": 2}]) == [{"b": 2}]
    finally:
        jq.close()


def test_a_jq_error_never_quotes_a_secret_value() -> None:
    desired, live = secret()[0], secret()[2]
    rule = IgnoreRule("", "Secret", jq_path_expressions=[".data.password[]"])

    with pytest.raises(InvalidSpec) as err:
        diff_object(SECRET, desired, copy.deepcopy(live), live, [rule])

    assert "Cannot iterate over string" in str(err.value)
    assert live["data"]["password"] not in str(err.value)
    assert_no_secret_values(str(err.value))


def test_ignore_rule_from_argo_cd_spec() -> None:
    rule = IgnoreRule.from_spec(
        {
            "group": "core",
            "kind": "*",
            "namespace": "shop",
            "jsonPointers": ["/data"],
            "jqPathExpressions": [".data.x"],
            "managedFieldsManagers": ["operator"],
        }
    )

    assert rule == IgnoreRule(
        group="core",
        kind="*",
        namespace="shop",
        json_pointers=["/data"],
        jq_path_expressions=[".data.x"],
        managed_fields_managers=["operator"],
    )
    assert rule.matches(ResourceKey("", "ConfigMap", "shop", "settings"))
    assert rule.matches(ResourceKey("", "Secret", "shop", "db"))
    assert not rule.matches(ResourceKey("", "ConfigMap", "billing", "settings"))
    assert not rule.matches(ResourceKey("apps", "Deployment", "shop", "web"))
    assert IgnoreRule("", "Service").matches(ResourceKey("", "Service", "any", "thing"))
    assert IgnoreRule("*", "Deployment").matches(DEPLOYMENT)
    assert not IgnoreRule("apps", "Deployment", name="api").matches(DEPLOYMENT)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"group": "apps", "kind": "Deployment", "jsonPointer": ["/spec"]}, "jsonPointer"),
        ({"group": "apps"}, "kind is required"),
        ({"kind": "Deployment", "jsonPointers": "/spec/replicas"}, "list of strings"),
        ({"kind": "Deployment", "jsonPointers": ["spec/replicas"]}, "jsonPointers[0]"),
        ({"kind": "Deployment", "jsonPointers": ["/", "/a~2b"]}, "jsonPointers[1]"),
        ({"kind": "Deployment", "name": 7}, "name must be a string"),
    ],
)
def test_ignore_rule_rejects_a_bad_spec(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpec) as raised:
        IgnoreRule.from_spec(spec)

    assert message in str(raised.value)


# -- Secrets ---------------------------------------------------------------------------------


def secret() -> tuple[Obj, Obj, Obj]:
    """(desired, predicted, live) after the password was changed in Git: the dry-run stores the
    new password base64-encoded in data, next to what live already has."""
    live = load("secret-live.yaml")
    predicted = copy.deepcopy(live)
    predicted["data"]["password"] = b64(NEW_PASSWORD)
    return load("secret-desired.yaml"), predicted, live


def assert_no_secret_values(text: str) -> None:
    for value in (OLD_PASSWORD, NEW_PASSWORD, b64(OLD_PASSWORD), b64(NEW_PASSWORD), "c2hvcA=="):
        assert value not in text


def test_a_changed_secret_shows_the_key_but_no_value() -> None:
    desired, predicted, live = secret()

    result = diff_object(SECRET, desired, predicted, live)

    assert result.status is ResourceDiffStatus.OUT_OF_SYNC
    assert result.changed_paths == ["data.password"]
    assert_no_secret_values(result.diff_text)
    assert_no_secret_values(repr(result))
    assert "-  password: '********'" in result.diff_text
    assert "+  password: '******** (changed)'" in result.diff_text
    assert "last-applied-configuration" not in result.diff_text


def test_an_unchanged_secret_is_synced() -> None:
    desired, predicted, live = secret()
    live["data"]["password"] = b64(NEW_PASSWORD)

    assert diff_object(SECRET, desired, predicted, live).status is ResourceDiffStatus.SYNCED


def test_missing_and_extraneous_secrets_show_no_values() -> None:
    desired, predicted, live = secret()

    missing = diff_object(SECRET, desired, predicted, None)
    missing_without_dry_run = diff_object(SECRET, desired, None, None)
    extraneous = diff_object(SECRET, None, None, live)

    for result in (missing, missing_without_dry_run, extraneous):
        assert_no_secret_values(result.diff_text)
        assert "password: '********'" in result.diff_text
        assert "username: '********'" in result.diff_text


def test_secret_masks_do_not_depend_on_the_values() -> None:
    def pair(new: str, old: str) -> tuple[Obj, Obj]:
        return redact_pair(
            {"apiVersion": "v1", "kind": "Secret", "data": {"a": new, "b": "same"}},
            {"apiVersion": "v1", "kind": "Secret", "data": {"a": old, "b": "same", "c": old}},
        )

    short, long = pair("x", "y"), pair("x" * 400, "y" * 3)

    assert short == long
    assert short[0]["data"] == {"a": "******** (changed)", "b": "********"}
    assert short[1]["data"] == {"a": "********", "b": "********", "c": "********"}


def test_redact_leaves_other_kinds_and_its_input_alone() -> None:
    config_map: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "visible"}}
    live = load("secret-live.yaml")
    original = copy.deepcopy(live)

    masked = redact(live)

    assert redact(config_map) is config_map
    assert masked["data"] == {"password": "********", "username": "********"}
    assert "annotations" not in masked["metadata"]
    assert live == original


# -- Missing and extraneous ------------------------------------------------------------------


def test_a_missing_object_shows_whole_as_added() -> None:
    desired, predicted, _ = deployment()

    result = diff_object(DEPLOYMENT, desired, predicted, None)

    assert result.status is ResourceDiffStatus.MISSING
    header, body = result.diff_text.splitlines()[:3], result.diff_text.splitlines()[3:]
    assert header[:2] == ["--- live/Deployment/shop/web", "+++ desired/Deployment/shop/web"]
    assert header[2].startswith("@@ -0,0 +1,")
    assert body and all(line.startswith("+") for line in body)
    assert "+kind: Deployment" in body
    for dropped in ("status:", "managedFields", "resourceVersion", "revision:"):
        assert dropped not in result.diff_text


def test_an_extraneous_object_shows_whole_as_removed() -> None:
    _, _, live = deployment()
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "old-team"}}

    result = diff_object(DEPLOYMENT, None, None, live)
    cluster_scoped = diff_object(
        ResourceKey("", "Namespace", "", "old-team"), None, None, namespace
    )

    assert result.status is ResourceDiffStatus.EXTRANEOUS
    body = result.diff_text.splitlines()[3:]
    assert body and all(line.startswith("-") for line in body)
    assert "-  replicas: 2" in body
    assert cluster_scoped.diff_text.startswith("--- live/Namespace/old-team\n")


def test_nothing_to_compare_is_an_error() -> None:
    with pytest.raises(ValueError, match="nothing to compare"):
        diff_object(DEPLOYMENT, None, None, None)


# -- Normalization and restriction -----------------------------------------------------------


def test_normalize_drops_server_bookkeeping_without_touching_its_input() -> None:
    live = load("deployment-live.yaml")
    original = copy.deepcopy(live)

    out = normalize(live)
    out["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"

    assert live == original
    assert "status" not in out
    assert out["metadata"] == {
        "annotations": {"example.com/owner": "team-storefront"},
        "labels": {"app.kubernetes.io/name": "web", "app.kubernetes.io/version": "1.4.2"},
        "name": "web",
        "namespace": "shop",
    }
    bare = normalize(
        {
            "kind": "ConfigMap",
            "metadata": {
                "name": "x",
                "labels": {},
                "annotations": {"deployment.kubernetes.io/revision": "2"},
            },
        }
    )
    assert bare == {"kind": "ConfigMap", "metadata": {"name": "x"}}


def test_normalize_folds_secret_string_data_into_data() -> None:
    out = normalize(load("secret-desired.yaml"))

    assert "stringData" not in out
    assert out["data"] == {"username": b64("shop"), "password": b64(NEW_PASSWORD)}


def ports_field_set(*keys: str) -> Obj:
    """An object's metadata whose field set says ``ports`` is keyed as the server keys it."""
    ports = {f"k:{k}": {".": {}, "f:containerPort": {}} for k in keys}
    entry = {"manager": "tether", "fieldsType": "FieldsV1", "fieldsV1": {"f:ports": ports}}
    return {"managedFields": [entry]}


def test_restrict_to_matches_ports_by_the_servers_keys_and_a_defaulted_protocol() -> None:
    template: Obj = {"ports": [{"containerPort": 53}, {"containerPort": 53, "protocol": "UDP"}]}
    live: Obj = {
        "metadata": ports_field_set(
            '{"containerPort":53,"protocol":"UDP"}', '{"containerPort":53,"protocol":"TCP"}'
        ),
        "ports": [
            {"containerPort": 8080, "protocol": "TCP"},
            {"containerPort": 53, "protocol": "UDP", "hostPort": 0},
            {"containerPort": 53, "protocol": "TCP", "hostPort": 0},
        ],
    }

    # The item that leaves protocol to its default does not take the UDP one listed first.
    assert restrict_to(live, template) == {
        "ports": [{"containerPort": 53}, {"containerPort": 53, "protocol": "UDP"}]
    }
    assert fields_of(template, shape_of(live)) == {
        "ports[containerPort=53,protocol=UDP].containerPort",
        "ports[containerPort=53,protocol=UDP].protocol",
        "ports[containerPort=53].containerPort",
    }


def test_lists_without_keys_are_compared_whole() -> None:
    template: Obj = {"tolerations": [{"key": "gpu", "operator": "Exists"}], "args": ["a"]}
    live: Obj = {
        "tolerations": [
            {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "spot", "operator": "Exists"},
        ],
        "args": ["a", "b"],
    }

    assert restrict_to(live, template) == {
        "tolerations": [
            {"key": "gpu", "operator": "Exists"},
            {"key": "spot", "operator": "Exists"},
        ],
        "args": ["a", "b"],
    }


def test_fields_of_names_every_field_the_manifest_sets() -> None:
    fields = fields_of(load("deployment-desired.yaml"), shape_of(load("deployment-live.yaml")))

    assert "spec.replicas" in fields
    assert 'metadata.labels["app.kubernetes.io/version"]' in fields
    assert "spec.template.spec.containers[name=web].image" in fields
    assert "spec.template.spec.containers[name=web].args" in fields
    assert (
        "spec.template.spec.containers[name=web].env[name=DB_PASSWORD].valueFrom.secretKeyRef.key"
        in fields
    )
    assert "spec.template.spec.volumes[name=logs].emptyDir" in fields
    assert not any("imagePullPolicy" in f or "status" in f for f in fields)
    assert "spec.template.spec.containers[name=web].ports[containerPort=9090].name" in fields
    assert (
        "spec.template.spec.containers[name=log-shipper].volumeMounts[mountPath=/var/log/web]"
        ".readOnly" in fields
    )
    assert fields_of({"mounts": [{"name": "cfg"}, {"name": "x"}]}) == {
        "mounts[0].name",
        "mounts[1].name",
    }, "with nothing known of the list, its items are named by index"


# -- Rendering -------------------------------------------------------------------------------


def drifted() -> list[ResourceDiff]:
    desired, predicted, live = deployment()
    synced = diff_object(DEPLOYMENT, desired, predicted, live)
    live["spec"]["replicas"] = 4
    return [
        synced,
        diff_object(DEPLOYMENT, desired, predicted, live),
        diff_object(SECRET, *secret()),
    ]


def test_render_diffs_without_color() -> None:
    text = render_diffs(drifted(), color=False)

    assert "\x1b[" not in text
    assert text.count("=== OutOfSync ") == 2
    assert "=== OutOfSync Deployment.apps shop/web ===\n--- live/Deployment/shop/web\n" in text
    assert "-  replicas: 4\n+  replicas: 2\n" in text
    assert render_diffs([drifted()[0]], color=False) == ""


def test_render_diffs_with_color() -> None:
    text = render_diffs(drifted(), color=True)

    assert "\x1b[31m-  replicas: 4\x1b[0m" in text
    assert "\x1b[32m+  replicas: 2\x1b[0m" in text
    assert "\x1b[1m--- live/Deployment/shop/web\x1b[0m" in text
    assert_no_secret_values(text)


# -- Speed -----------------------------------------------------------------------------------


def test_a_thousand_deployments_each_get_their_own_verdict() -> None:
    cases = []
    template = deployment()
    for i in range(1000):
        desired, predicted, live = copy.deepcopy(template)
        for obj in (desired, predicted, live):
            obj["metadata"]["name"] = f"web-{i}"
        if i % 10 == 0:
            live["spec"]["replicas"] = 3
        cases.append((ResourceKey.of(live), desired, predicted, live))
    rules = [
        IgnoreRule.from_spec(
            {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/paused"]}
        )
    ]

    results = [diff_object(key, d, p, lv, rules) for key, d, p, lv in cases]

    drifted = [r for r in results if r.status is ResourceDiffStatus.OUT_OF_SYNC]
    assert len(drifted) == 100
    assert all(r.changed_paths == ["spec.replicas"] for r in drifted)
