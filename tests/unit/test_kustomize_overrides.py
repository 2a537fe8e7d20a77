"""The Application's kustomize overrides, written into the app's kustomization as Argo CD's
``kustomize edit`` commands write them."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tether.api.source import KustomizeReplica, KustomizeSource
from tether.errors import InvalidSpec
from tether.render.kustomize_overrides import (
    ImageOverride,
    apply_overrides,
    edit_kustomization,
    has_overrides,
    parse_image,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx:1.27", ImageOverride("nginx", new_tag="1.27")),
        ("nginx=nginx:1.27", ImageOverride("nginx", "nginx", "1.27")),
        ("nginx=registry.example/web", ImageOverride("nginx", "registry.example/web")),
        ("nginx@sha256:abc", ImageOverride("nginx", digest="sha256:abc")),
        ("nginx=mirror/nginx@sha256:abc", ImageOverride("nginx", "mirror/nginx", "", "sha256:abc")),
        ("localhost:5000/web:2.0", ImageOverride("localhost:5000/web", new_tag="2.0")),
        ("nginx=*:1.28", ImageOverride("nginx", "*", "1.28")),
    ],
)
def test_image_overrides_are_read_in_every_form_kustomize_edit_accepts(
    text: str, expected: ImageOverride
) -> None:
    assert parse_image(text) == expected


@pytest.mark.parametrize("text", ["nginx", "=nginx:1.27", ""])
def test_an_image_override_in_no_known_form_is_refused(text: str) -> None:
    with pytest.raises(InvalidSpec, match="is not an image override"):
        parse_image(text)


def test_no_overrides_means_the_kustomization_is_left_alone() -> None:
    assert not has_overrides(None)
    assert not has_overrides(KustomizeSource())
    assert has_overrides(KustomizeSource(name_suffix="-x"))


def test_name_prefix_suffix_and_namespace_replace_the_kustomizations_own() -> None:
    original = {"namePrefix": "kustomize-", "namespace": "team", "resources": ["a.yaml"]}
    out = apply_overrides(
        original, KustomizeSource(name_prefix="staging-", name_suffix="-v2", namespace="web")
    )
    assert out == {
        "namePrefix": "staging-",
        "namespace": "web",
        "resources": ["a.yaml"],
        "nameSuffix": "-v2",
    }
    assert original["namePrefix"] == "kustomize-"


def test_an_image_override_replaces_the_entry_of_that_name_and_keeps_the_others() -> None:
    kustomization: dict[str, Any] = {
        "images": [
            {"name": "redis", "newTag": "7"},
            {"name": "nginx", "newName": "mirror/nginx", "newTag": "1.25"},
        ]
    }
    out = apply_overrides(kustomization, KustomizeSource(images=["nginx:1.27", "app=web:3"]))
    assert out["images"] == [
        {"name": "app", "newName": "web", "newTag": "3"},
        {"name": "nginx", "newTag": "1.27"},
        {"name": "redis", "newTag": "7"},
    ]


def test_an_asterisk_keeps_the_kustomizations_own_value() -> None:
    kustomization = {"images": [{"name": "nginx", "newName": "mirror/nginx", "newTag": "1.25"}]}
    out = apply_overrides(kustomization, KustomizeSource(images=["nginx=*:1.27"]))
    assert out["images"] == [{"name": "nginx", "newName": "mirror/nginx", "newTag": "1.27"}]


def test_replicas_are_set_by_name() -> None:
    kustomization = {"replicas": [{"name": "web", "count": 2}, {"name": "db", "count": 1}]}
    options = KustomizeSource(replicas=[KustomizeReplica("web", 5), KustomizeReplica("worker", 0)])
    assert apply_overrides(kustomization, options)["replicas"] == [
        {"name": "db", "count": 1},
        {"name": "web", "count": 5},
        {"name": "worker", "count": 0},
    ]


def test_labels_and_annotations_are_added_and_an_override_wins() -> None:
    kustomization = {"commonLabels": {"team": "a", "tier": "web"}}
    options = KustomizeSource(
        common_labels={"team": "b", "env": "prod"}, common_annotations={"owner": "ops"}
    )
    out = apply_overrides(kustomization, options)
    assert out["commonLabels"] == {"team": "b", "tier": "web", "env": "prod"}
    assert out["commonAnnotations"] == {"owner": "ops"}


def test_components_are_added_once_and_patches_appended() -> None:
    own_patch = {"path": "replicas.yaml"}
    app_patch = {"target": {"kind": "Deployment"}, "patch": "- op: remove\n  path: /x\n"}
    kustomization = {"components": ["../../components/a"], "patches": [own_patch]}
    options = KustomizeSource(
        components=["../../components/a", "../../components/b"], patches=[app_patch]
    )
    out = apply_overrides(kustomization, options)
    assert out["components"] == ["../../components/a", "../../components/b"]
    assert out["patches"] == [own_patch, app_patch]
    assert kustomization["patches"] == [own_patch]


def test_the_file_written_back_keeps_every_value_as_it_was_written() -> None:
    text = (
        "images:\n- name: redis\n  newTag: 1.10\n"
        "replicas:\n- name: db\n  count: 3\n"
        "configMapGenerator:\n- name: c\n  literals: ['port=8080']\n"
        "  options: {disableNameSuffixHash: true}\n"
        "commonAnnotations: {version: '2.0', build: 017}\n"
    )
    out = yaml.safe_load(edit_kustomization(text, KustomizeSource(images=["nginx:1.27"])))
    assert out["images"] == [{"name": "nginx", "newTag": "1.27"}, {"name": "redis", "newTag": 1.10}]
    # Read back as kustomize reads it: the unquoted tag is the text 1.10, not the number 1.1.
    assert "newTag: 1.10\n" in edit_kustomization(text, KustomizeSource(images=["nginx:1.27"]))
    assert out["replicas"] == [{"name": "db", "count": 3}]
    assert out["configMapGenerator"][0]["options"] == {"disableNameSuffixHash": True}
    assert out["configMapGenerator"][0]["literals"] == ["port=8080"]
    assert out["commonAnnotations"] == {"version": "2.0", "build": 15}
    assert "build: 017" in edit_kustomization(text, KustomizeSource(name_prefix="p-"))
