"""The rules a pod template is held to beyond its schema (``ValidatePodTemplateSpec`` and
``ValidatePodSpec`` of the API server), for a common subset: containers and init containers
(name, image, imagePullPolicy, command, args, workingDir, ports, env, envFrom, resources,
volumeMounts, probes), volumes from a ConfigMap, a Secret or an emptyDir, and a few pod fields.
Anything else in the template sends the object to the server.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from tether.schema.check import show
from tether.schema.names import annotation_problems, label_problems
from tether.schema.quantity import Unsure, parse_quantity
from tether.schema.rules import Judge, dns_label, dns_subdomain, port_name_problem, port_number
from tether.schema.scheduling import judge_affinity, judge_tolerations
from tether.schema.security import judge_container_security, judge_pod_security

_POD = frozenset(
    {
        "containers",
        "initContainers",
        "volumes",
        "restartPolicy",
        "terminationGracePeriodSeconds",
        "serviceAccountName",
        "nodeSelector",
        "imagePullSecrets",
        "dnsPolicy",
        "automountServiceAccountToken",
        "enableServiceLinks",
        "securityContext",
        "tolerations",
        "affinity",
    }
)
_CONTAINER = frozenset(
    {
        "name",
        "image",
        "imagePullPolicy",
        "command",
        "args",
        "workingDir",
        "ports",
        "env",
        "envFrom",
        "resources",
        "volumeMounts",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "securityContext",
    }
)
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_PROBE = frozenset(
    {
        "exec",
        "httpGet",
        "tcpSocket",
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    }
)
_HANDLERS = ("exec", "httpGet", "tcpSocket")
_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_FIELD_PATHS = frozenset(
    {
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.serviceAccountName",
        "status.hostIP",
        "status.podIP",
    }
)
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_MAX_MODE = 0o777


def judge_template(
    template: Any, judge: Judge, restart: tuple[str, ...], path: str = "spec.template"
) -> None:
    """A workload's pod template; ``restart``: the restart policies the workload allows (the
    first is the default when unset)."""
    template = judge.mapping(template, path)
    if template is None:
        return
    judge.only(template, frozenset({"metadata", "spec"}), path)
    meta = judge.mapping(template.get("metadata"), f"{path}.metadata")
    if meta is not None:
        judge.only(meta, frozenset({"labels", "annotations"}), f"{path}.metadata")
        judge.problems += label_problems(meta.get("labels"), f"{path}.metadata.labels")
        annotations = meta.get("annotations")
        judge.problems += annotation_problems(annotations, f"{path}.metadata.annotations")
        for key in annotations if isinstance(annotations, dict) else ():
            if _interpreted(str(key)):
                judge.defer(f"{path}.metadata.annotations[{key}]", "judged by the server")
    spec = judge.mapping(template.get("spec"), f"{path}.spec")
    if spec is not None:
        _pod_spec(spec, judge, restart, f"{path}.spec")


def _interpreted(key: str) -> bool:
    """Whether the server may read a template annotation (seccomp, AppArmor, tolerations...);
    kubectl's own (``kubectl.kubernetes.io/restartedAt``) it does not."""
    if key.startswith("kubectl.kubernetes.io/"):
        return False
    return "kubernetes.io/" in key or "k8s.io/" in key


def _pod_spec(spec: dict[str, Any], j: Judge, restart: tuple[str, ...], path: str) -> None:
    j.only(spec, _POD, path)
    policy = j.string(spec.get("restartPolicy"), f"{path}.restartPolicy") or "Always"
    if policy not in restart:
        j.problem(f"{path}.restartPolicy", f"{show(policy)} is not one of {', '.join(restart)}")
    grace = j.integer(
        spec.get("terminationGracePeriodSeconds"), f"{path}.terminationGracePeriodSeconds"
    )
    if grace is not None and grace < 0:
        j.defer(f"{path}.terminationGracePeriodSeconds", "a negative value: servers differ")
    judge_pod_security(spec.get("securityContext"), j, f"{path}.securityContext")
    judge_tolerations(spec.get("tolerations"), j, f"{path}.tolerations")
    judge_affinity(spec.get("affinity"), j, f"{path}.affinity")
    _pod_fields(spec, j, path)
    volumes = _volumes(j.items(spec.get("volumes"), f"{path}.volumes") or [], j, path)
    _containers(spec, j, path, volumes)


def _pod_fields(spec: dict[str, Any], j: Judge, path: str) -> None:
    """The pod's service account, node selector, DNS policy and image pull secrets."""
    account = j.string(spec.get("serviceAccountName"), f"{path}.serviceAccountName")
    if account and not dns_subdomain(account):
        j.problem(f"{path}.serviceAccountName", f"{show(account)} is not an RFC 1123 subdomain")
    if isinstance(spec.get("nodeSelector"), dict):
        j.problems += label_problems(spec["nodeSelector"], f"{path}.nodeSelector")
    dns = j.one_of(
        spec.get("dnsPolicy"),
        ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"),
        f"{path}.dnsPolicy",
    )
    if dns == "None":
        j.defer(f"{path}.dnsPolicy", "dnsPolicy None is judged with dnsConfig by the server")
    for i, secret in enumerate(
        j.items(spec.get("imagePullSecrets"), f"{path}.imagePullSecrets") or ()
    ):
        if not isinstance(secret, dict) or not secret.get("name") or len(secret) != 1:
            j.defer(f"{path}.imagePullSecrets[{i}]", "only a name is vouched for")


def _containers(spec: dict[str, Any], j: Judge, path: str, volumes: set[str]) -> None:
    names: set[str] = set()
    containers = j.items(spec.get("containers"), f"{path}.containers")
    if containers is not None and not containers:
        j.problem(f"{path}.containers", "required field is missing (at least one container)")
    for field in ("initContainers", "containers"):
        for i, ctr in enumerate(j.items(spec.get(field), f"{path}.{field}") or ()):
            where = f"{path}.{field}[{i}]"
            if not isinstance(ctr, dict):
                j.defer(where, f"expected object, got {show(ctr)}")
                continue
            _container(ctr, j, where, volumes, init=field == "initContainers")
            name = ctr.get("name")
            if isinstance(name, str) and name in names:
                j.problem(f"{where}.name", f"duplicate container name {show(name)}")
            names.add(str(name))


def _volumes(volumes: list[Any], j: Judge, path: str) -> set[str]:
    """Checks the volumes; their names."""
    names: set[str] = set()
    for i, volume in enumerate(volumes):
        where = f"{path}.volumes[{i}]"
        if not isinstance(volume, dict):
            j.defer(where, f"expected object, got {show(volume)}")
            continue
        name = j.string(volume.get("name"), f"{where}.name")
        if name is not None:
            dns_label(name, f"{where}.name", j)
            if name in names:
                j.problem(f"{where}.name", f"duplicate volume name {show(name)}")
            names.add(name)
        sources = [k for k, v in volume.items() if k != "name" and v is not None]
        if len(sources) > 1:
            j.problem(where, f"may not specify more than 1 volume type ({', '.join(sources)})")
        elif sources == ["configMap"]:
            _projection(volume["configMap"], "name", j, f"{where}.configMap")
        elif sources == ["secret"]:
            _projection(volume["secret"], "secretName", j, f"{where}.secret")
        elif sources == ["emptyDir"]:
            _empty_dir(volume["emptyDir"], j, f"{where}.emptyDir")
        else:
            j.defer(where, "a volume type whose rules are left to the server")
    return names


def _projection(source: Any, name_field: str, j: Judge, path: str) -> None:
    source = j.mapping(source, path)
    if source is None:
        return
    j.only(source, frozenset({name_field, "items", "defaultMode", "optional"}), path)
    name = j.string(source.get(name_field), f"{path}.{name_field}")
    if not name or not dns_subdomain(name):
        j.defer(f"{path}.{name_field}", "an empty or unusual name is judged by the server")
    mode = j.integer(source.get("defaultMode"), f"{path}.defaultMode")
    if mode is not None and not 0 <= mode <= _MAX_MODE:
        j.problem(f"{path}.defaultMode", f"must be a file mode between 0 and 0777, is {mode}")
    for i, item in enumerate(j.items(source.get("items"), f"{path}.items") or ()):
        where = f"{path}.items[{i}]"
        if not isinstance(item, dict) or set(item) - {"key", "path"}:
            j.defer(where, "only key and path are vouched for")
            continue
        key, file = item.get("key"), item.get("path")
        if not isinstance(key, str) or not _CONFIG_KEY.match(key) or len(key) > 253:
            j.defer(f"{where}.key", "an empty or unusual key is judged by the server")
        if not isinstance(file, str) or not _plain_relative(file):
            j.defer(f"{where}.path", "only a plain relative path is vouched for")


def _plain_relative(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and ".." not in parts and "" not in parts


def _empty_dir(source: Any, j: Judge, path: str) -> None:
    source = j.mapping(source, path)
    if source is None:
        return
    j.only(source, frozenset({"medium", "sizeLimit"}), path)
    if source.get("medium") not in (None, "", "Memory"):
        j.defer(f"{path}.medium", "a medium judged by the server")
    if source.get("sizeLimit") is not None:
        _quantity(source["sizeLimit"], j, f"{path}.sizeLimit")


def _quantity(value: Any, j: Judge, path: str) -> Decimal | None:
    try:
        amount = parse_quantity(value)
    except Unsure as e:
        j.defer(path, str(e))
        return None
    except ValueError as e:
        j.problem(path, str(e))
        return None
    if amount < 0:
        j.problem(path, f"must be greater than or equal to 0, is {value}")
    return amount


def _container(ctr: dict[str, Any], j: Judge, path: str, volumes: set[str], init: bool) -> None:
    j.only(ctr, _CONTAINER, path)
    name = j.string(ctr.get("name"), f"{path}.name")
    if name is not None:
        dns_label(name, f"{path}.name", j)
    image = j.string(ctr.get("image"), f"{path}.image")
    if not image or image != image.strip():
        j.defer(f"{path}.image", "an empty or padded image is judged by the server")
    j.one_of(
        ctr.get("imagePullPolicy"), ("Always", "IfNotPresent", "Never"), f"{path}.imagePullPolicy"
    )
    j.string(ctr.get("workingDir"), f"{path}.workingDir")
    _container_ports(j.items(ctr.get("ports"), f"{path}.ports") or [], j, f"{path}.ports")
    _env(j.items(ctr.get("env"), f"{path}.env") or [], j, f"{path}.env")
    _env_from(j.items(ctr.get("envFrom"), f"{path}.envFrom") or [], j, f"{path}.envFrom")
    _resources(ctr.get("resources"), j, f"{path}.resources")
    judge_container_security(ctr.get("securityContext"), j, f"{path}.securityContext")
    _mounts(j.items(ctr.get("volumeMounts"), f"{path}.volumeMounts") or [], volumes, j, path)
    for probe in _PROBES:
        if ctr.get(probe) is not None:
            if init:
                j.defer(f"{path}.{probe}", "an init container's probes are judged by the server")
            else:
                _probe(ctr[probe], probe, j, f"{path}.{probe}")


def _container_ports(ports: list[Any], j: Judge, path: str) -> None:
    names: set[str] = set()
    for i, port in enumerate(ports):
        where = f"{path}[{i}]"
        if not isinstance(port, dict):
            j.defer(where, f"expected object, got {show(port)}")
            continue
        j.only(port, frozenset({"name", "containerPort", "protocol"}), where)
        number = j.integer(port.get("containerPort"), f"{where}.containerPort")
        if number is not None:
            port_number(number, f"{where}.containerPort", j)
        name = j.string(port.get("name"), f"{where}.name")
        if name:
            why = port_name_problem(name)
            if why:
                j.problem(f"{where}.name", f"{show(name)} is not a port name: {why}")
            elif name in names:
                j.problem(f"{where}.name", f"duplicate port name {show(name)}")
            names.add(name)
        protocol = j.one_of(port.get("protocol"), ("TCP", "UDP", "SCTP"), f"{where}.protocol")
        if protocol == "SCTP":
            j.defer(f"{where}.protocol", "SCTP is served only where the server enables it")


def _env(env: list[Any], j: Judge, path: str) -> None:
    for i, var in enumerate(env):
        where = f"{path}[{i}]"
        if not isinstance(var, dict):
            j.defer(where, f"expected object, got {show(var)}")
            continue
        j.only(var, frozenset({"name", "value", "valueFrom"}), where)
        name = var.get("name")
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            j.defer(f"{where}.name", "an empty or unusual variable name: servers differ")
        if var.get("valueFrom") is not None:
            if var.get("value"):
                j.defer(where, "both value and valueFrom")
            _value_from(var["valueFrom"], j, f"{where}.valueFrom")


def _value_from(source: Any, j: Judge, path: str) -> None:
    source = j.mapping(source, path)
    if source is None:
        return
    kinds = [k for k, v in source.items() if v is not None]
    if len(kinds) != 1 or kinds[0] not in ("fieldRef", "configMapKeyRef", "secretKeyRef"):
        j.defer(path, "only one fieldRef, configMapKeyRef or secretKeyRef is vouched for")
        return
    ref = j.mapping(source[kinds[0]], f"{path}.{kinds[0]}")
    if ref is None:
        return
    if kinds[0] == "fieldRef":
        if set(ref) - {"fieldPath", "apiVersion"} or ref.get("apiVersion") not in (None, "v1"):
            j.defer(f"{path}.fieldRef", "only a fieldPath of v1 is vouched for")
        elif not isinstance(ref.get("fieldPath"), str) or ref["fieldPath"] not in _FIELD_PATHS:
            j.defer(f"{path}.fieldRef.fieldPath", "a field path judged by the server")
        return
    _key_ref(ref, j, f"{path}.{kinds[0]}")


def _key_ref(ref: dict[str, Any], j: Judge, path: str) -> None:
    j.only(ref, frozenset({"name", "key", "optional"}), path)
    name, key = ref.get("name"), ref.get("key")
    if not isinstance(name, str) or not dns_subdomain(name):
        j.defer(f"{path}.name", "an empty or unusual name is judged by the server")
    if not isinstance(key, str) or not _CONFIG_KEY.match(key) or len(key) > 253:
        j.defer(f"{path}.key", "an empty or unusual key is judged by the server")


def _env_from(sources: list[Any], j: Judge, path: str) -> None:
    for i, source in enumerate(sources):
        where = f"{path}[{i}]"
        kinds = list(source) if isinstance(source, dict) else []
        if len(kinds) != 1 or kinds[0] not in ("configMapRef", "secretRef"):
            j.defer(where, "only one configMapRef or secretRef is vouched for")
            continue
        ref = source[kinds[0]]
        if not isinstance(ref, dict) or set(ref) - {"name", "optional"}:
            j.defer(f"{where}.{kinds[0]}", "only a name and optional are vouched for")
        elif not isinstance(ref.get("name"), str) or not dns_subdomain(ref["name"]):
            j.defer(f"{where}.{kinds[0]}.name", "an empty or unusual name")


def _resources(value: Any, j: Judge, path: str) -> None:
    resources = j.mapping(value, path)
    if resources is None:
        return
    j.only(resources, frozenset({"limits", "requests"}), path)
    amounts: dict[str, dict[str, Decimal]] = {}
    for field in ("limits", "requests"):
        block = j.mapping(resources.get(field), f"{path}.{field}") or {}
        for name, quantity in block.items():
            where = f"{path}.{field}[{name}]"
            if name not in _RESOURCES:
                j.defer(where, "a resource whose rules are left to the server")
            elif quantity is not None:
                amount = _quantity(quantity, j, where)
                if amount is not None:
                    amounts.setdefault(name, {})[field] = amount
    for name, pair in amounts.items():
        if "limits" in pair and "requests" in pair and pair["requests"] > pair["limits"]:
            j.problem(
                f"{path}.requests[{name}]",
                f"must be less than or equal to the {name} limit",
            )


def _mounts(mounts: list[Any], volumes: set[str], j: Judge, path: str) -> None:
    seen: set[str] = set()
    for i, mount in enumerate(mounts):
        where = f"{path}.volumeMounts[{i}]"
        if not isinstance(mount, dict):
            j.defer(where, f"expected object, got {show(mount)}")
            continue
        j.only(mount, frozenset({"name", "mountPath", "readOnly", "subPath"}), where)
        name, target = mount.get("name"), mount.get("mountPath")
        if isinstance(name, str) and name not in volumes:
            j.problem(f"{where}.name", f"no volume named {show(name)} in the pod")
        if not isinstance(target, str) or not target.startswith("/") or ":" in target:
            j.defer(f"{where}.mountPath", "only an absolute path without ':' is vouched for")
        elif target in seen:
            j.problem(f"{where}.mountPath", f"{show(target)} is mounted twice")
        else:
            seen.add(target)
        sub = mount.get("subPath")
        if sub not in (None, "") and not (isinstance(sub, str) and _plain_relative(sub)):
            j.defer(f"{where}.subPath", "only a plain relative path is vouched for")


def _probe(probe: Any, which: str, j: Judge, path: str) -> None:
    probe = j.mapping(probe, path)
    if probe is None:
        return
    j.only(probe, _PROBE, path)
    handlers = [h for h in _HANDLERS if probe.get(h) is not None]
    others = [k for k, v in probe.items() if k not in _PROBE and v is not None]
    if not handlers and not others:  # another key may be a handler of a newer server
        j.problem(path, "must specify a handler type (exec, httpGet or tcpSocket)")
    elif len(handlers) > 1:
        j.problem(path, f"may not specify more than 1 handler type ({', '.join(handlers)})")
    elif handlers == ["exec"]:
        _exec(probe["exec"], j, f"{path}.exec")
    elif handlers:
        _socket(probe[handlers[0]], handlers[0], j, f"{path}.{handlers[0]}")
    for field in _PROBE - set(_HANDLERS):
        j.non_negative(probe.get(field), f"{path}.{field}")
    success = j.integer(probe.get("successThreshold"), f"{path}.successThreshold")
    if which != "readinessProbe" and success not in (None, 0, 1):
        j.problem(f"{path}.successThreshold", f"must be 1, is {success}")


def _exec(handler: Any, j: Judge, path: str) -> None:
    handler = j.mapping(handler, path)
    if handler is not None:
        j.only(handler, frozenset({"command"}), path)
        if not handler.get("command"):
            j.problem(f"{path}.command", "required field is missing (the command to run)")


def _socket(handler: Any, kind: str, j: Judge, path: str) -> None:
    handler = j.mapping(handler, path)
    if handler is None:
        return
    allowed = {"port", "path", "scheme"} if kind == "httpGet" else {"port"}
    j.only(handler, frozenset(allowed), path)
    port = handler.get("port")
    if port is None or port == "" or port == 0:
        j.defer(f"{path}.port", "a missing or empty port is judged by the server")
    elif isinstance(port, int) and not isinstance(port, bool):
        port_number(port, f"{path}.port", j)
    elif isinstance(port, str):
        why = port_name_problem(port)
        if why:
            j.problem(f"{path}.port", f"{show(port)} is not a port name: {why}")
    if kind == "httpGet":
        j.one_of(handler.get("scheme"), ("HTTP", "HTTPS"), f"{path}.scheme")
