"""The rules of a pod's scheduling fields beyond their schema.

``tolerations`` (``ValidateTolerations``): a key is a label name, an empty key needs
``Exists``, ``Equal`` takes a label value and ``Exists`` none, an effect is one of the three
taint effects, ``tolerationSeconds`` needs ``NoExecute``; another operator goes to the server
(newer ones add some). ``affinity`` (``ValidateAffinity``): node selector terms with
``matchExpressions``, pod (anti-)affinity terms with a label selector, namespaces and a
topology key, preferences weighted 1-100; anything else goes to the server.
"""

from __future__ import annotations

from typing import Any

from tether.schema.check import show
from tether.schema.names import DNS1123_LABEL, label_problems, qualified_name_problems
from tether.schema.rules import Judge

_TOLERATION = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def judge_tolerations(value: Any, j: Judge, path: str) -> None:
    for i, item in enumerate(j.items(value, path) or ()):
        where = f"{path}[{i}]"
        toleration = j.mapping(item, where)
        if not toleration:
            continue
        j.only(toleration, _TOLERATION, where)
        key = j.string(toleration.get("key"), f"{where}.key") or ""
        operator = j.string(toleration.get("operator"), f"{where}.operator") or "Equal"
        text = j.string(toleration.get("value"), f"{where}.value") or ""
        effect = j.one_of(toleration.get("effect"), _EFFECTS, f"{where}.effect") or ""
        if key:
            j.problems += qualified_name_problems(f"{where}.key", key)
        if operator not in ("Equal", "Exists"):
            j.defer(f"{where}.operator", f"operator {show(operator)} is judged by the server")
            continue
        if not key and operator != "Exists":
            j.problem(f"{where}.operator", "must be Exists when key is empty")
        if operator == "Exists" and text:
            j.problem(f"{where}.value", "must be empty when operator is Exists")
        if operator == "Equal" and text:
            j.problems += label_problems({"value": text}, f"{where}")
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            j.problem(f"{where}.effect", "must be NoExecute when tolerationSeconds is set")
        j.integer(toleration.get("tolerationSeconds"), f"{where}.tolerationSeconds")


_AFFINITY = frozenset({"nodeAffinity", "podAffinity", "podAntiAffinity"})
_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
_NODE_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
_POD_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def judge_affinity(value: Any, j: Judge, path: str) -> None:
    affinity = j.mapping(value, path)
    if not affinity:
        return
    j.only(affinity, _AFFINITY, path)
    node = j.mapping(affinity.get("nodeAffinity"), f"{path}.nodeAffinity")
    if node:
        _node_affinity(node, j, f"{path}.nodeAffinity")
    for name in ("podAffinity", "podAntiAffinity"):
        pods = j.mapping(affinity.get(name), f"{path}.{name}")
        if pods:
            _pod_affinity(pods, j, f"{path}.{name}")


def _node_affinity(node: dict[str, Any], j: Judge, path: str) -> None:
    j.only(node, frozenset({_REQUIRED, _PREFERRED}), path)
    required = j.mapping(node.get(_REQUIRED), f"{path}.{_REQUIRED}")
    if node.get(_REQUIRED) is not None and required is not None:
        where = f"{path}.{_REQUIRED}"
        j.only(required, frozenset({"nodeSelectorTerms"}), where)
        terms = j.items(required.get("nodeSelectorTerms"), f"{where}.nodeSelectorTerms") or []
        if not terms:
            j.problem(f"{where}.nodeSelectorTerms", "must have at least one node selector term")
        for i, term in enumerate(terms):
            _node_term(term, j, f"{where}.nodeSelectorTerms[{i}]")
    for i, item in enumerate(j.items(node.get(_PREFERRED), f"{path}.{_PREFERRED}") or ()):
        where = f"{path}.{_PREFERRED}[{i}]"
        _node_term(_weighted(item, "preference", j, where), j, f"{where}.preference")


def _weighted(value: Any, inner: str, j: Judge, path: str) -> Any:
    """A preference: ``weight`` 1-100; its term (None: none, or deferred)."""
    item = j.mapping(value, path)
    if item is None:
        return None
    j.only(item, frozenset({"weight", inner}), path)
    weight = j.integer(item.get("weight"), f"{path}.weight")
    if weight is not None and not 1 <= weight <= 100:
        j.problem(f"{path}.weight", f"must be in the range 1-100, is {weight}")
    return item.get(inner)


def _node_term(term: Any, j: Judge, path: str) -> None:
    term = j.mapping(term, path)
    if not term:
        return
    j.only(term, frozenset({"matchExpressions"}), path)
    for i, req in enumerate(
        j.items(term.get("matchExpressions"), f"{path}.matchExpressions") or ()
    ):
        _requirement(req, _NODE_OPERATORS, j, f"{path}.matchExpressions[{i}]")


def _requirement(req: Any, operators: tuple[str, ...], j: Judge, path: str) -> None:
    req = j.mapping(req, path)
    if not req:
        return
    j.only(req, frozenset({"key", "operator", "values"}), path)
    key = j.string(req.get("key"), f"{path}.key")
    if key is not None:
        j.problems += qualified_name_problems(f"{path}.key", key)
    operator = j.string(req.get("operator"), f"{path}.operator")
    values = j.items(req.get("values"), f"{path}.values")
    if operator is None or values is None:
        return
    if operator not in operators:
        j.defer(f"{path}.operator", f"operator {show(operator)} is judged by the server")
    elif operator in ("In", "NotIn") and not values:
        j.problem(f"{path}.values", f"must be specified when operator is {operator}")
    elif operator in ("Exists", "DoesNotExist") and values:
        j.problem(f"{path}.values", f"may not be specified when operator is {operator}")
    elif operator in ("Gt", "Lt") and not _one_integer(values):
        j.defer(f"{path}.values", f"the values of operator {operator}")
    if any(label_problems({"v": v}, path) for v in values if isinstance(v, str)):
        j.defer(f"{path}.values", "a value that is no label value is judged by the server")


def _one_integer(values: list[Any]) -> bool:
    return len(values) == 1 and isinstance(values[0], str) and values[0].isdigit()


def _pod_affinity(pods: dict[str, Any], j: Judge, path: str) -> None:
    j.only(pods, frozenset({_REQUIRED, _PREFERRED}), path)
    for i, term in enumerate(j.items(pods.get(_REQUIRED), f"{path}.{_REQUIRED}") or ()):
        _pod_term(term, j, f"{path}.{_REQUIRED}[{i}]")
    for i, item in enumerate(j.items(pods.get(_PREFERRED), f"{path}.{_PREFERRED}") or ()):
        where = f"{path}.{_PREFERRED}[{i}]"
        term = _weighted(item, "podAffinityTerm", j, where)
        if term is not None:
            _pod_term(term, j, f"{where}.podAffinityTerm")


def _pod_term(term: Any, j: Judge, path: str) -> None:
    term = j.mapping(term, path)
    if term is None:
        return
    j.only(term, frozenset({"labelSelector", "namespaces", "topologyKey"}), path)
    topology = j.string(term.get("topologyKey"), f"{path}.topologyKey")
    if not topology:
        j.problem(f"{path}.topologyKey", "required field is missing (it can not be empty)")
    else:
        j.problems += qualified_name_problems(f"{path}.topologyKey", topology)
    for i, name in enumerate(j.items(term.get("namespaces"), f"{path}.namespaces") or ()):
        if not isinstance(name, str) or len(name) > 63 or not DNS1123_LABEL.match(name):
            j.problem(f"{path}.namespaces[{i}]", f"{show(name)} is not a namespace name")
    selector = j.mapping(term.get("labelSelector"), f"{path}.labelSelector")
    if not selector:
        return
    where = f"{path}.labelSelector"
    j.only(selector, frozenset({"matchLabels", "matchExpressions"}), where)
    if isinstance(selector.get("matchLabels"), dict):
        j.problems += label_problems(selector["matchLabels"], f"{where}.matchLabels")
    for i, req in enumerate(
        j.items(selector.get("matchExpressions"), f"{where}.matchExpressions") or ()
    ):
        _requirement(req, _POD_OPERATORS, j, f"{where}.matchExpressions[{i}]")
