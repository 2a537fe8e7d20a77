"""The schema walk on real published schemas (trimmed v2 of the local server, a v3-shaped
custom resource document): types, unknown fields, maps, required, int-or-string, null,
formats and limits, and the places where it must leave the object to the server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.schema import CONTAINER_PORT_DEFAULTS
from tether.schema.check import Walk, walk
from tether.schema.kinds import builtin_judgement
from tether.schema.nodes import Node, strip_descriptions
from tether.schema.openapi import Document, crd_root

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "openapi"
V2 = Document.parse("", json.loads((FIXTURES / "v2-core-apps.json").read_text()), v3=False)
V3 = Document.parse("h", json.loads((FIXTURES / "v3-widgets.json").read_text()), v3=True)
CRD = yaml.safe_load((FIXTURES / "widget-crd.yaml").read_text())
WIDGET = crd_root(CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def node(doc: Document, group: str, version: str, kind: str) -> Node:
    found = doc.node(group, version, kind)
    assert found is not None, kind
    return found[1]


def run(obj: dict[str, Any], schema: Node, *, custom: bool = False, strict: bool = True) -> Walk:
    w = Walk(strict=strict, custom=custom)
    walk(obj, schema, "", w)
    return w


CONFIGMAP = node(V2, "", "v1", "ConfigMap")
DEPLOYMENT = node(V2, "apps", "v1", "Deployment")
SERVICE = node(V2, "", "v1", "Service")


def deployment(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
            **spec,
        },
    }


def test_a_good_configmap_passes() -> None:
    w = run(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {}}, CONFIGMAP
    )
    assert (w.problems, w.deferred) == ([], [])


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        ({"data": {"a": 1}}, "data[a]: expected string, got number 1"),
        ({"data": ["a"]}, "data: expected object, got array"),
        ({"immutable": "yes"}, 'immutable: expected boolean, got string "yes"'),
        ({"binaryData": {"k": "%%"}}, "binaryData[k]: expected base64-encoded data (format byte)"),
        ({"dta": {}}, "dta: unknown field"),
        ({"metadata": {"labelz": {}}}, "metadata.labelz: unknown field"),
        (
            {"metadata": {"labels": {"a": True}}},
            "metadata.labels[a]: expected string, got boolean true",
        ),
    ],
)
def test_configmap_problems(obj: dict[str, Any], problem: str) -> None:
    assert run({"apiVersion": "v1", "kind": "ConfigMap", **obj}, CONFIGMAP).problems == [problem]


def test_null_is_unset_in_a_builtin_kind() -> None:
    w = run(deployment(replicas=None), DEPLOYMENT)
    assert (w.problems, w.deferred) == ([], [])


def test_integers_accept_whole_numbers_only() -> None:
    assert run(deployment(replicas=2.0), DEPLOYMENT).problems == []
    assert run(deployment(replicas=1.5), DEPLOYMENT).problems == [
        "spec.replicas: expected integer, got number 1.5"
    ]
    assert run(deployment(replicas="3"), DEPLOYMENT).problems == [
        'spec.replicas: expected integer, got string "3"'
    ]
    w = run(deployment(replicas=2**32 + 1), DEPLOYMENT)
    assert w.problems == [] and "outside the int32 range" in w.deferred[0]


def test_required_fields_of_nested_objects() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"] = [{"image": "nginx"}]
    assert run(obj, DEPLOYMENT).problems == [
        "spec.template.spec.containers[0].name: required field is missing"
    ]


def test_int_or_string_and_list_map_keys() -> None:
    svc: dict[str, Any] = {"apiVersion": "v1", "kind": "Service", "spec": {"ports": []}}
    svc["spec"]["ports"] = [{"port": 80, "protocol": "TCP", "targetPort": "http"}]
    assert run(svc, SERVICE).problems == []
    svc["spec"]["ports"] = [{"port": 80, "protocol": "TCP", "targetPort": [1]}]
    assert run(svc, SERVICE).problems == [
        "spec.ports[0].targetPort: expected integer or string, got array"
    ]
    svc["spec"]["ports"] = [{"port": 80}]  # protocol is a key: servers differ when it is left out
    w = run(svc, SERVICE)
    assert w.problems == [] and "leaves out a key field" in w.deferred[0]
    svc["spec"]["ports"] = [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "TCP"}]
    assert run(svc, SERVICE).problems == ["spec.ports[1]: duplicate entry for port, protocol"]


def test_unknown_fields_without_strict_validation_go_to_the_server() -> None:
    w = run({"apiVersion": "v1", "kind": "ConfigMap", "dta": {}}, CONFIGMAP, strict=False)
    assert w.problems == [] and w.deferred == [
        "dta: unknown field: the server drops or refuses it, depending on its version"
    ]


def widget(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "x/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 3, **spec},
    }


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"size": 11}, "spec.size: must be at most 10"),
        ({"size": 0}, "spec.size: must be at least 1"),
        (
            {"color": "pink"},
            'spec.color: string "pink" is not one of string "red", string "green", string "blue"',
        ),
        ({"code": "abc"}, "spec.code: string \"abc\" does not match '^[A-Z]{3}$'"),
        ({"tags": ["a", "b", "c", "d"]}, "spec.tags: may have at most 3 items, has 4"),
        ({"tags": [""]}, "spec.tags[0]: must be at least 1 characters long, is 0"),
        ({"settings": {"k": 1}}, "spec.settings[k]: expected string, got number 1"),
        ({"note": 5}, "spec.note: expected string, got number 5"),
        ({"port": False}, "spec.port: expected integer or string, got boolean false"),
        ({"template": {"apiVersion": "v1"}}, "spec.template.kind: required field is missing"),
        ({"template": "cm"}, 'spec.template: expected object, got string "cm"'),
        ({"colour": "red"}, "spec.colour: unknown field"),
    ],
)
def test_custom_resource_problems(spec: dict[str, Any], problem: str) -> None:
    assert run(widget(**spec), WIDGET, custom=True).problems == [problem]


def test_custom_resource_that_passes() -> None:
    w = run(
        widget(port=8080, note=None, free={"any": [1, {"x": None}]}, settings={}),
        WIDGET,
        custom=True,
    )
    assert (w.problems, w.deferred) == ([], [])


def test_custom_resource_null_outside_nullable_goes_to_the_server() -> None:
    w = run(widget(color=None), WIDGET, custom=True)
    assert w.problems == [] and w.deferred == ["spec.color: null where the schema is not nullable"]


def test_unchecked_string_formats_go_to_the_server() -> None:
    w = run(widget(email="not an address"), WIDGET, custom=True)
    assert w.problems == [] and w.deferred == [
        "spec.email: format 'email' is checked by the server"
    ]


def test_a_required_field_missing_in_a_custom_resource() -> None:
    obj = widget()
    del obj["spec"]["size"]
    assert run(obj, WIDGET, custom=True).problems == ["spec.size: required field is missing"]


def test_v3_document_resolves_allof_references_and_nullable() -> None:
    schema = node(V3, "schema.tether.dev", "v1", "Widget")
    w = run(
        {"metadata": {"name": "w", "labels": {"a": 1}}, "spec": {"size": 2, "note": None}},
        schema,
        custom=True,
    )
    assert w.problems == ["metadata.labels[a]: expected string, got number 1"]
    assert w.deferred == []


def test_v3_validation_rules_and_oneof_go_to_the_server() -> None:
    schema = node(V3, "schema.tether.dev", "v1", "Widget")
    w = run({"spec": {"size": 2, "rule": "forbidden"}}, schema, custom=True)
    assert w.problems == [] and w.deferred == [
        "spec.rule: the schema uses x-kubernetes-validations"
    ]
    w = run({"spec": {"size": 2, "choice": {"a": "x"}}}, schema, custom=True)
    assert w.problems == [] and w.deferred == ["spec.choice: the schema uses oneOf"]
    w = run({"spec": {"size": 2, "port": "http"}}, schema, custom=True)
    assert (w.problems, w.deferred) == ([], [])  # int-or-string's anyOf is understood


def test_v2_loses_the_type_of_a_nullable_field() -> None:
    """Why a custom resource is checked against its CRD: the v2 publication of the same CRD
    has no type for ``note``, so a number there would pass it."""
    published = json.loads((FIXTURES / "widget-v2-published.json").read_text())
    doc = Document.parse("", published, v3=False)
    assert doc.kinds == {("schema.tether.dev", "v1", "Widget"): "dev.tether.schema.v1.Widget"}
    loose = node(doc, "schema.tether.dev", "v1", "Widget")
    assert run({"spec": {"size": 3, "note": 5}}, loose, custom=True).problems == []
    assert run(widget(note=5), WIDGET, custom=True).problems != []


def test_a_crd_that_constrains_metadata_goes_to_the_server() -> None:
    raw = {
        "type": "object",
        "properties": {
            "metadata": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 5}},
            }
        },
    }
    w = run({"metadata": {"name": "long-name"}}, crd_root(raw), custom=True)
    assert w.deferred == ["metadata: the CustomResourceDefinition constrains metadata"]


def test_recursive_definitions_compile_once() -> None:
    doc = Document.parse(
        "",
        {
            "definitions": {
                "T": {
                    "type": "object",
                    "properties": {"child": {"$ref": "#/definitions/T"}},
                    "x-kubernetes-group-version-kind": [
                        {"group": "g", "version": "v", "kind": "T"}
                    ],
                }
            }
        },
        v3=False,
    )
    tree = node(doc, "g", "v", "T")
    assert tree.properties is not None and tree.properties["child"] is tree
    assert run({"child": {"child": {"child": {"x": 1}}}}, tree, custom=True).problems == [
        "child.child.child.x: unknown field"
    ]


def builtin_problems(group: str, kind: str, obj: dict[str, Any]) -> list[str]:
    return builtin_judgement(group, kind, obj)[0]


def builtin_defer(group: str, kind: str, obj: dict[str, Any]) -> str:
    return builtin_judgement(group, kind, obj)[1]


@pytest.mark.parametrize(
    ("obj", "problems"),
    [
        ({"data": {"a b": "1"}}, ["data[a b]: not a valid key"]),
        ({"data": {"..a": "1"}}, ["data[..a]: not a valid key"]),
        (
            {"data": {"k": "1"}, "binaryData": {"k": "MQ=="}},
            ["binaryData[k]: the key is also in data"],
        ),
        ({"data": {"k": "x" * (1024 * 1024)}}, ["ConfigMap data: may hold at most 1048576 bytes"]),
        ({"data": {"ok.key_1-A": "1"}}, []),
    ],
)
def test_configmap_keys_and_size(obj: dict[str, Any], problems: list[str]) -> None:
    found = builtin_problems("", "ConfigMap", obj)
    assert [p[: len(want)] for p, want in zip(found, problems, strict=True)] == problems


def test_workload_selector_must_select_the_template() -> None:
    assert builtin_problems("apps", "Deployment", deployment()) == []
    obj = deployment()
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "api"}
    assert builtin_problems("apps", "Deployment", obj) == [
        "spec.template.metadata.labels: the selector does not select the template's labels"
        " (selector {app=web}, labels {app=api})"
    ]
    obj["spec"]["selector"] = {}
    assert builtin_problems("apps", "Deployment", obj)[0].startswith("spec.selector: required")


def test_only_fully_known_builtin_kinds_are_vouched_for() -> None:
    assert builtin_defer("", "ConfigMap", {}) == ""
    assert builtin_defer("", "Secret", {"type": "Opaque"}) == ""
    assert "type rules" in builtin_defer("", "Secret", {"type": "kubernetes.io/tls"})
    assert "rules its published schema does not hold" in builtin_defer("apps", "ReplicaSet", {})
    assert builtin_defer("apps", "Deployment", deployment()) == ""


def test_where_python_and_the_server_read_values_differently_the_server_judges() -> None:
    """Equal in Python, not to the server's decoder or regular expressions: deferred, never
    vouched for and never called invalid."""
    enum = Document.parse(
        "",
        {
            "definitions": {
                "E": {
                    "type": "object",
                    "properties": {
                        "n": {"type": "number", "enum": [1, 2]},
                        "s": {"type": "string", "pattern": "^[A-Z]+$"},
                        "when": {"type": "string", "format": "date-time"},
                    },
                    "x-kubernetes-group-version-kind": [
                        {"group": "g", "version": "v", "kind": "E"}
                    ],
                }
            }
        },
        v3=False,
    )
    schema = node(enum, "g", "v", "E")
    w = run({"n": 1.0}, schema, custom=True)
    assert w.problems == [] and "another JSON type" in w.deferred[0]
    assert run({"n": 2}, schema, custom=True).deferred == []
    w = run({"s": "ABC\n"}, schema, custom=True)
    assert w.problems == [] and w.deferred == ["s: a multi-line value against a pattern"]
    assert run({"s": "ABC"}, schema, custom=True).deferred == []
    assert run({"when": "2026-11-28T04:00:00Z"}, schema, custom=True).deferred == []
    assert run({"when": "2026-11-28T04:00:00.5+01:00"}, schema, custom=True).deferred == []
    w = run({"when": "2026-11-28"}, schema, custom=True)
    assert w.problems == [] and "RFC 3339" in w.deferred[0]


def test_base64_may_hold_line_breaks() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "binaryData": {"k": "aGVs\nbG8="}}
    assert run(obj, CONFIGMAP).problems == []


def test_a_required_field_set_to_null() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"] = [{"name": None, "image": "nginx"}]
    w = run(obj, DEPLOYMENT)
    assert w.problems == [] and w.deferred == [
        "spec.template.spec.containers[0].name: a required field set to null"
    ]


def test_descriptions_are_dropped_but_a_field_called_description_stays() -> None:
    raw = {
        "description": "text",
        "type": "object",
        "properties": {"description": {"type": "string", "description": "a field"}},
        "enum": [{"description": "kept as data"}],
    }
    assert strip_descriptions(raw) == {
        "type": "object",
        "properties": {"description": {"type": "string"}},
        "enum": [{"description": "kept as data"}],
    }


def test_a_left_out_key_field_is_deferred_unless_the_server_defaults_it() -> None:
    obj = deployment()
    ports = [{"containerPort": 80}, {"containerPort": 80, "protocol": "TCP"}]
    obj["spec"]["template"]["spec"]["containers"][0]["ports"] = ports[:1]
    assert (
        run(obj, DEPLOYMENT)
        .deferred[0]
        .endswith("leaves out a key field (containerPort, protocol)")
    )
    w = Walk(strict=True, custom=False, key_defaults=CONTAINER_PORT_DEFAULTS)
    walk(obj, DEPLOYMENT, "", w)
    assert (w.problems, w.deferred) == ([], [])
    obj["spec"]["template"]["spec"]["containers"][0]["ports"] = ports  # TCP twice, once defaulted
    w = Walk(strict=True, custom=False, key_defaults=CONTAINER_PORT_DEFAULTS)
    walk(obj, DEPLOYMENT, "", w)
    assert w.problems == [
        "spec.template.spec.containers[0].ports[1]: duplicate entry for containerPort, protocol"
    ]
