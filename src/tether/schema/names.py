"""Object names, label and annotation syntax: what the API server enforces on every object's
metadata beyond its schema (the rules of ``k8s.io/apimachinery/pkg/util/validation``)."""

from __future__ import annotations

import re
from typing import Any

from tether.schema.check import show

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
TOTAL_ANNOTATION_BYTES = 256 * 1024

LABEL_NAMES = {("", "Namespace"), ("", "Service")}
"""Kinds whose names are DNS-1123 labels (no dots); a Service's is the stricter DNS-1035 label."""
PATH_SEGMENT_NAMES = frozenset(
    {
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    }
)
"""Kinds whose names only need to be a path segment (``system:aggregate-to-edit``)."""


SURE_NAMES = frozenset(
    {
        ("", k)
        for k in (
            "ConfigMap",
            "Secret",
            "ServiceAccount",
            "Namespace",
            "Service",
            "Pod",
            "PersistentVolumeClaim",
            "PersistentVolume",
            "Endpoints",
            "ReplicationController",
            "LimitRange",
            "ResourceQuota",
        )
    }
    | {("apps", k) for k in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")}
    | {("batch", "Job"), ("batch", "CronJob"), ("policy", "PodDisruptionBudget")}
    | {("networking.k8s.io", "Ingress"), ("networking.k8s.io", "NetworkPolicy")}
    | {("storage.k8s.io", "StorageClass"), ("scheduling.k8s.io", "PriorityClass")}
    | {("autoscaling", "HorizontalPodAutoscaler")}
    | {("apiextensions.k8s.io", "CustomResourceDefinition")}
    | PATH_SEGMENT_NAMES
)
"""Built-in kinds whose name rule is known here for certain; another built-in kind's name that
breaks the DNS-1123 subdomain rule is left to the server rather than called invalid."""


def name_problems(group: str, kind: str, name: Any) -> list[str]:
    """What is wrong with ``metadata.name`` for an object of this kind (empty: nothing)."""
    if not isinstance(name, str) or not name:
        return ["metadata.name: required field is missing"]
    if (group, kind) in PATH_SEGMENT_NAMES:
        return path_segment_problems("metadata.name", name)
    if (group, kind) == ("", "Service"):
        return _matches("metadata.name", name, DNS1035_LABEL, 63, "an RFC 1035 label")
    if (group, kind) in LABEL_NAMES:
        return _matches("metadata.name", name, DNS1123_LABEL, 63, "an RFC 1123 label")
    return _matches("metadata.name", name, DNS1123_SUBDOMAIN, 253, "an RFC 1123 subdomain")


def path_segment_problems(path: str, name: str) -> list[str]:
    if name in (".", ".."):
        return [f"{path}: {name!r} may not be a name"]
    for bad in ("/", "%"):
        if bad in name:
            return [f"{path}: {name!r} may not contain {bad!r}"]
    return []


def namespace_problems(namespace: Any) -> list[str]:
    if not isinstance(namespace, str):
        return [f"metadata.namespace: expected string, got {show(namespace)}"]
    return _matches("metadata.namespace", namespace, DNS1123_LABEL, 63, "an RFC 1123 label")


def label_problems(labels: Any, path: str = "metadata.labels") -> list[str]:
    """Label keys are qualified names, values at most 63 characters of ``[-A-Za-z0-9_.]``
    starting and ending alphanumeric (or empty)."""
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [f"{path}: expected object, got {show(labels)}"]
    out: list[str] = []
    for key, value in labels.items():
        out += qualified_name_problems(f"{path}[{key}]", str(key))
        if value is None:
            continue  # an apply treats null as unset
        if not isinstance(value, str):
            out.append(f"{path}[{key}]: expected string, got {show(value)}")
        elif len(value) > 63 or not _LABEL_VALUE.match(value):
            out.append(
                f"{path}[{key}]: {value!r} is not a valid label value (at most 63 characters,"
                " alphanumeric, '-', '_' or '.', starting and ending alphanumeric)"
            )
    return out


def annotation_problems(annotations: Any, path: str = "metadata.annotations") -> list[str]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [f"{path}: expected object, got {show(annotations)}"]
    out: list[str] = []
    total = 0
    for key, value in annotations.items():
        out += qualified_name_problems(f"{path}[{key}]", str(key))
        if value is None:
            continue
        if not isinstance(value, str):
            out.append(f"{path}[{key}]: expected string, got {show(value)}")
            continue
        total += len(str(key)) + len(value)
    if total > TOTAL_ANNOTATION_BYTES:
        out.append(f"{path}: may hold at most {TOTAL_ANNOTATION_BYTES} bytes, holds {total}")
    return out


def qualified_name_problems(path: str, key: str) -> list[str]:
    """``[prefix/]name``: prefix a DNS-1123 subdomain, name at most 63 characters."""
    prefix, _, name = key.rpartition("/")
    if "/" in prefix:
        return [f"{path}: {key!r} is not a qualified name (at most one '/')"]
    out: list[str] = []
    if "/" in key:
        if not prefix:
            out.append(f"{path}: {key!r} has an empty prefix before '/'")
        else:
            out += _matches(path, prefix, DNS1123_SUBDOMAIN, 253, "a prefix (RFC 1123 subdomain)")
    if not name or len(name) > 63 or not _NAME_PART.match(name):
        out.append(
            f"{path}: {key!r} is not a qualified name (its name part: at most 63 characters,"
            " alphanumeric, '-', '_' or '.', starting and ending alphanumeric)"
        )
    return out


def _matches(path: str, value: str, rule: re.Pattern[str], most: int, what: str) -> list[str]:
    if len(value) > most:
        return [f"{path}: {value!r} is longer than {most} characters"]
    if not rule.match(value):
        return [f"{path}: {value!r} is not {what} (lower-case alphanumeric, '-'{_dots(rule)})"]
    return []


def _dots(rule: re.Pattern[str]) -> str:
    return " or '.'" if rule is DNS1123_SUBDOMAIN else ""
