"""The watch cache against the real API server: what it hands out is a copy of its own (it
keeps objects encoded), so a caller that changes an object it read changes nothing the next
reader sees; changes made in the cluster still arrive, to readers and listeners alike."""

from __future__ import annotations

from typing import Any

from cluster_helpers import eventually
from tether.kube import KubeClient, LiveCache
from tether.model import Obj, ResourceKey


def cm(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


async def test_a_read_is_a_copy_and_changes_in_the_cluster_arrive(
    kube: KubeClient, namespace: str
) -> None:
    await kube.create(cm("held", namespace, color="blue"))
    cache = LiveCache(kube)
    heard: list[tuple[str, Obj]] = []
    cache.add_listener(lambda event, obj: heard.append((event, obj)))
    key = ResourceKey("", "ConfigMap", namespace, "held")
    try:
        await cache.ensure("v1", "ConfigMap", namespace=namespace)
        first = cache.get(key)
        assert first is not None and first["data"] == {"color": "blue"}
        assert first["kind"] == "ConfigMap" and first["apiVersion"] == "v1"

        first["data"]["color"] = "changed by a reader"
        del first["metadata"]
        again = cache.get(key)
        assert again is not None and again["data"] == {"color": "blue"}
        assert again["metadata"]["name"] == "held"
        assert "held" in [o["metadata"]["name"] for o in cache.all_objects()]

        await kube.merge_patch(cm("held", namespace), {"data": {"color": "green"}})

        async def green() -> bool:
            obj = cache.get(key)
            return obj is not None and obj["data"] == {"color": "green"}

        await eventually(green, what="the cluster's change in the cache")
        assert ("MODIFIED", "green") in [(e, o["data"]["color"]) for e, o in heard]

        await kube.delete("v1", "ConfigMap", "held", namespace, propagation="Background")

        async def gone() -> bool:
            return cache.get(key) is None

        await eventually(gone, what="the deletion in the cache")
        assert heard[-1][0] == "DELETED"
    finally:
        await cache.close()
