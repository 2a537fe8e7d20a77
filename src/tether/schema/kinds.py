"""Which kinds the schema can vouch for, and the rules the server enforces on them that their
schema does not publish (ConfigMap and Secret keys and sizes, workload selectors, and the
per-kind rules of Services and workloads in :mod:`tether.schema.service` and
:mod:`tether.schema.workloads`).

A built-in kind is judged by Go code far beyond its published schema, so a built-in kind is
vouched for only where its rules are written here: ConfigMap, Opaque Secret, ServiceAccount and
Namespace wholly; Service, Deployment, StatefulSet, DaemonSet and Job for an allow-list of
fields (any other field set sends the object to the server). Every other built-in kind is still
*checked* (its problems are found) but left to a server dry-run. A custom resource's validation
is its schema, so every one is vouchable.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from tether.schema.names import label_problems
from tether.schema.rules import Judge
from tether.schema.service import judge_service
from tether.schema.workloads import JUDGES

VOUCHED_BUILTINS = frozenset(
    {("", "ConfigMap"), ("", "Secret"), ("", "ServiceAccount"), ("", "Namespace")}
)
NEVER_VOUCHED_GROUPS = {
    "apiextensions.k8s.io": "a CustomResourceDefinition is judged by rules outside its schema",
    "apiregistration.k8s.io": "an APIService is judged by rules outside its schema",
    "admissionregistration.k8s.io": "admission configuration is judged by rules outside its schema",
    "rbac.authorization.k8s.io": "RBAC objects pass the server's privilege-escalation check",
    "authorization.k8s.io": "access reviews are answered by the server",
    "authentication.k8s.io": "token reviews are answered by the server",
    "certificates.k8s.io": "certificate requests are judged by the server's signers",
}
RULED_BUILTINS = frozenset(
    {("", "Service"), ("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet")}
    | {("batch", "Job")}
)
"""Built-in kinds vouched for when every field they set is one whose rules are written here."""
MAX_DATA_BYTES = 1024 * 1024
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
WORKLOADS = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"})


def never_vouched(group: str, kind: str) -> str:
    """Why objects of this kind always go to the server (empty: they need not)."""
    return NEVER_VOUCHED_GROUPS.get(group, "")


def builtin_judgement(group: str, kind: str, obj: dict[str, Any]) -> tuple[list[str], str]:
    """A built-in object's problems beyond its schema (only those found for certain), and why
    it goes to the server although no problem was found (empty: it may be vouched for)."""
    judge = Judge()
    if (group, kind) in (("", "ConfigMap"), ("", "Secret")):
        judge.problems += _data_problems(kind, obj)
    if group == "apps" and kind in WORKLOADS:
        judge.problems += _selector_problems(obj)
    rules = judge_service if (group, kind) == ("", "Service") else JUDGES.get((group, kind))
    if rules is not None and not str(obj.get("apiVersion") or "").endswith("v1"):
        judge.defer("apiVersion", f"the rules written here are those of {kind} v1")
    elif rules is not None:
        rules(obj, judge)
    why = judge.deferred[0] if judge.deferred else _whole_kind_defer(group, kind, obj)
    return judge.problems, why


def _whole_kind_defer(group: str, kind: str, obj: dict[str, Any]) -> str:
    if (group, kind) in RULED_BUILTINS:
        return ""
    if (group, kind) not in VOUCHED_BUILTINS:
        return f"the server validates {kind} by rules its published schema does not hold"
    if kind == "Secret" and str(obj.get("type") or "Opaque") != "Opaque":
        return f"a Secret of type {obj.get('type')} is judged by the server's type rules"
    if kind == "Namespace" and (obj.get("spec") or {}).get("finalizers"):
        return "a Namespace's finalizers are judged by the server"
    return ""


def _data_problems(kind: str, obj: dict[str, Any]) -> list[str]:
    out: list[str] = []
    size = 0
    fields = ("data", "binaryData") if kind == "ConfigMap" else ("data", "stringData")
    keys: dict[str, str] = {}
    for name in fields:
        block = obj.get(name)
        if not isinstance(block, dict):
            continue  # a wrong type is the schema walk's problem
        for key, value in block.items():
            if len(key) > 253 or not _CONFIG_KEY.match(key) or key == "." or key.startswith(".."):
                out.append(
                    f"{name}[{key}]: not a valid key (at most 253 characters of"
                    " alphanumerics, '-', '_' or '.'; not '.', not starting '..')"
                )
            if kind == "ConfigMap" and key in keys and keys[key] != name:
                out.append(f"{name}[{key}]: the key is also in {keys[key]}")
            keys.setdefault(key, name)
            size += len(key) + _value_size(name, kind, value)
    if size > MAX_DATA_BYTES:
        out.append(f"{kind} data: may hold at most {MAX_DATA_BYTES} bytes, holds about {size}")
    return out


def _value_size(field: str, kind: str, value: Any) -> int:
    if not isinstance(value, str):
        return 0
    if field == "binaryData" or (kind == "Secret" and field == "data"):
        try:
            return len(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            return 0  # the schema walk reports bad base64
    return len(value.encode())


def _selector_problems(obj: dict[str, Any]) -> list[str]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []
    selector = spec.get("selector")
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    meta = template.get("metadata") if isinstance(template, dict) else None
    labels = (meta or {}).get("labels") if isinstance(meta, dict) else None
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        return ["spec.selector: required field is missing (a workload must select its pods)"]
    wrong = label_problems(selector.get("matchLabels"), "spec.selector.matchLabels")
    if wrong:
        return wrong
    if selector.get("matchExpressions"):
        return []  # expressions are matched by the server
    if labels is None:
        labels = {}  # no labels: a selector cannot select the pods
    if not isinstance(labels, dict):
        return []  # the schema walk reports it
    wanted = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in wanted.items()):
        return [
            "spec.template.metadata.labels: the selector does not select the template's labels"
            f" (selector {_pairs(wanted)}, labels {_pairs(labels)})"
        ]
    return []


def _pairs(labels: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"
