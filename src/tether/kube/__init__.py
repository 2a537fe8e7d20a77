"""The Kubernetes layer: one client adapter and a live-object cache.

The cache is loaded on first use: a one-shot command needs the client only.
"""

from typing import TYPE_CHECKING, Any

from tether.kube.client import FIELD_MANAGER, ApiResource, Gone, KubeClient, WatchEvent

if TYPE_CHECKING:
    from tether.kube.cache import Informer, LiveCache

__all__ = [
    "FIELD_MANAGER",
    "ApiResource",
    "Gone",
    "Informer",
    "KubeClient",
    "LiveCache",
    "WatchEvent",
]


def __getattr__(name: str) -> Any:
    if name in ("Informer", "LiveCache"):
        from tether.kube import cache

        return getattr(cache, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
