"""The rules a Service is held to beyond its schema (``ValidateService`` of the API server),
for the fields written here: ``type`` ClusterIP or ExternalName, ``ports`` (name, port,
protocol, targetPort), ``selector``, ``clusterIP`` unset or ``None``, ``sessionAffinity`` and
its config, ``externalName``, ``publishNotReadyAddresses``. Any other field (node ports, IP
families, external IPs, traffic policies...) sends the Service to the server.
"""

from __future__ import annotations

from typing import Any

from tether.schema.check import show
from tether.schema.names import label_problems
from tether.schema.rules import Judge, dns_label, dns_subdomain, port_name_problem, port_number

_SPEC = frozenset(
    {
        "type",
        "ports",
        "selector",
        "clusterIP",
        "sessionAffinity",
        "sessionAffinityConfig",
        "externalName",
        "publishNotReadyAddresses",
    }
)
_PORT = frozenset({"name", "port", "protocol", "targetPort"})
_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
_SOURCE_RANGES = "service.beta.kubernetes.io/load-balancer-source-ranges"
MAX_AFFINITY_TIMEOUT = 86400


def judge_service(obj: dict[str, Any], judge: Judge) -> None:
    spec = judge.mapping(obj.get("spec"), "spec")
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    if _SOURCE_RANGES in ((meta or {}).get("annotations") or {}):
        judge.defer(f"metadata.annotations[{_SOURCE_RANGES}]", "judged by the server")
    if spec is None:
        return
    judge.only(spec, _SPEC, "spec")
    kind = judge.one_of(spec.get("type"), _TYPES, "spec.type") or "ClusterIP"
    if kind in ("NodePort", "LoadBalancer"):
        judge.defer("spec.type", f"a {kind} Service is given node ports by the server")
    cluster_ip = judge.string(spec.get("clusterIP"), "spec.clusterIP")
    if cluster_ip and cluster_ip != "None":
        judge.defer("spec.clusterIP", "an address is judged by the server (its range, in use)")
    headless = cluster_ip == "None"
    _external_name(spec, kind, cluster_ip, judge)
    ports = judge.items(spec.get("ports"), "spec.ports")
    if ports is not None:
        if not ports and not headless and kind != "ExternalName":
            judge.problem("spec.ports", "required field is missing (a Service needs a port)")
        _ports(ports, judge)
    if isinstance(spec.get("selector"), dict):
        judge.problems += label_problems(spec["selector"], "spec.selector")
    _affinity(spec, judge)


def _external_name(spec: dict[str, Any], kind: str, cluster_ip: str | None, j: Judge) -> None:
    name = j.string(spec.get("externalName"), "spec.externalName")
    if kind != "ExternalName":
        if name:
            j.defer("spec.externalName", "set on a Service that is not of type ExternalName")
        return
    if cluster_ip is not None:
        j.defer("spec.clusterIP", "an ExternalName Service's clusterIP is judged by the server")
    cname = (name or "").removesuffix(".")
    if not cname:
        j.problem("spec.externalName", "required field is missing (type ExternalName)")
    elif not dns_subdomain(cname):
        j.problem("spec.externalName", f"{show(name)} is not an RFC 1123 subdomain")


def _ports(ports: list[Any], j: Judge) -> None:
    names: set[str] = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        if not isinstance(port, dict):
            j.defer(path, f"expected object, got {show(port)}")
            continue
        j.only(port, _PORT, path)
        name = j.string(port.get("name"), f"{path}.name")
        if name:
            dns_label(name, f"{path}.name", j)
            if name in names:
                j.problem(f"{path}.name", f"duplicate port name {show(name)}")
            names.add(name)
        elif len(ports) > 1:
            j.problem(f"{path}.name", "required field is missing (a Service with more ports)")
        number = j.integer(port.get("port"), f"{path}.port")
        if number is not None:
            port_number(number, f"{path}.port", j)
        protocol = j.one_of(port.get("protocol"), ("TCP", "UDP", "SCTP"), f"{path}.protocol")
        if protocol == "SCTP":
            j.defer(f"{path}.protocol", "SCTP is served only where the server enables it")
        _target_port(port.get("targetPort"), f"{path}.targetPort", j)


def _target_port(value: Any, path: str, j: Judge) -> None:
    if value is None or isinstance(value, bool):
        return  # unset (defaulted to the port), or the schema walk's problem
    if value in (0, ""):
        j.defer(path, "an empty targetPort is defaulted by the server")
    elif isinstance(value, int):
        port_number(value, path, j)
    elif isinstance(value, str):
        why = port_name_problem(value)
        if why:
            j.problem(path, f"{show(value)} is not a port name: {why}")
    else:
        j.defer(path, f"{show(value)} is not a plain integer or string")


def _affinity(spec: dict[str, Any], j: Judge) -> None:
    affinity = j.one_of(spec.get("sessionAffinity"), ("None", "ClientIP"), "spec.sessionAffinity")
    config = spec.get("sessionAffinityConfig")
    if config is None:
        return
    if affinity != "ClientIP":
        j.defer("spec.sessionAffinityConfig", "set without sessionAffinity ClientIP")
        return
    config = j.mapping(config, "spec.sessionAffinityConfig")
    if config is None:
        return
    j.only(config, frozenset({"clientIP"}), "spec.sessionAffinityConfig")
    client = j.mapping(config.get("clientIP"), "spec.sessionAffinityConfig.clientIP")
    if client is None:
        return
    path = "spec.sessionAffinityConfig.clientIP"
    j.only(client, frozenset({"timeoutSeconds"}), path)
    seconds = j.integer(client.get("timeoutSeconds"), f"{path}.timeoutSeconds")
    if seconds is not None and not 0 < seconds <= MAX_AFFINITY_TIMEOUT:
        j.problem(
            f"{path}.timeoutSeconds", f"must be between 1 and {MAX_AFFINITY_TIMEOUT}, is {seconds}"
        )
