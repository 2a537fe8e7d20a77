"""The per-kind rules of Services, Deployments, StatefulSets, DaemonSets and Jobs against the
real API server: every case's verdict is compared with the server's answer to a dry-run. Every
rule the check implements has a bad case the server refuses (the check must call it invalid
or leave it to the server, never vouch for it), and fields outside the allow-lists are left to
the server.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.integration.test_schema_against_server import DEFER, INVALID, VOUCH, compare, with_meta

from tether.kube import KubeClient
from tether.model import Obj
from tether.schema import schema_check_of

P80 = {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}


def svc(*ports: dict[str, Any], **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": list(ports), **spec},
    }


def port(**changes: Any) -> dict[str, Any]:
    out = {**P80, **changes}
    return {k: v for k, v in out.items() if v is not None}


def container(**changes: Any) -> dict[str, Any]:
    return {"name": "web", "image": "nginx:1.27", **changes}


def pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"containers": list(containers) or [container()], **spec}


def workload(kind: str, pod_spec: dict[str, Any] | None = None, **spec: Any) -> Obj:
    group = "batch/v1" if kind == "Job" else "apps/v1"
    body: dict[str, Any] = {
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": pod_spec or pod(**({"restartPolicy": "Never"} if kind == "Job" else {})),
        },
    }
    if kind != "Job":
        body["selector"] = {"matchLabels": {"app": "web"}}
    if kind == "StatefulSet":
        body["serviceName"] = "web"
    body.update(spec)
    return {"apiVersion": group, "kind": kind, "metadata": {"name": "web"}, "spec": body}


def deploy(pod_spec: dict[str, Any] | None = None, **spec: Any) -> Obj:
    return workload("Deployment", pod_spec, **spec)


def with_template_meta(obj: Obj, **meta: Any) -> Obj:
    obj = copy.deepcopy(obj)
    obj["spec"]["template"]["metadata"].update(meta)
    return obj


@pytest.fixture
async def client(kubeconfig: str) -> AsyncIterator[KubeClient]:
    """A client of its own, so the check's caches start empty in every test."""
    kube = await KubeClient.connect(kubeconfig)
    yield kube
    await kube.close()


REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def node_required(terms: list[dict[str, Any]]) -> dict[str, Any]:
    return {"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": terms}}}


def pod_preferred(term: dict[str, Any], weight: int = 1) -> dict[str, Any]:
    return {"podAntiAffinity": {PREFERRED: [{"weight": weight, "podAffinityTerm": term}]}}


CONFIG_VOLUME = {"name": "config", "configMap": {"name": "web-config"}}
MOUNT = {"name": "config", "mountPath": "/etc/web"}
HTTP_PROBE = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5}

SERVICE_CASES: list[tuple[str, Obj, str]] = [
    ("service one port", svc(P80), VOUCH),
    ("service unnamed single port", svc(port(name=None)), VOUCH),
    ("service two named ports", svc(P80, port(name="https", port=443)), VOUCH),
    ("service udp", svc(port(protocol="UDP")), VOUCH),
    ("service same port tcp and udp", svc(P80, port(name="dns", protocol="UDP")), VOUCH),
    ("service target port named", svc(port(targetPort="web-http")), VOUCH),
    ("service target port unset", svc(port(targetPort=None)), VOUCH),
    ("service headless without ports", svc(clusterIP="None"), VOUCH),
    ("service headless with port", svc(P80, clusterIP="None"), VOUCH),
    ("service type ClusterIP", svc(P80, type="ClusterIP"), VOUCH),
    ("service without selector", {**svc(P80), "spec": {"ports": [P80]}}, VOUCH),
    ("service ClientIP affinity", svc(P80, sessionAffinity="ClientIP"), VOUCH),
    (
        "service ClientIP timeout",
        svc(
            P80,
            sessionAffinity="ClientIP",
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}},
        ),
        VOUCH,
    ),
    ("service publishNotReadyAddresses", svc(P80, publishNotReadyAddresses=True), VOUCH),
    (
        "service ExternalName",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "ext"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com."},
        },
        VOUCH,
    ),
    ("service no ports", svc(), INVALID),
    ("service port 0", svc(port(port=0)), INVALID),
    ("service port 70000", svc(port(port=70000)), INVALID),
    ("service protocol lower-case", svc(port(protocol="tcp")), INVALID),
    ("service protocol HTTP", svc(port(protocol="HTTP")), INVALID),
    ("service protocol left out", svc(port(protocol=None)), DEFER),
    ("service protocol SCTP", svc(port(protocol="SCTP")), DEFER),
    ("service two ports one unnamed", svc(P80, port(name=None, port=443)), INVALID),
    ("service duplicate port names", svc(P80, port(port=443)), INVALID),
    ("service port name upper-case", svc(port(name="HTTP")), INVALID),
    ("service port name with dot", svc(port(name="a.b")), INVALID),
    ("service duplicate port and protocol", svc(P80, port(name="b")), INVALID),
    ("service target port 0", svc(port(targetPort=0)), DEFER),
    ("service target port 70000", svc(port(targetPort=70000)), INVALID),
    ("service target port -1", svc(port(targetPort=-1)), INVALID),
    ("service target port name all digits", svc(port(targetPort="8080")), INVALID),
    ("service target port name too long", svc(port(targetPort="a" * 16)), INVALID),
    ("service target port name ending in -", svc(port(targetPort="8080x-")), INVALID),
    ("service target port name with --", svc(port(targetPort="a--b")), INVALID),
    ("service target port name upper-case", svc(port(targetPort="HTTP")), INVALID),
    ("service type unknown", svc(P80, type="Internal"), INVALID),
    ("service type NodePort", svc(P80, type="NodePort"), DEFER),
    ("service type LoadBalancer", svc(P80, type="LoadBalancer"), DEFER),
    ("service node port", svc(port(nodePort=30080), type="NodePort"), DEFER),
    ("service cluster IP address", svc(P80, clusterIP="10.0.0.300"), DEFER),
    ("service cluster IP family", svc(P80, ipFamilies=["IPv4"]), DEFER),
    ("service external IPs", svc(P80, externalIPs=["1.2.3.4"]), DEFER),
    ("service traffic policy", svc(P80, externalTrafficPolicy="Local"), DEFER),
    ("service appProtocol", svc(port(appProtocol="http")), DEFER),
    ("service bad selector value", svc(P80, selector={"app": "a b"}), INVALID),
    ("service bad selector key", svc(P80, selector={"a/b/c": "x"}), INVALID),
    ("service affinity unknown", svc(P80, sessionAffinity="Cookie"), INVALID),
    (
        "service ClientIP timeout 0",
        svc(
            P80,
            sessionAffinity="ClientIP",
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}},
        ),
        INVALID,
    ),
    (
        "service ClientIP timeout above a day",
        svc(
            P80,
            sessionAffinity="ClientIP",
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 86401}},
        ),
        INVALID,
    ),
    (
        "service affinity config without ClientIP",
        svc(P80, sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}),
        DEFER,
    ),
    (
        "service ExternalName without a name",
        {**svc(), "spec": {"type": "ExternalName"}},
        INVALID,
    ),
    (
        "service ExternalName not a DNS name",
        {**svc(), "spec": {"type": "ExternalName", "externalName": "db_1.example.com"}},
        INVALID,
    ),
    (
        "service ExternalName with clusterIP None",
        {**svc(), "spec": {"type": "ExternalName", "externalName": "a.b", "clusterIP": "None"}},
        DEFER,
    ),
    ("service externalName on ClusterIP", svc(P80, externalName="a.example.com"), DEFER),
]

DEPLOYMENT_CASES: list[tuple[str, Obj, str]] = [
    (
        "deployment rich template",
        deploy(
            pod(
                container(
                    imagePullPolicy="IfNotPresent",
                    command=["/bin/web"],
                    args=["--port", "8080"],
                    workingDir="/srv",
                    ports=[{"name": "http", "containerPort": 8080}],
                    env=[
                        {"name": "MODE", "value": "prod"},
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {
                            "name": "PASSWORD",
                            "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}},
                        },
                        {
                            "name": "LEVEL",
                            "valueFrom": {
                                "configMapKeyRef": {"name": "web", "key": "level", "optional": True}
                            },
                        },
                    ],
                    envFrom=[{"configMapRef": {"name": "web-env"}}, {"secretRef": {"name": "s"}}],
                    resources={
                        "requests": {"cpu": "100m", "memory": "64Mi"},
                        "limits": {"cpu": "1", "memory": "0.5Gi", "ephemeral-storage": "1G"},
                    },
                    volumeMounts=[MOUNT, {"name": "tmp", "mountPath": "/tmp", "readOnly": False}],
                    livenessProbe=HTTP_PROBE,
                    readinessProbe={"tcpSocket": {"port": "http"}, "successThreshold": 2},
                    startupProbe={"exec": {"command": ["true"]}, "failureThreshold": 30},
                ),
                volumes=[
                    CONFIG_VOLUME,
                    {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                    {"name": "certs", "secret": {"secretName": "tls", "defaultMode": 0o440}},
                ],
                initContainers=[container(name="init", command=["sh", "-c", "true"])],
                serviceAccountName="runner",
                nodeSelector={"kubernetes.io/os": "linux"},
                terminationGracePeriodSeconds=30,
                dnsPolicy="ClusterFirst",
                imagePullSecrets=[{"name": "registry"}],
            ),
            replicas=3,
            strategy={
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            revisionHistoryLimit=5,
            minReadySeconds=10,
            progressDeadlineSeconds=300,
        ),
        VOUCH,
    ),
    ("deployment replicas 0", deploy(replicas=0), VOUCH),
    ("deployment Recreate", deploy(strategy={"type": "Recreate"}), VOUCH),
    (
        "deployment container port without protocol",
        deploy(pod(container(ports=[{"containerPort": 80}]))),
        VOUCH,
    ),
    ("deployment replicas -1", deploy(replicas=-1), INVALID),
    ("deployment revisionHistoryLimit -1", deploy(revisionHistoryLimit=-1), INVALID),
    ("deployment minReadySeconds -1", deploy(minReadySeconds=-1), INVALID),
    (
        "deployment progress deadline not above minReadySeconds",
        deploy(minReadySeconds=30, progressDeadlineSeconds=30),
        INVALID,
    ),
    ("deployment minReadySeconds 600 (default deadline)", deploy(minReadySeconds=600), DEFER),
    ("deployment strategy unknown", deploy(strategy={"type": "BlueGreen"}), INVALID),
    (
        "deployment Recreate with rollingUpdate",
        deploy(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
        INVALID,
    ),
    (
        "deployment surge and unavailable 0",
        deploy(strategy={"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}),
        INVALID,
    ),
    (
        "deployment maxUnavailable 101%",
        deploy(strategy={"rollingUpdate": {"maxUnavailable": "101%"}}),
        INVALID,
    ),
    (
        "deployment maxSurge not a percentage",
        deploy(strategy={"rollingUpdate": {"maxSurge": "5 percent"}}),
        INVALID,
    ),
    ("deployment maxSurge -1", deploy(strategy={"rollingUpdate": {"maxSurge": -1}}), INVALID),
    (
        "deployment selector expressions",
        deploy(selector={"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
        DEFER,
    ),
    ("deployment template without labels", with_template_meta(deploy(), labels=None), INVALID),
    ("deployment template name", with_template_meta(deploy(), name="x"), DEFER),
    (
        "deployment template bad annotation",
        with_template_meta(deploy(), annotations={"a b": "x"}),
        INVALID,
    ),
    (
        "deployment template kubernetes.io annotation",
        with_template_meta(deploy(), annotations={"seccomp.security.alpha.kubernetes.io/pod": "x"}),
        DEFER,
    ),
    ("deployment restartPolicy Never", deploy(pod(restartPolicy="Never")), INVALID),
    ("deployment no containers", deploy({"containers": []}), INVALID),
    ("deployment container name upper-case", deploy(pod(container(name="Web"))), INVALID),
    ("deployment container names twice", deploy(pod(container(), container(image="b"))), INVALID),
    (
        "deployment init container named like a container",
        deploy(pod(container(), initContainers=[container()])),
        INVALID,
    ),
    ("deployment container without image", deploy(pod({"name": "web"})), DEFER),
    (
        "deployment pull policy unknown",
        deploy(pod(container(imagePullPolicy="Sometimes"))),
        INVALID,
    ),
    ("deployment container port 0", deploy(pod(container(ports=[{"containerPort": 0}]))), INVALID),
    (
        "deployment container port 65536",
        deploy(pod(container(ports=[{"containerPort": 65536}]))),
        INVALID,
    ),
    (
        "deployment container port name too long",
        deploy(pod(container(ports=[{"containerPort": 80, "name": "a-very-long-port-name"}]))),
        INVALID,
    ),
    (
        "deployment container port names twice",
        deploy(
            pod(
                container(
                    ports=[
                        {"containerPort": 80, "name": "http"},
                        {"containerPort": 81, "name": "http"},
                    ]
                )
            )
        ),
        INVALID,
    ),
    (
        "deployment container port protocol unknown",
        deploy(pod(container(ports=[{"containerPort": 80, "protocol": "ICMP"}]))),
        INVALID,
    ),
    (
        "deployment host port",
        deploy(pod(container(ports=[{"containerPort": 80, "hostPort": 80}]))),
        DEFER,
    ),
    (
        "deployment env name with space",
        deploy(pod(container(env=[{"name": "A B", "value": "1"}]))),
        DEFER,
    ),
    (
        "deployment env resourceFieldRef",
        deploy(
            pod(
                container(
                    env=[
                        {
                            "name": "CPU",
                            "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}},
                        }
                    ]
                )
            )
        ),
        DEFER,
    ),
    (
        "deployment env fieldPath unknown",
        deploy(
            pod(
                container(
                    env=[{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}]
                )
            )
        ),
        DEFER,
    ),
    (
        "deployment request above limit",
        deploy(pod(container(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}}))),
        INVALID,
    ),
    (
        "deployment memory request above limit",
        deploy(
            pod(container(resources={"requests": {"memory": "1Gi"}, "limits": {"memory": "1G"}}))
        ),
        INVALID,
    ),
    (
        "deployment request equal to limit in other units",
        deploy(pod(container(resources={"requests": {"cpu": "0.5"}, "limits": {"cpu": "500m"}}))),
        VOUCH,
    ),
    (
        "deployment quantity with exponent",
        deploy(pod(container(resources={"requests": {"memory": "128e6", "cpu": ".1"}}))),
        VOUCH,
    ),
    (
        "deployment quantity forms",
        deploy(
            pod(
                container(
                    resources={
                        "requests": {"cpu": "+1", "memory": "5.", "ephemeral-storage": "1E"},
                        "limits": {"cpu": "1.5", "memory": "1e1"},
                    }
                )
            )
        ),
        VOUCH,
    ),
    (
        "deployment negative emptyDir size",
        deploy(pod(volumes=[{"name": "v", "emptyDir": {"sizeLimit": "-1Gi"}}])),
        INVALID,
    ),
    (
        "deployment quantity bad suffix",
        deploy(pod(container(resources={"limits": {"memory": "1K"}}))),
        INVALID,
    ),
    (
        "deployment quantity with a space",
        deploy(pod(container(resources={"limits": {"memory": "1 Gi"}}))),
        INVALID,
    ),
    (
        "deployment quantity negative",
        deploy(pod(container(resources={"limits": {"cpu": "-1"}}))),
        INVALID,
    ),
    (
        "deployment quantity a number",
        deploy(pod(container(resources={"limits": {"cpu": 1}}))),
        DEFER,
    ),
    (
        "deployment quantity too fine",
        deploy(pod(container(resources={"limits": {"cpu": "0.1n"}}))),
        DEFER,
    ),
    (
        "deployment extended resource",
        deploy(pod(container(resources={"limits": {"example.com/gpu": "1"}}))),
        DEFER,
    ),
    (
        "deployment mount of an undeclared volume",
        deploy(pod(container(volumeMounts=[MOUNT]))),
        INVALID,
    ),
    (
        "deployment mount path twice",
        deploy(pod(container(volumeMounts=[MOUNT, MOUNT]), volumes=[CONFIG_VOLUME])),
        INVALID,
    ),
    (
        "deployment volume names twice",
        deploy(pod(volumes=[CONFIG_VOLUME, CONFIG_VOLUME])),
        INVALID,
    ),
    (
        "deployment volume name upper-case",
        deploy(pod(volumes=[{"name": "Config", "emptyDir": {}}])),
        INVALID,
    ),
    (
        "deployment volume with two sources",
        deploy(pod(volumes=[{"name": "v", "emptyDir": {}, "configMap": {"name": "c"}}])),
        INVALID,
    ),
    (
        "deployment volume defaultMode above 0777",
        deploy(pod(volumes=[{"name": "v", "secret": {"secretName": "s", "defaultMode": 1000}}])),
        INVALID,
    ),
    (
        "deployment hostPath volume",
        deploy(pod(volumes=[{"name": "v", "hostPath": {"path": "/tmp"}}])),
        DEFER,
    ),
    (
        "deployment subPath with ..",
        deploy(
            pod(container(volumeMounts=[{**MOUNT, "subPath": "../etc"}]), volumes=[CONFIG_VOLUME])
        ),
        DEFER,
    ),
    (
        "deployment probe exec without command",
        deploy(pod(container(livenessProbe={"exec": {}}))),
        INVALID,
    ),
    (
        "deployment probe httpGet without path",
        deploy(pod(container(readinessProbe={"httpGet": {"port": "http"}}))),
        VOUCH,
    ),
    (
        "deployment probe without handler",
        deploy(pod(container(livenessProbe={"periodSeconds": 5}))),
        INVALID,
    ),
    (
        "deployment probe with two handlers",
        deploy(
            pod(
                container(readinessProbe={"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}})
            )
        ),
        INVALID,
    ),
    (
        "deployment liveness successThreshold 2",
        deploy(pod(container(livenessProbe={**HTTP_PROBE, "successThreshold": 2}))),
        INVALID,
    ),
    (
        "deployment probe period -1",
        deploy(pod(container(readinessProbe={**HTTP_PROBE, "periodSeconds": -1}))),
        INVALID,
    ),
    (
        "deployment probe port 70000",
        deploy(pod(container(readinessProbe={"httpGet": {"port": 70000}}))),
        INVALID,
    ),
    (
        "deployment probe scheme unknown",
        deploy(pod(container(readinessProbe={"httpGet": {"port": 80, "scheme": "FTP"}}))),
        INVALID,
    ),
    (
        "deployment probe http headers",
        deploy(
            pod(
                container(
                    readinessProbe={
                        "httpGet": {"port": 80, "httpHeaders": [{"name": "a", "value": "b"}]}
                    }
                )
            )
        ),
        DEFER,
    ),
    (
        "deployment security contexts",
        deploy(
            pod(
                container(
                    securityContext={
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "runAsGroup": 1000,
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    }
                ),
                securityContext={"fsGroup": 2000, "runAsUser": 0, "runAsNonRoot": False},
            )
        ),
        VOUCH,
    ),
    ("deployment runAsUser -1", deploy(pod(container(securityContext={"runAsUser": -1}))), INVALID),
    ("deployment fsGroup past 2^31-1", deploy(pod(securityContext={"fsGroup": 2**31})), INVALID),
    (
        "deployment seccomp type unknown",
        deploy(pod(securityContext={"seccompProfile": {"type": "Default"}})),
        INVALID,
    ),
    (
        "deployment seccomp Localhost",
        deploy(
            pod(
                container(
                    securityContext={
                        "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}
                    }
                )
            )
        ),
        DEFER,
    ),
    ("deployment privileged", deploy(pod(container(securityContext={"privileged": True}))), DEFER),
    (
        "deployment no privilege escalation but CAP_SYS_ADMIN",
        deploy(
            pod(
                container(
                    securityContext={
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"add": ["CAP_SYS_ADMIN"]},
                    }
                )
            )
        ),
        DEFER,
    ),
    (
        "deployment restartedAt annotation",
        with_template_meta(
            deploy(), annotations={"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
        ),
        VOUCH,
    ),
    ("deployment empty affinity", deploy(pod(affinity={})), VOUCH),
    (
        "deployment affinity",
        deploy(
            pod(
                affinity={
                    "nodeAffinity": {
                        REQUIRED: {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {
                                            "key": "kubernetes.io/os",
                                            "operator": "In",
                                            "values": ["linux"],
                                        },
                                        {"key": "gpu", "operator": "DoesNotExist"},
                                        {"key": "cores", "operator": "Gt", "values": ["2"]},
                                    ]
                                }
                            ]
                        },
                        PREFERRED: [
                            {
                                "weight": 10,
                                "preference": {
                                    "matchExpressions": [
                                        {"key": "zone", "operator": "NotIn", "values": ["a"]}
                                    ]
                                },
                            }
                        ],
                    },
                    "podAntiAffinity": {
                        PREFERRED: [
                            {
                                "weight": 100,
                                "podAffinityTerm": {
                                    "labelSelector": {"matchLabels": {"app": "web"}},
                                    "topologyKey": "kubernetes.io/hostname",
                                },
                            }
                        ],
                    },
                    "podAffinity": {
                        REQUIRED: [
                            {
                                "labelSelector": {
                                    "matchExpressions": [{"key": "app", "operator": "Exists"}]
                                },
                                "namespaces": ["default"],
                                "topologyKey": "topology.kubernetes.io/zone",
                            }
                        ]
                    },
                }
            )
        ),
        VOUCH,
    ),
    ("deployment no node selector terms", deploy(pod(affinity=node_required([]))), INVALID),
    (
        "deployment node expression In without values",
        deploy(
            pod(
                affinity=node_required(
                    [{"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}]
                )
            )
        ),
        INVALID,
    ),
    (
        "deployment node expression Exists with values",
        deploy(
            pod(
                affinity=node_required(
                    [{"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}]
                )
            )
        ),
        INVALID,
    ),
    (
        "deployment node expression bad key",
        deploy(
            pod(
                affinity=node_required(
                    [{"matchExpressions": [{"key": "a b", "operator": "Exists"}]}]
                )
            )
        ),
        INVALID,
    ),
    (
        "deployment node expression operator unknown",
        deploy(
            pod(affinity=node_required([{"matchExpressions": [{"key": "a", "operator": "Has"}]}]))
        ),
        DEFER,
    ),
    (
        "deployment node expression Gt not a number",
        deploy(
            pod(
                affinity=node_required(
                    [{"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["x"]}]}]
                )
            )
        ),
        DEFER,
    ),
    (
        "deployment node matchFields",
        deploy(
            pod(
                affinity=node_required(
                    [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}]
                )
            )
        ),
        DEFER,
    ),
    (
        "deployment preference weight 0",
        deploy(pod(affinity={"nodeAffinity": {PREFERRED: [{"weight": 0, "preference": {}}]}})),
        INVALID,
    ),
    (
        "deployment preference weight 101",
        deploy(pod(affinity=pod_preferred({"topologyKey": "k"}, weight=101))),
        INVALID,
    ),
    (
        "deployment pod term empty topology",
        deploy(pod(affinity=pod_preferred({"topologyKey": ""}))),
        INVALID,
    ),
    (
        "deployment pod term bad topology",
        deploy(pod(affinity=pod_preferred({"topologyKey": "a b"}))),
        INVALID,
    ),
    (
        "deployment pod term bad namespace",
        deploy(pod(affinity=pod_preferred({"topologyKey": "k", "namespaces": ["Default"]}))),
        INVALID,
    ),
    (
        "deployment pod term bad selector label",
        deploy(
            pod(
                affinity=pod_preferred(
                    {"topologyKey": "k", "labelSelector": {"matchLabels": {"a": "b c"}}}
                )
            )
        ),
        INVALID,
    ),
    (
        "deployment pod term expression Exists with values",
        deploy(
            pod(
                affinity=pod_preferred(
                    {
                        "topologyKey": "k",
                        "labelSelector": {
                            "matchExpressions": [
                                {"key": "a", "operator": "Exists", "values": ["x"]}
                            ]
                        },
                    }
                )
            )
        ),
        INVALID,
    ),
    (
        "deployment pod term expression Gt",
        deploy(
            pod(
                affinity=pod_preferred(
                    {
                        "topologyKey": "k",
                        "labelSelector": {
                            "matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]
                        },
                    }
                )
            )
        ),
        DEFER,
    ),
    (
        "deployment tolerations",
        deploy(
            pod(
                tolerations=[
                    {"operator": "Exists"},
                    {
                        "key": "dedicated",
                        "operator": "Equal",
                        "value": "web",
                        "effect": "NoSchedule",
                    },
                    {"key": "example.com/flaky", "effect": "NoExecute", "tolerationSeconds": 30},
                ]
            )
        ),
        VOUCH,
    ),
    (
        "deployment toleration bad key",
        deploy(pod(tolerations=[{"key": "a b", "operator": "Exists"}])),
        INVALID,
    ),
    (
        "deployment toleration empty key with Equal",
        deploy(pod(tolerations=[{"operator": "Equal", "value": "x"}])),
        INVALID,
    ),
    (
        "deployment toleration Exists with a value",
        deploy(pod(tolerations=[{"key": "k", "operator": "Exists", "value": "x"}])),
        INVALID,
    ),
    (
        "deployment toleration seconds without NoExecute",
        deploy(pod(tolerations=[{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}])),
        INVALID,
    ),
    (
        "deployment toleration effect unknown",
        deploy(pod(tolerations=[{"key": "k", "effect": "Never"}])),
        INVALID,
    ),
    (
        "deployment toleration bad value",
        deploy(pod(tolerations=[{"key": "k", "value": "a b"}])),
        INVALID,
    ),
    (
        "deployment toleration operator Gt",
        deploy(pod(tolerations=[{"key": "k", "operator": "Gt", "value": "1"}])),
        DEFER,
    ),
    ("deployment bad service account", deploy(pod(serviceAccountName="Runner")), INVALID),
    ("deployment bad node selector", deploy(pod(nodeSelector={"a": "b c"})), INVALID),
    ("deployment dnsPolicy unknown", deploy(pod(dnsPolicy="Cluster")), INVALID),
    ("deployment dnsPolicy None", deploy(pod(dnsPolicy="None")), DEFER),
]

OTHER_WORKLOAD_CASES: list[tuple[str, Obj, str]] = [
    ("statefulset", workload("StatefulSet"), VOUCH),
    (
        "statefulset parallel, partitioned",
        workload(
            "StatefulSet",
            podManagementPolicy="Parallel",
            updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
            replicas=2,
        ),
        VOUCH,
    ),
    ("statefulset on delete", workload("StatefulSet", updateStrategy={"type": "OnDelete"}), VOUCH),
    ("statefulset policy unknown", workload("StatefulSet", podManagementPolicy="Any"), INVALID),
    (
        "statefulset strategy unknown",
        workload("StatefulSet", updateStrategy={"type": "Rolling"}),
        INVALID,
    ),
    (
        "statefulset on delete with rollingUpdate",
        workload(
            "StatefulSet", updateStrategy={"type": "OnDelete", "rollingUpdate": {"partition": 1}}
        ),
        INVALID,
    ),
    (
        "statefulset partition -1",
        workload("StatefulSet", updateStrategy={"rollingUpdate": {"partition": -1}}),
        INVALID,
    ),
    ("statefulset replicas -1", workload("StatefulSet", replicas=-1), INVALID),
    (
        "statefulset restartPolicy OnFailure",
        workload("StatefulSet", pod(restartPolicy="OnFailure")),
        INVALID,
    ),
    (
        "statefulset selector mismatch",
        workload("StatefulSet", selector={"matchLabels": {"app": "x"}}),
        INVALID,
    ),
    (
        "statefulset volume claim templates",
        workload("StatefulSet", volumeClaimTemplates=[{"metadata": {"name": "data"}}]),
        DEFER,
    ),
    ("daemonset", workload("DaemonSet"), VOUCH),
    (
        "daemonset max unavailable 10%",
        workload("DaemonSet", updateStrategy={"rollingUpdate": {"maxUnavailable": "10%"}}),
        VOUCH,
    ),
    ("daemonset on delete", workload("DaemonSet", updateStrategy={"type": "OnDelete"}), VOUCH),
    (
        "daemonset strategy unknown",
        workload("DaemonSet", updateStrategy={"type": "Recreate"}),
        INVALID,
    ),
    (
        "daemonset max unavailable 0",
        workload("DaemonSet", updateStrategy={"rollingUpdate": {"maxUnavailable": 0}}),
        DEFER,
    ),
    (
        "daemonset max unavailable 150%",
        workload("DaemonSet", updateStrategy={"rollingUpdate": {"maxUnavailable": "150%"}}),
        INVALID,
    ),
    (
        "daemonset max unavailable -1",
        workload("DaemonSet", updateStrategy={"rollingUpdate": {"maxUnavailable": -1}}),
        INVALID,
    ),
    ("daemonset minReadySeconds -1", workload("DaemonSet", minReadySeconds=-1), INVALID),
    ("daemonset restartPolicy Never", workload("DaemonSet", pod(restartPolicy="Never")), INVALID),
    ("daemonset empty selector", workload("DaemonSet", selector={"matchLabels": {}}), INVALID),
    ("job", workload("Job"), VOUCH),
    (
        "job on failure",
        workload(
            "Job", pod(restartPolicy="OnFailure"), completions=3, parallelism=2, backoffLimit=1
        ),
        VOUCH,
    ),
    ("job restartPolicy unset (Always)", workload("Job", pod()), INVALID),
    ("job restartPolicy Always", workload("Job", pod(restartPolicy="Always")), INVALID),
    ("job parallelism -1", workload("Job", parallelism=-1), INVALID),
    ("job completions -1", workload("Job", completions=-1), INVALID),
    ("job backoffLimit -1", workload("Job", backoffLimit=-1), INVALID),
    ("job active deadline", workload("Job", activeDeadlineSeconds=60), DEFER),
    ("job selector", workload("Job", selector={"matchLabels": {"app": "web"}}), DEFER),
    ("job ttl", workload("Job", ttlSecondsAfterFinished=60), DEFER),
    ("job named past a label", {**workload("Job"), "metadata": {"name": "j" * 64}}, DEFER),
]


async def test_services_agree_with_the_server(client: KubeClient, namespace: str) -> None:
    check = schema_check_of(client)
    assert await compare(client, check, SERVICE_CASES, namespace) == []


async def test_deployments_agree_with_the_server(client: KubeClient, namespace: str) -> None:
    check = schema_check_of(client)
    assert await compare(client, check, DEPLOYMENT_CASES, namespace) == []


async def test_other_workloads_agree_with_the_server(client: KubeClient, namespace: str) -> None:
    check = schema_check_of(client)
    assert await compare(client, check, OTHER_WORKLOAD_CASES, namespace) == []


async def test_many_checks_at_once_read_what_one_check_reads(
    client: KubeClient, kubeconfig: str, namespace: str
) -> None:
    """The server's version (container ports without a protocol are vouched for from 1.20 on)
    and the schemas are read once by many checks at once: 20 checks send the requests one
    check sends."""
    objs = [
        with_meta(
            deploy(pod(container(ports=[{"containerPort": 80}]))), name=f"d{i}", namespace=namespace
        )
        for i in range(20)
    ]
    verdicts = await asyncio.gather(*(schema_check_of(client).check(o) for o in objs))
    assert all(v.vouched for v in verdicts), verdicts[0]
    async with await KubeClient.connect(kubeconfig) as alone:
        assert (await schema_check_of(alone).check(objs[0])).vouched
        assert client.requests == alone.requests
