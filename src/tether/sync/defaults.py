"""Defaults the API server needs in the request itself for server-side apply to work.

Server-side apply merges lists such as Service ports and container ports by the key
(port, protocol). Before Kubernetes 1.21 the server rejected an apply whose list items omit
``protocol`` ("associative list with keys has an element that omits key field"), although
it would default it to TCP. Filling in the server's own default keeps such manifests working
on every version and changes nothing on newer servers (Flux does the same).
"""

from __future__ import annotations

from typing import Any

from tether.model import Obj

_POD_TEMPLATE_KINDS = {
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "ReplicationController",
}


def set_native_defaults(obj: Obj) -> Obj:
    """Returns ``obj`` (modified in place) with ``protocol: TCP`` where the server needs it."""
    kind = obj.get("kind")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return obj
    if kind == "Service":
        _default_protocol(spec.get("ports"))
    elif kind == "Pod":
        _pod_spec(spec)
    elif kind in _POD_TEMPLATE_KINDS:
        _pod_spec((spec.get("template") or {}).get("spec"))
    elif kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        _pod_spec((job.get("template") or {}).get("spec"))
    return obj


def _pod_spec(pod: Any) -> None:
    if not isinstance(pod, dict):
        return
    for field in ("containers", "initContainers", "ephemeralContainers"):
        for c in pod.get(field) or []:
            if isinstance(c, dict):
                _default_protocol(c.get("ports"))


def _default_protocol(ports: Any) -> None:
    if not isinstance(ports, list):
        return
    for p in ports:
        if isinstance(p, dict) and "protocol" not in p:
            p["protocol"] = "TCP"
