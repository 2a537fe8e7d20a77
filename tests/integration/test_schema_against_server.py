"""The client-side schema check against the real API server: for a table of good and bad
manifests, the check's verdict is compared with the server's own answer to a dry-run. The check
never vouches for an object the server refuses, and finds problems only where it refuses.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cluster_helpers import WAIT, eventually

from tether.errors import KubeError
from tether.kube import KubeClient
from tether.model import Obj
from tether.schema import SchemaCheck, Verdict, schema_check_of
from tether.schema.admission import LOOKUPS_BEFORE_REREAD, Admission
from tether.schema.openapi import OpenAPI

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "openapi"
VOUCH, INVALID, DEFER = "vouch", "invalid", "defer"


def cm(**extra: Any) -> Obj:
    obj: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}
    obj.update(extra)
    return obj


def with_meta(obj: Obj, **meta: Any) -> Obj:
    obj = copy.deepcopy(obj)
    obj["metadata"].update(meta)
    return obj


def deployment(selector: dict[str, str], labels: dict[str, str], **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
            **spec,
        },
    }


def service(**port: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [port]},
    }


def widget(group: str, **spec: Any) -> Obj:
    return {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 3, **spec},
    }


GOOD_DEPLOYMENT = deployment({"app": "web"}, {"app": "web", "tier": "front"})
BUILTIN_CASES: list[tuple[str, Obj, str]] = [
    ("configmap", cm(data={"a": "1", "b.json": "{}"}), VOUCH),
    ("configmap with binary data", cm(binaryData={"k": "aGVsbG8="}), VOUCH),
    ("configmap null data (unset)", cm(data=None), VOUCH),
    ("configmap dotted name", with_meta(cm(), name="a.b-c"), VOUCH),
    (
        "configmap labels and annotations",
        with_meta(
            cm(),
            labels={"app.kubernetes.io/name": "x", "empty": ""},
            annotations={"example.com/note": "any text at all"},
        ),
        VOUCH,
    ),
    ("configmap creationTimestamp null", with_meta(cm(), creationTimestamp=None), VOUCH),
    ("configmap status field", cm(status={}), INVALID),
    ("configmap value not a string", cm(data={"a": 1}), INVALID),
    ("configmap data is a list", cm(data=["a"]), INVALID),
    ("configmap unknown field", cm(dta={"a": "1"}), INVALID),
    ("configmap unknown metadata field", with_meta(cm(), labelz={"a": "b"}), INVALID),
    ("configmap bad key", cm(data={"a b": "1"}), INVALID),
    ("configmap key starting ..", cm(data={"..a": "1"}), INVALID),
    (
        "configmap key in data and binaryData",
        cm(data={"k": "1"}, binaryData={"k": "MQ=="}),
        INVALID,
    ),
    ("configmap bad base64", cm(binaryData={"k": "not base64!"}), INVALID),
    ("configmap immutable not boolean", cm(immutable="yes"), INVALID),
    ("configmap upper-case name", with_meta(cm(), name="Web"), INVALID),
    ("configmap name too long", with_meta(cm(), name="a" * 254), INVALID),
    ("configmap bad label value", with_meta(cm(), labels={"a": "b c"}), INVALID),
    ("configmap label value too long", with_meta(cm(), labels={"a": "b" * 64}), INVALID),
    ("configmap bad label key", with_meta(cm(), labels={"a/b/c": "x"}), INVALID),
    ("configmap label value a number", with_meta(cm(), labels={"a": 1}), INVALID),
    ("configmap bad annotation key", with_meta(cm(), annotations={"a b": "x"}), INVALID),
    ("configmap generateName only", {**cm(), "metadata": {"generateName": "cm-"}}, INVALID),
    ("configmap with finalizers", with_meta(cm(), finalizers=["example.com/x"]), DEFER),
    (
        "secret opaque",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "stringData": {"password": "x"},
        },
        VOUCH,
    ),
    (
        "secret bad base64",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "data": {"password": "x"},
        },
        INVALID,
    ),
    (
        "secret of a typed kind",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "type": "kubernetes.io/tls",
            "data": {},
        },
        DEFER,
    ),
    (
        "serviceaccount",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "runner"}},
        VOUCH,
    ),
    (
        "serviceaccount upper-case",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "Runner"}},
        INVALID,
    ),
    ("deployment", GOOD_DEPLOYMENT, VOUCH),
    ("deployment with empty status", {**GOOD_DEPLOYMENT, "status": {}}, VOUCH),
    ("deployment replicas 2.0", deployment({"a": "b"}, {"a": "b"}, replicas=2.0), DEFER),
    ("deployment replicas null (unset)", deployment({"a": "b"}, {"a": "b"}, replicas=None), VOUCH),
    ("deployment replicas a string", deployment({"a": "b"}, {"a": "b"}, replicas="many"), INVALID),
    ("deployment replicas 1.5", deployment({"a": "b"}, {"a": "b"}, replicas=1.5), INVALID),
    (
        "deployment replicas past int32",
        deployment({"a": "b"}, {"a": "b"}, replicas=2**32 + 1),
        DEFER,
    ),
    ("deployment unknown field", deployment({"a": "b"}, {"a": "b"}, replica=1), INVALID),
    ("deployment selector mismatch", deployment({"app": "web"}, {"app": "api"}), INVALID),
    ("deployment selector empty", deployment({}, {"app": "api"}), INVALID),
    ("service", service(port=80, protocol="TCP", targetPort="http"), VOUCH),
    (
        "service target port not int or string",
        service(port=80, protocol="TCP", targetPort=True),
        INVALID,
    ),
    ("service target port 8080.5", service(port=80, protocol="TCP", targetPort=8080.5), INVALID),
    ("service without port", service(protocol="TCP"), INVALID),
    ("service dotted name", with_meta(service(port=80, protocol="TCP"), name="web.a"), INVALID),
    (
        "service name with digit first",
        with_meta(service(port=80, protocol="TCP"), name="1web"),
        INVALID,
    ),
    (
        "role with colon",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "ns:reader"},
        },
        DEFER,
    ),
    (
        "a Namespace that names a namespace",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t-never-created"}},
        DEFER,
    ),
    (
        "lease with an upper-case name (a name rule not known here for certain)",
        {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "L"}},
        DEFER,
    ),
    (
        "role with slash",
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "a/b"}},
        INVALID,
    ),
]


def custom_cases(group: str, strict_fields: bool) -> list[tuple[str, Obj, str]]:
    """``strict_fields``: the server refuses unknown fields of custom resources (1.25 on);
    older ones prune them, so the check leaves them to the server."""
    return [
        ("widget", widget(group), VOUCH),
        (
            "widget every field",
            widget(
                group,
                color="red",
                code="ABC",
                port="http",
                ratio=1,
                enabled=True,
                note="n",
                tags=["a", "b"],
                settings={"k": "v"},
                free={"any": {"thing": [1]}},
                template={"apiVersion": "v1", "kind": "ConfigMap"},
                email="a@example.com",
            ),
            DEFER,
        ),
        ("widget int-or-string number", widget(group, port=8080), VOUCH),
        ("widget int-or-string bool", widget(group, port=True), INVALID),
        ("widget nullable null", widget(group, note=None), VOUCH),
        ("widget nullable wrong type", widget(group, note=5), INVALID),
        ("widget null where not nullable", widget(group, color=None), DEFER),
        ("widget size a string", widget(group, size="3"), INVALID),
        ("widget size 1.5", widget(group, size=1.5), INVALID),
        ("widget size above maximum", widget(group, size=11), INVALID),
        ("widget size below minimum", widget(group, size=0), INVALID),
        ("widget size missing", {**widget(group), "spec": {"color": "red"}}, INVALID),
        ("widget color outside enum", widget(group, color="pink"), INVALID),
        ("widget code against pattern", widget(group, code="abc"), INVALID),
        ("widget code too long", widget(group, code="ABCD"), INVALID),
        ("widget too many tags", widget(group, tags=["a", "b", "c", "d"]), INVALID),
        ("widget empty tag", widget(group, tags=[""]), INVALID),
        ("widget map value not string", widget(group, settings={"k": 1}), INVALID),
        ("widget unknown field", widget(group, colour="red"), INVALID if strict_fields else DEFER),
        ("widget preserved unknown fields", widget(group, free={"x": 1}), VOUCH),
        ("widget embedded without kind", widget(group, template={"apiVersion": "v1"}), INVALID),
        ("widget embedded not an object", widget(group, template="cm"), INVALID),
        ("widget upper-case name", with_meta(widget(group), name="W"), INVALID),
        ("widget bad label", with_meta(widget(group), labels={"a": "-x"}), INVALID),
    ]


@pytest.fixture
async def client(kubeconfig: str) -> AsyncIterator[KubeClient]:
    """A client of its own, so the check's caches start empty in every test."""
    kube = await KubeClient.connect(kubeconfig)
    yield kube
    await kube.close()


@pytest.fixture
async def widget_group(kube: KubeClient) -> AsyncIterator[str]:
    """The Widget CRD of tests/fixtures/openapi, installed under a group of its own."""
    group = f"s{uuid.uuid4().hex[:8]}.schema.tether.dev"
    crd = yaml.safe_load((FIXTURES / "widget-crd.yaml").read_text())
    crd["metadata"]["name"] = f"widgets.{group}"
    crd["spec"]["group"] = group
    await kube.apply(crd)
    await kube.wait_for_resource(f"{group}/v1", "Widget", timeout=WAIT)
    yield group
    await kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", f"widgets.{group}")


async def server_answer(kube: KubeClient, obj: Obj) -> str:
    """``accepted``, or the server's reason for refusing a dry-run of ``obj``."""
    try:
        await kube.apply(obj, dry_run=True)
    except KubeError as e:
        return f"refused: {e}"
    return "accepted"


def outcome(verdict: Verdict) -> str:
    return VOUCH if verdict.vouched else INVALID if verdict.invalid else DEFER


async def compare(
    kube: KubeClient, check: SchemaCheck, cases: list[tuple[str, Obj, str]], namespace: str
) -> list[str]:
    """Every disagreement between the check, the server, and what each case expects."""
    wrong: list[str] = []
    for name, manifest, expected in cases:
        obj = with_meta(manifest, namespace=namespace)
        verdict = await check.check(obj, strict=True)
        server = await server_answer(kube, obj)
        if verdict.vouched and server != "accepted":
            wrong.append(f"{name}: vouched for, but the server {server}")
        if verdict.invalid and server == "accepted":
            wrong.append(f"{name}: problems {verdict.problems}, but the server accepts it")
        if outcome(verdict) != expected:
            wrong.append(f"{name}: expected {expected}, got {verdict} (server {server})")
    return wrong


async def test_builtin_kinds_agree_with_the_server(client: KubeClient, namespace: str) -> None:
    check = schema_check_of(client)
    assert await compare(client, check, BUILTIN_CASES, namespace) == []


async def test_custom_resources_agree_with_the_server(
    client: KubeClient, namespace: str, widget_group: str
) -> None:
    check = SchemaCheck(client)
    check.openapi = OpenAPI(ttl=1.0)  # a kind still missing: the document is read again soon

    async def published() -> bool:
        verdict = await check.check(with_meta(widget(widget_group), namespace=namespace))
        return "publishes no schema" not in verdict.why_not

    await eventually(published, timeout=WAIT, what="the Widget schema is published")
    assert (
        await compare(
            client, check, custom_cases(widget_group, bool(check.openapi.strict_fields)), namespace
        )
        == []
    )


async def test_a_namespace_with_a_quota_is_left_to_the_server(
    client: KubeClient, namespace: str
) -> None:
    """Quota admission can refuse an object the schema passes: the check does not vouch."""
    await client.apply(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "none", "namespace": namespace},
            "spec": {"hard": {"configmaps": "0"}},
        }
    )
    obj = with_meta(cm(data={"a": "1"}), namespace=namespace)

    async def quota_counted() -> bool:
        return (await server_answer(client, obj)).startswith("refused")

    await eventually(quota_counted, what="the quota refuses ConfigMaps")
    verdict = await schema_check_of(client).check(obj)
    assert not verdict.vouched and not verdict.invalid
    assert f"namespace {namespace} has a ResourceQuota" in verdict.why_not


async def test_an_admission_webhook_is_left_to_the_server(
    client: KubeClient, kube: KubeClient, namespace: str
) -> None:
    """A webhook (here one that cannot be reached, so the server refuses) that matches the
    object by its rules and selectors makes the check defer; one whose selector does not
    match it leaves the verdict alone. The API server reads webhooks and namespace labels
    from its own caches, so each change is waited for until the server acts on it."""
    name = f"schema-{uuid.uuid4().hex[:8]}.tether.test"
    label = "tether-test/schema-webhook"
    await kube.merge_patch(ns_obj(namespace), {"metadata": {"labels": {label: name}}})
    await kube.apply(webhook(name, label))
    obj = with_meta(cm(data={"a": "1"}), namespace=namespace)

    async def server_says(prefix: str) -> bool:
        return (await server_answer(client, obj)).startswith(prefix)

    try:
        await eventually(lambda: server_says("refused"), what="the server calls the webhook")
        verdict = await schema_check_of(client).check(obj)
        assert not verdict.vouched and not verdict.invalid
        assert f"ValidatingWebhookConfiguration {name} intercepts configmaps" in verdict.why_not
        await kube.merge_patch(ns_obj(namespace), {"metadata": {"labels": {label: None}}})
        schema_check_of(client).admission.forget()  # read the namespace's labels again
        await eventually(
            lambda: server_says("accepted"), what="the server no longer calls the webhook"
        )
        assert (await schema_check_of(client).check(obj)).vouched
    finally:
        await kube.delete("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", name)


def ns_obj(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def webhook(name: str, label: str) -> Obj:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": name,
                "clientConfig": {"url": "https://127.0.0.1:9/nothing-listens-here"},
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["configmaps"],
                    }
                ],
                "namespaceSelector": {"matchLabels": {label: name}},
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "failurePolicy": "Fail",
                "timeoutSeconds": 2,
            }
        ],
    }


async def test_documents_are_fetched_once_for_many_checks(
    client: KubeClient, namespace: str
) -> None:
    """Many objects checked at once share one fetch of the published schema."""
    check = schema_check_of(client)
    objs = [
        with_meta(cm(data={"k": str(i)}), name=f"cm-{i}", namespace=namespace) for i in range(50)
    ]
    verdicts = await asyncio.gather(*(check.check(o) for o in objs))
    assert all(v.vouched for v in verdicts)
    assert check.openapi.fetches <= 2  # the v3 index (absent on older servers) and one document
    before = sum(client.requests.values())
    await check.check(objs[0])
    assert sum(client.requests.values()) == before
    assert schema_check_of(client) is check


async def test_a_namespace_created_after_the_first_check_is_read_on_its_own(
    client: KubeClient, kube: KubeClient, namespace: str
) -> None:
    """A sync often creates its namespace just before its objects: the check reads that one
    namespace instead of deferring until its lists are read again."""
    check = schema_check_of(client)
    assert (await check.check(with_meta(cm(), namespace=namespace))).vouched
    later = f"t-{uuid.uuid4().hex[:10]}"
    missing = await check.check(with_meta(cm(), namespace=later))
    assert missing.why_not == f"namespace {later} does not exist yet or is terminating"
    assert (await server_answer(client, with_meta(cm(), namespace=later))).startswith("refused")
    await kube.create(ns_obj(later))
    try:

        async def vouched() -> bool:
            return (await check.check(with_meta(cm(), namespace=later))).vouched

        await eventually(vouched, what="the new namespace is read")
        before = sum(client.requests.values())
        assert (await check.check(with_meta(cm(), name="again", namespace=later))).vouched
        assert sum(client.requests.values()) == before
    finally:
        await kube.delete("v1", "Namespace", later, propagation="Background")


async def test_many_namespaces_created_since_the_last_reading_are_read_in_one_go(
    client: KubeClient, kube: KubeClient, namespace: str
) -> None:
    """A sync of many apps into new namespaces: after a few namespaces read one by one
    (a GET and a quota list each), the next one not known makes everything be read again,
    so 20 new namespaces cost far fewer than 40 requests."""
    check = SchemaCheck(client)
    check.admission = Admission(reread_age=0.0)
    assert (await check.check(with_meta(cm(), namespace=namespace))).vouched
    names = [f"t-{uuid.uuid4().hex[:10]}" for _ in range(20)]
    await asyncio.gather(*(kube.create(ns_obj(n)) for n in names))
    try:
        before = sum(client.requests.values())
        verdicts = await asyncio.gather(*(check.check(with_meta(cm(), namespace=n)) for n in names))
        assert [v.why_not for v in verdicts if not v.vouched] == []
        sent = sum(client.requests.values()) - before
        # One by one: 2 per namespace. Here: LOOKUPS_BEFORE_REREAD of them, then one reading
        # of the webhooks, policies, quotas and namespaces (7 lists on this server).
        assert sent <= 2 * LOOKUPS_BEFORE_REREAD + 7 < 2 * len(names), sent
        again = sum(client.requests.values())
        assert all(v.vouched for v in await asyncio.gather(
            *(check.check(with_meta(cm(), name="again", namespace=n)) for n in names)
        ))  # fmt: skip
        assert sum(client.requests.values()) == again
    finally:
        for n in names:
            await kube.delete("v1", "Namespace", n, propagation="Background")


async def test_many_objects_into_one_new_namespace_cost_one_look_up(
    client: KubeClient, kube: KubeClient, namespace: str
) -> None:
    """Objects checked at once into one namespace created since the last reading: the
    namespace is read once (its Namespace and its quotas), not everything again."""
    check = SchemaCheck(client)
    check.admission = Admission(reread_age=0.0)
    assert (await check.check(with_meta(cm(), namespace=namespace))).vouched
    later = f"t-{uuid.uuid4().hex[:10]}"
    await kube.create(ns_obj(later))
    try:
        before = sum(client.requests.values())
        objs = [with_meta(cm(), name=f"cm-{i}", namespace=later) for i in range(20)]
        verdicts = await asyncio.gather(*(check.check(o) for o in objs))
        assert [v.why_not for v in verdicts if not v.vouched] == []
        assert sum(client.requests.values()) - before == 2
    finally:
        await kube.delete("v1", "Namespace", later, propagation="Background")


async def test_a_changed_crd_schema_is_read_again(
    client: KubeClient, kube: KubeClient, namespace: str, widget_group: str
) -> None:
    """A CRD loosened on the server is seen once the cached schema is older than the TTL
    (0 here: every check may read it again)."""
    check = SchemaCheck(client)
    check.openapi = OpenAPI(ttl=0.0)
    big = with_meta(widget(widget_group, size=15), namespace=namespace)

    async def refused() -> bool:
        verdict = await check.check(big)
        return verdict.invalid and verdict.problems == ("spec.size: must be at most 10",)

    await eventually(refused, timeout=WAIT, what="the Widget schema is published and read")
    crd = yaml.safe_load((FIXTURES / "widget-crd.yaml").read_text())
    crd["metadata"]["name"] = f"widgets.{widget_group}"
    crd["spec"]["group"] = widget_group
    size = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    size["properties"]["size"]["maximum"] = 20
    await kube.apply(crd)

    async def accepted() -> bool:
        return await server_answer(client, big) == "accepted"

    await eventually(accepted, what="the server takes the new maximum")
    assert (await check.check(big)).vouched
