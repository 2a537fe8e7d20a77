"""The one manifest parser, as the tool renderers use it: a stream of YAML or JSON text from
``kustomize build`` or ``helm template`` becomes objects with their lines, or a clear error."""

from __future__ import annotations

import pytest

from tether.errors import RenderError
from tether.render import parse_manifests
from tether.render.parse import check_unique, load_mapping, manifests_of

pytestmark = pytest.mark.unit

STREAM = b"""\
---
# Source: chart/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: one
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  metadata: {name: two}
- apiVersion: v1
  kind: Service
  metadata: {name: three}
"""


def test_a_stream_becomes_objects_with_their_lines() -> None:
    manifests = parse_manifests(STREAM, "chart/templates")
    assert [(m.obj["kind"], m.source_file, m.line) for m in manifests] == [
        ("ConfigMap", "chart/templates", 3),
        ("Secret", "chart/templates", 11),
        ("Service", "chart/templates", 14),
    ]


def test_first_line_shifts_lines_of_objects_and_of_errors() -> None:
    manifests = parse_manifests(STREAM, "all.yaml", first_line=101)
    assert [m.line for m in manifests] == [103, 111, 114]
    with pytest.raises(RenderError) as info:
        parse_manifests(b"a: 1\nb: [\n", "out.yaml", first_line=11)
    assert info.value.line == 13
    assert str(info.value).startswith("out.yaml:13: invalid YAML")


def test_json_is_read_by_the_file_name() -> None:
    text = b'{"apiVersion": "v1", "kind": "ConfigMap",\n "metadata": {"name": "j"}}'
    (m,) = parse_manifests(text, "x.json")
    assert (m.obj["metadata"]["name"], m.line) == ("j", 1)


def test_the_safety_checks_hold_for_tool_output() -> None:
    bomb = b"a: &a [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n".encode()
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    with pytest.raises(RenderError, match="alias bomb"):
        parse_manifests(bomb, "out.yaml")
    with pytest.raises(RenderError, match="expected a Kubernetes object"):
        parse_manifests(b"- a\n- b\n", "out.yaml")
    with pytest.raises(RenderError, match=r"ConfigMap object has no metadata\.name"):
        parse_manifests(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "out.yaml")


def test_an_object_twice_in_one_stream_is_refused_with_both_lines() -> None:
    cm = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same}\n"
    with pytest.raises(RenderError) as info:
        parse_manifests(cm + b"---\n" + cm, "out.yaml")
    assert str(info.value).startswith(
        "out.yaml:5: ConfigMap same is defined twice: here and at out.yaml:1"
    )


def test_a_secret_value_never_appears_in_a_parse_error() -> None:
    text = b"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  p: !hunter2\n"
    with pytest.raises(RenderError) as info:
        parse_manifests(text, "out.yaml")
    assert "hunter2" not in str(info.value)
    assert info.value.line == 5


def test_decoded_values_expand_arrays_and_lists() -> None:
    value = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
        {
            "apiVersion": "v1",
            "kind": "List",
            "items": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}],
        },
    ]
    manifests = manifests_of(value, "x.jsonnet")
    assert [(m.obj["metadata"]["name"], m.source_file) for m in manifests] == [
        ("a", "x.jsonnet"),
        ("b", "x.jsonnet"),
    ]
    check_unique(manifests)
    with pytest.raises(RenderError, match="defined twice"):
        check_unique(manifests + manifests_of(value[0], "y.jsonnet"))


def test_a_tools_own_file_is_read_with_the_same_safeguards() -> None:
    # A kustomization or Chart.yaml is read in the controller's own process, before any
    # sandbox: an alias bomb there is refused like one in a manifest.
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        name = chr(ord("a") + i)
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]")
    lines.append("resources: *i")
    with pytest.raises(RenderError, match=r"kustomization\.yaml") as info:
        load_mapping("\n".join(lines).encode(), "apps/kustomization.yaml", what="a kustomization")
    assert "alias" in str(info.value).lower()
    assert load_mapping(b"", "Chart.yaml", what="a chart file") == {}
    assert load_mapping(b"name: x\nversion: 1.0.0\n", "Chart.yaml", what="a chart file") == {
        "name": "x",
        "version": "1.0.0",
    }
    with pytest.raises(RenderError, match="is not a chart file"):
        load_mapping(b"- a\n- b\n", "Chart.yaml", what="a chart file")
    with pytest.raises(RenderError, match=r"Chart\.yaml:2"):
        load_mapping(b"name: x\n  bad: [\n", "Chart.yaml", what="a chart file")
