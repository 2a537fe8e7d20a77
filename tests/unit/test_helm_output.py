"""Helm's output made into manifests (files, hooks, tests dropped) and its errors made readable."""

from __future__ import annotations

from typing import Any

import pytest

from tether.errors import RenderError
from tether.render.helm_output import (
    HOOK,
    HOOK_WEIGHT,
    ChartPaths,
    explain_build_failure,
    explain_failure,
    is_test_hook,
    manifests_from_output,
    mark_hook,
)

pytestmark = pytest.mark.unit

PATHS = ChartPaths("shop", "apps/shop")

OUTPUT = b"""\
---
# Source: shop/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: shop
spec:
  ports: [{port: 80}]
---
# Source: shop/templates/config.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: one
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: two
---
# Source: shop/charts/redis/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-redis
---
# Source: shop/templates/empty.yaml
# only comments here
---
# Source: shop/templates/migrate.yaml
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations:
    "helm.sh/hook": pre-install, pre-upgrade
    "helm.sh/hook-weight": "-5"
    "helm.sh/hook-delete-policy": before-hook-creation
---
# Source: shop/templates/tests/test-connection.yaml
apiVersion: v1
kind: Pod
metadata:
  name: shop-test
  annotations:
    "helm.sh/hook": test
"""


def test_objects_keep_the_repository_file_of_their_template() -> None:
    manifests = manifests_from_output(OUTPUT, PATHS)
    assert [(m.obj["metadata"]["name"], m.source_file) for m in manifests] == [
        ("shop", "apps/shop/templates/service.yaml"),
        ("one", "apps/shop/templates/config.yaml"),
        ("two", "apps/shop/templates/config.yaml"),
        ("shop-redis", "apps/shop/charts/redis/templates/deployment.yaml"),
        ("migrate", "apps/shop/templates/migrate.yaml"),
    ]
    assert all(m.line == 0 for m in manifests)


def test_hooks_are_kept_and_marked_and_tests_dropped() -> None:
    by_name = {m.obj["metadata"]["name"]: m.obj for m in manifests_from_output(OUTPUT, PATHS)}
    assert "shop-test" not in by_name
    annotations = by_name["migrate"]["metadata"]["annotations"]
    assert annotations[HOOK] == "pre-install,pre-upgrade"
    assert annotations[HOOK_WEIGHT] == "-5"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
    assert "annotations" not in by_name["shop"]["metadata"]


def hook(value: str, weight: str | None = None) -> dict[str, Any]:
    annotations = {"helm.sh/hook": value}
    if weight is not None:
        annotations["helm.sh/hook-weight"] = weight
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": annotations},
    }


@pytest.mark.parametrize(
    ("value", "test"),
    [
        ("test", True),
        ("test-success", True),
        ("test-failure", True),
        ("pre-install,test", True),
        ("post-install", False),
        ("pre-delete, post-delete", False),
    ],
)
def test_test_hooks_are_recognized(value: str, test: bool) -> None:
    assert is_test_hook(hook(value)) is test


def test_hook_weight_defaults_to_zero_and_must_be_a_number() -> None:
    obj = hook("post-install")
    mark_hook(obj, "f.yaml")
    assert obj["metadata"]["annotations"][HOOK] == "post-install"
    assert obj["metadata"]["annotations"][HOOK_WEIGHT] == "0"
    obj = hook("pre-install", " +3 ")
    mark_hook(obj, "f.yaml")
    assert obj["metadata"]["annotations"][HOOK_WEIGHT] == "3"
    with pytest.raises(RenderError) as info:
        mark_hook(hook("pre-install", "first"), "apps/shop/templates/job.yaml")
    assert info.value.file == "apps/shop/templates/job.yaml"
    assert "not a whole number" in info.value.message


def test_objects_without_hooks_are_left_alone() -> None:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    mark_hook(obj, "f.yaml")
    assert obj == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}


def test_an_object_printed_twice_is_an_error() -> None:
    twice = b"""\
---
# Source: shop/templates/a.yaml
apiVersion: v1
kind: ConfigMap
metadata: {name: same}
---
# Source: shop/templates/b.yaml
apiVersion: v1
kind: ConfigMap
metadata: {name: same}
"""
    with pytest.raises(RenderError) as info:
        manifests_from_output(twice, PATHS)
    assert info.value.file == "apps/shop/templates/b.yaml"
    assert "apps/shop/templates/a.yaml" in info.value.message


def test_an_object_without_kind_names_its_template() -> None:
    bad = b"---\n# Source: shop/templates/a.yaml\napiVersion: v1\nmetadata: {name: x}\n"
    with pytest.raises(RenderError) as info:
        manifests_from_output(bad, PATHS)
    assert info.value.file == "apps/shop/templates/a.yaml"


# --- helm's errors --------------------------------------------------------------------------------


def test_a_failed_execution_names_template_and_line() -> None:
    stderr = (
        "Error: shop/templates/deployment.yaml:6:15\n"
        '  executing "shop/templates/deployment.yaml" at <.Values.image.tag>:\n'
        "    nil pointer evaluating interface {}.tag\n"
        "\nUse --debug flag to render out invalid YAML\n"
    )
    failure = explain_failure(stderr, PATHS, {}, "1.20.2")
    assert (failure.file, failure.line) == ("apps/shop/templates/deployment.yaml", 6)
    assert "nil pointer evaluating interface {}.tag" in failure.message
    assert "--debug" not in failure.message


def test_a_parse_error_names_template_and_line() -> None:
    stderr = "Error: parse error at (shop/templates/bad.yaml:2): missing value for if\n"
    failure = explain_failure(stderr, PATHS, {}, "1.20.2")
    assert (failure.file, failure.line) == ("apps/shop/templates/bad.yaml", 2)


def test_yaml_that_does_not_parse_after_rendering_names_the_template() -> None:
    stderr = (
        "Error: YAML parse error on shop/templates/bad.yaml: error converting YAML to JSON: "
        "yaml: line 3: mapping values are not allowed in this context\n"
    )
    failure = explain_failure(stderr, PATHS, {}, "1.20.2")
    assert (failure.file, failure.line) == ("apps/shop/templates/bad.yaml", 0)
    assert "mapping values are not allowed" in failure.message


def test_a_bad_values_file_is_named_as_the_user_wrote_it() -> None:
    arg = "/tmp/tether-x/repo/apps/shop/values-prod.yaml"
    stderr = (
        f"Error: failed to parse {arg}: cannot unmarshal yaml document: error converting YAML "
        "to JSON: yaml: line 4: did not find expected node content\n"
    )
    failure = explain_failure(stderr, PATHS, {arg: "apps/shop/values-prod.yaml"}, "1.20.2")
    assert (failure.file, failure.line) == ("apps/shop/values-prod.yaml", 4)
    assert "/tmp/tether-x" not in failure.message
    assert "failed to parse apps/shop/values-prod.yaml" in failure.message


def test_the_charts_own_values_yaml() -> None:
    stderr = "Error: cannot load values.yaml: error converting YAML to JSON: yaml: line 162: x\n"
    failure = explain_failure(stderr, PATHS, {}, "1.20.2")
    assert (failure.file, failure.line) == ("apps/shop/values.yaml", 162)


def test_a_kube_version_constraint_names_chart_yaml_and_the_cluster() -> None:
    stderr = (
        "Error: chart requires kubeVersion: >=1.22.0 which is incompatible with "
        "Kubernetes v1.20.2\n"
    )
    failure = explain_failure(stderr, PATHS, {}, "1.20.2")
    assert failure.file == "apps/shop/Chart.yaml"
    assert "1.20.2" in failure.hint


def test_a_dependency_build_failure_puts_the_repository_error_first() -> None:
    stdout = (
        b"Hang tight while we grab the latest from your chart repositories...\n"
        b'...Unable to get an update from the "dep-0" chart repository (http://127.0.0.1:1):\n'
        b"\tfailed to fetch http://127.0.0.1:1/index.yaml : 401 Unauthorized\n"
        b"Update Complete.\n"
    )
    stderr = "Error: no cached repository for dep-0 found: open /tmp/h/cache/dep-0-index.yaml\n"
    failure = explain_build_failure(stdout, stderr, {"/tmp/h/": ""})
    assert failure.file == "Chart.yaml"
    assert failure.message == (
        "failed to fetch http://127.0.0.1:1/index.yaml : 401 Unauthorized; "
        "no cached repository for dep-0 found: open cache/dep-0-index.yaml"
    )


def test_a_stale_lock_file_names_chart_lock() -> None:
    stderr = (
        "Error: the lock file (Chart.lock) is out of sync with the dependencies file "
        "(Chart.yaml). Please update the dependencies\n"
    )
    failure = explain_build_failure(b"", stderr, {})
    assert failure.file == "Chart.lock"
    assert "helm dependency update" in failure.hint
