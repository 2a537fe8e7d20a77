"""The notification settings as the controller reads them from the real API server: the
tether-notifications ConfigMap and Secret of its home namespace."""

from __future__ import annotations

import pytest

from tether.errors import InvalidSpec
from tether.kube import KubeClient
from tether.notify import CONFIG_NAME, load_sinks

CONFIG = """
- {name: team-chat, type: slack, events: [drift], urlKey: slack-url}
- {name: audit, type: webhook, urlKey: audit-url, secretKey: audit-hmac}
"""
SECRET = {
    "slack-url": "https://hooks.slack.com/services/T000/B000/config-test",
    "audit-url": "https://audit.example.com/hook",
    "audit-hmac": "hmac-config-test",
}


async def put(kube: KubeClient, namespace: str, *, secret: bool) -> None:
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CONFIG_NAME, "namespace": namespace},
            "data": {"sinks": CONFIG},
        }
    )
    if secret:
        await kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": CONFIG_NAME, "namespace": namespace},
                "stringData": SECRET,
            }
        )


async def test_load_sinks_reads_the_configmap_and_the_secret(
    kube: KubeClient, namespace: str
) -> None:
    await put(kube, namespace, secret=True)
    sinks = await load_sinks(kube, namespace)
    assert [(type(s).__name__, s.name) for s in sinks] == [
        ("SlackSink", "team-chat"),
        ("WebhookSink", "audit"),
    ]


async def test_no_configmap_means_no_sinks_and_no_error(kube: KubeClient, namespace: str) -> None:
    assert await load_sinks(kube, namespace) == []


async def test_a_missing_secret_is_named_with_the_sink_and_key(
    kube: KubeClient, namespace: str
) -> None:
    await put(kube, namespace, secret=False)
    with pytest.raises(InvalidSpec) as info:
        await load_sinks(kube, namespace)
    assert "'team-chat'" in str(info.value) and "'slack-url'" in str(info.value)
    assert f"{namespace}/{CONFIG_NAME} does not exist" in str(info.value)
