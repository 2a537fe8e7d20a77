"""Name, label and annotation syntax as the API server enforces it, kind by kind; and which
admission rules, quotas and namespaces make the check leave an object to the server."""

from __future__ import annotations

import pytest

from tether.schema.admission import Judges, Namespace, Rule, _rules, selects
from tether.schema.names import (
    annotation_problems,
    label_problems,
    name_problems,
    namespace_problems,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("group", "kind", "name", "ok"),
    [
        ("", "ConfigMap", "a.b-c", True),
        ("", "ConfigMap", "A", False),
        ("", "ConfigMap", "a_b", False),
        ("", "ConfigMap", "-a", False),
        ("", "ConfigMap", "a" * 253, True),
        ("", "ConfigMap", "a" * 254, False),
        ("", "Namespace", "a-b", True),
        ("", "Namespace", "a.b", False),
        ("", "Namespace", "a" * 64, False),
        ("", "Service", "web", True),
        ("", "Service", "1web", False),
        ("", "Service", "web.a", False),
        ("rbac.authorization.k8s.io", "ClusterRole", "system:aggregate-to-edit", True),
        ("rbac.authorization.k8s.io", "Role", "A_b", True),
        ("rbac.authorization.k8s.io", "Role", "a/b", False),
        ("rbac.authorization.k8s.io", "Role", "..", False),
        ("example.com", "Widget", "w.1", True),
        ("example.com", "Widget", "W", False),
        ("", "ConfigMap", "", False),
        ("", "ConfigMap", None, False),
    ],
)
def test_names_by_kind(group: str, kind: str, name: str | None, ok: bool) -> None:
    assert (name_problems(group, kind, name) == []) is ok


def test_namespace_is_a_label() -> None:
    assert namespace_problems("team-a") == []
    assert namespace_problems("team.a") != []


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ({"app.kubernetes.io/name": "web", "empty": ""}, ""),
        ({"a": "b c"}, "metadata.labels[a]: 'b c' is not a valid label value"),
        ({"a": "-b"}, "metadata.labels[a]: '-b' is not a valid label value"),
        ({"a": "b" * 64}, "metadata.labels[a]: '" + "b" * 64 + "' is not a valid label value"),
        ({"a/b/c": "x"}, "metadata.labels[a/b/c]: 'a/b/c' is not a qualified name"),
        ({"/b": "x"}, "metadata.labels[/b]: '/b' has an empty prefix"),
        ({"Ex.com/b": "x"}, "metadata.labels[Ex.com/b]: 'Ex.com' is not a prefix"),
        (
            {"a" * 64: "x"},
            "metadata.labels[" + "a" * 64 + "]: '" + "a" * 64 + "' is not a qualified",
        ),
        ({"a": 1}, "metadata.labels[a]: expected string, got number 1"),
        ({"a": None}, ""),
    ],
)
def test_labels(labels: dict[str, object], problem: str) -> None:
    found = label_problems(labels)
    assert (found[0][: len(problem)] if found else "") == problem


def test_annotations_keys_and_total_size() -> None:
    assert annotation_problems({"example.com/any": "free text: with spaces"}) == []
    assert annotation_problems({"a b": "x"})[0].startswith("metadata.annotations[a b]:")
    big = {"a": "x" * (256 * 1024)}
    assert annotation_problems(big)[0].startswith("metadata.annotations: may hold at most")


def test_selectors() -> None:
    assert selects(None, {})
    assert selects({"matchLabels": {"a": "b"}}, {"a": "b", "c": "d"})
    assert not selects({"matchLabels": {"a": "b"}}, {"a": "c"})
    expr = {"matchExpressions": [{"key": "a", "operator": "In", "values": ["x", "y"]}]}
    assert selects(expr, {"a": "y"}) and not selects(expr, {"a": "z"}) and not selects(expr, {})
    expr = {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]}
    assert selects(expr, {}) and not selects(expr, {"a": "x"})
    assert selects({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""})
    assert not selects({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""})


def judges(*rules: Rule, quotas: frozenset[str] | None = frozenset()) -> Judges:
    ns = {"team": Namespace("team", {"env": "prod"}), "dev": Namespace("dev", {})}
    return Judges(rules=list(rules), quota_namespaces=quotas, namespaces=ns)


def test_webhook_rules_match_by_resource_and_selectors() -> None:
    hook = {
        "operations": ["CREATE"],
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "resources": ["configmaps", "pods/status"],
    }
    (rule,) = _rules("ValidatingWebhookConfiguration v", [hook], {"matchLabels": {"env": "prod"}})
    j = judges(rule)
    assert (
        j.why_not("configmaps", "team", {})
        == "ValidatingWebhookConfiguration v intercepts configmaps"
    )
    assert j.why_not("configmaps", "dev", {}) == ""
    assert j.why_not("secrets", "team", {}) == ""
    assert j.why_not("pods", "team", {}) != ""  # a subresource rule is matched on its resource
    assert _rules("x", [{**hook, "operations": ["DELETE"]}]) == []
    (every,) = _rules("MutatingWebhookConfiguration m", [{**hook, "resources": ["*/*"]}])
    assert judges(every).mutated_by("widgets", "", {}) == "MutatingWebhookConfiguration m"


def test_quotas_namespaces_and_blindness() -> None:
    assert (
        judges(quotas=frozenset({"team"}))
        .why_not("configmaps", "team", {})
        .startswith("namespace team has a ResourceQuota")
    )
    assert judges(quotas=None).why_not("configmaps", "dev", {}).startswith("resource quotas cannot")
    assert judges().why_not("configmaps", "gone", {}) == (
        "namespace gone does not exist yet or is terminating"
    )
    assert judges().why_not("namespaces", "", {}) == ""
    assert Judges(blind="cannot read").why_not("configmaps", "dev", {}) == "cannot read"
