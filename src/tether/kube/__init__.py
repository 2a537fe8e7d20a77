"""The Kubernetes layer: the async client (``KubeClient``), a live-object cache, and the
one-shot client of short commands (``tether.kube.oneshot``).

Each name is loaded on first use: importing ``tether.kube.oneshot`` (or the configuration)
does not import the async client's HTTP library, and a one-shot command needs no cache.
"""

from typing import TYPE_CHECKING

from tether.lazy_names import lazy_names

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
    "FIELD_MANAGER": "tether.kube.client",
    "ApiResource": "tether.kube.client",
    "Gone": "tether.kube.client",
    "KubeClient": "tether.kube.client",
    "WatchEvent": "tether.kube.client",
    "Informer": "tether.kube.cache",
    "LiveCache": "tether.kube.cache",
}

__getattr__ = lazy_names(__name__, _WHERE)
