"""The Kubernetes layer: the async client (``KubeClient``), a live-object cache, and the
one-shot client of short commands (``tether.kube.oneshot``).

Each name is loaded on first use: importing ``tether.kube.oneshot`` (or the configuration)
does not import the async client's HTTP library, and a one-shot command needs no cache.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.kube.cache import Informer, LiveCache
    from tether.kube.client import FIELD_MANAGER, ApiResource, Gone, KubeClient, WatchEvent

__all__ = [
    "FIELD_MANAGER",
    "ApiResource",
    "Gone",
    "Informer",
    "KubeClient",
    "LiveCache",
    "WatchEvent",
]

_WHERE = {
    "FIELD_MANAGER": "client",
    "ApiResource": "client",
    "Gone": "client",
    "KubeClient": "client",
    "WatchEvent": "client",
    "Informer": "cache",
    "LiveCache": "cache",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"tether.kube.{module}"), name)
