"""The per-kind rules as pure functions: quantities by the Kubernetes grammar, port names,
percentages, and the allow-lists of Services and workloads (a field outside them defers)."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from tether.schema.kinds import builtin_judgement
from tether.schema.quantity import Unsure, parse_quantity
from tether.schema.rules import Judge, int_or_percent, port_name_problem

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", "0.5"),
        ("1", "1"),
        ("1Ki", "1024"),
        ("1.5Gi", str(3 * 2**29)),
        ("128Mi", str(128 * 2**20)),
        ("1G", "1000000000"),
        ("2e3", "2000"),
        ("1E", "1000000000000000000"),
        ("1E-3", "0.001"),
        (".5", "0.5"),
        ("+1", "1"),
        ("-1", "-1"),
        ("100u", "0.0001"),
        ("1n", "0.000000001"),
    ],
)
def test_quantities_are_read_exactly(text: str, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize("text", ["1K", "1e", "", "abc", "1 Gi", "1Gb", "1.2.3", "0x10", "1e1.5"])
def test_quantities_outside_the_grammar_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a quantity"):
        parse_quantity(text)


@pytest.mark.parametrize("value", ["0.1n", "1e100", 1, 1.5, "9" * 31])
def test_quantities_the_server_rounds_or_types_differently_are_left_to_it(value: Any) -> None:
    with pytest.raises(Unsure):
        parse_quantity(value)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("http", True),
        ("web-2", True),
        ("a" * 15, True),
        ("a" * 16, False),
        ("8080", False),
        ("HTTP", False),
        ("-http", False),
        ("http-", False),
        ("a--b", False),
        ("a.b", False),
        ("", False),
    ],
)
def test_port_names_are_iana_service_names(name: str, ok: bool) -> None:
    assert (port_name_problem(name) == "") is ok


def test_int_or_percent() -> None:
    judge = Judge()
    assert int_or_percent("25%", "p", judge) == 25
    assert int_or_percent(3, "p", judge) == 3
    assert judge.problems == []
    assert int_or_percent("5 percent", "p", judge) is None
    assert int_or_percent(-1, "p", judge) == -1
    assert len(judge.problems) == 2
    assert int_or_percent(1.5, "p", judge) is None and judge.deferred


def service(**spec: Any) -> dict[str, Any]:
    ports = [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]
    return {"apiVersion": "v1", "metadata": {"name": "web"}, "spec": {"ports": ports, **spec}}


def deployment(**pod: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}], **pod},
            },
        },
    }


def test_a_service_inside_the_allow_list_is_vouched_for() -> None:
    assert builtin_judgement("", "Service", service()) == ([], "")


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ({"type": "NodePort"}, "spec.type: a NodePort Service is given node ports"),
        ({"clusterIP": "10.0.0.1"}, "spec.clusterIP: an address is judged by the server"),
        ({"ipFamilyPolicy": "SingleStack"}, "spec.ipFamilyPolicy: a field whose rules"),
        ({"loadBalancerIP": "1.2.3.4"}, "spec.loadBalancerIP: a field whose rules"),
    ],
)
def test_service_fields_outside_the_allow_list_defer(spec: dict[str, Any], why: str) -> None:
    problems, reason = builtin_judgement("", "Service", service(**spec))
    assert problems == [] and reason.startswith(why), reason


def test_service_problems_are_named() -> None:
    obj = service()
    obj["spec"]["ports"].append({"port": 80, "protocol": "TCP", "targetPort": "Web"})
    problems, _ = builtin_judgement("", "Service", obj)
    assert problems == [
        "spec.ports[1].name: required field is missing (a Service with more ports)",
        'spec.ports[1].targetPort: string "Web" is not a port name:'
        " may hold only lower-case alphanumerics and '-'",
    ]


def test_a_deployment_inside_the_allow_list_is_vouched_for() -> None:
    assert builtin_judgement("apps", "Deployment", deployment()) == ([], "")


@pytest.mark.parametrize(
    ("pod", "why"),
    [
        ({"hostNetwork": True}, "spec.template.spec.hostNetwork: a field whose rules"),
        (
            {"containers": [{"name": "web", "image": "x", "lifecycle": {}}]},
            "spec.template.spec.containers[0].lifecycle: a field whose rules",
        ),
        (
            {"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]},
            "spec.template.spec.volumes[0]: a volume type",
        ),
        (
            {"containers": [{"name": "web", "image": "x", "resources": {"limits": {"cpu": 2}}}]},
            "spec.template.spec.containers[0].resources.limits[cpu]: 2: a quantity written",
        ),
    ],
)
def test_pod_fields_outside_the_allow_list_defer(pod: dict[str, Any], why: str) -> None:
    problems, reason = builtin_judgement("apps", "Deployment", deployment(**pod))
    assert problems == [] and reason.startswith(why), reason


def test_requests_above_limits_and_unknown_mounts_are_problems() -> None:
    ctr = {
        "name": "web",
        "image": "x",
        "resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "1000Mi"}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    problems, _ = builtin_judgement("apps", "Deployment", deployment(containers=[ctr]))
    assert problems == [
        "spec.template.spec.containers[0].resources.requests[memory]:"
        " must be less than or equal to the memory limit",
        'spec.template.spec.containers[0].volumeMounts[0].name: no volume named string "data"'
        " in the pod",
    ]


def test_a_template_without_labels_is_not_selected() -> None:
    obj = deployment()
    del obj["spec"]["template"]["metadata"]
    problems, _ = builtin_judgement("apps", "Deployment", obj)
    assert problems[0].startswith("spec.template.metadata.labels: the selector does not select")


def test_a_job_must_not_restart_always() -> None:
    obj = deployment()
    del obj["spec"]["selector"]
    problems, _ = builtin_judgement("batch", "Job", obj)
    assert problems == [
        'spec.template.spec.restartPolicy: string "Always" is not one of OnFailure, Never'
    ]
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert builtin_judgement("batch", "Job", obj) == ([], "")


GARBAGE = [None, 1, -1, 1.5, True, "x", "", [], {}, [1], {"a": 1}, [{}], [None]]


def _paths(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    children = (
        obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    )
    for key, value in children:
        out += _paths(value, (*path, key))
    return out


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


RICH_POD = {
    "containers": [
        {
            "name": "web",
            "image": "x",
            "ports": [{"name": "http", "containerPort": 80}],
            "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "envFrom": [{"configMapRef": {"name": "c"}}],
            "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}},
            "volumeMounts": [{"name": "v", "mountPath": "/v"}],
            "livenessProbe": {"httpGet": {"port": 80}},
        }
    ],
    "volumes": [{"name": "v", "configMap": {"name": "c", "items": [{"key": "k", "path": "p"}]}}],
    "securityContext": {"runAsUser": 1, "seccompProfile": {"type": "RuntimeDefault"}},
    "tolerations": [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}
                ]
            }
        },
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 1,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": {"app": "web"}},
                        "topologyKey": "k",
                    },
                }
            ]
        },
    },
}


@pytest.mark.parametrize(
    ("group", "kind", "obj"),
    [
        ("", "Service", service(sessionAffinityConfig={"clientIP": {"timeoutSeconds": 1}})),
        ("apps", "Deployment", deployment(**RICH_POD)),
        ("apps", "StatefulSet", deployment(**RICH_POD)),
        ("apps", "DaemonSet", deployment(**RICH_POD)),
        ("batch", "Job", deployment(**RICH_POD)),
    ],
)
def test_any_value_of_any_type_anywhere_is_judged_without_a_fault(
    group: str, kind: str, obj: dict[str, Any]
) -> None:
    """A wrong type is the schema walk's problem: the rules must answer, never raise."""
    judged = 0
    for path in _paths(obj):
        for value in GARBAGE:
            bad = copy.deepcopy(obj)
            _set(bad, path, value)
            problems, why = builtin_judgement(group, kind, bad)
            assert isinstance(problems, list) and isinstance(why, str)
            judged += 1
    assert judged > 100


def test_security_context_ids_and_seccomp() -> None:
    ctx = {
        "runAsUser": -1,
        "seccompProfile": {"type": "Default"},
        "capabilities": {"drop": ["ALL"]},
    }
    problems, _ = builtin_judgement(
        "apps",
        "Deployment",
        deployment(containers=[{"name": "w", "image": "x", "securityContext": ctx}]),
    )
    assert problems == [
        "spec.template.spec.containers[0].securityContext.runAsUser:"
        " must be between 0 and 2147483647, is -1",
        "spec.template.spec.containers[0].securityContext.seccompProfile.type:"
        " 'Default' is not one of RuntimeDefault, Unconfined, Localhost",
    ]
    privileged = {"privileged": True}
    problems, why = builtin_judgement(
        "apps", "Deployment", deployment(securityContext={"fsGroup": 1, **privileged})
    )
    assert problems == [] and why.startswith("spec.template.spec.securityContext.privileged")


def test_tolerations() -> None:
    tolerations = [
        {"operator": "Equal", "value": "x"},
        {"key": "k", "operator": "Exists", "value": "x"},
        {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5},
        {"key": "k", "operator": "Gt", "value": "1"},
    ]
    problems, why = builtin_judgement("apps", "Deployment", deployment(tolerations=tolerations))
    path = "spec.template.spec.tolerations"
    assert problems == [
        f"{path}[0].operator: must be Exists when key is empty",
        f"{path}[1].value: must be empty when operator is Exists",
        f"{path}[2].effect: must be NoExecute when tolerationSeconds is set",
    ]
    assert why == f'{path}[3].operator: operator string "Gt" is judged by the server'


def test_only_the_v1_rules_are_written_here() -> None:
    obj = {**deployment(), "apiVersion": "apps/v1beta2"}
    assert builtin_judgement("apps", "Deployment", obj) == (
        [],
        "apiVersion: the rules written here are those of Deployment v1",
    )
    assert builtin_judgement("apps", "Deployment", {**obj, "apiVersion": "apps/v1"}) == ([], "")
