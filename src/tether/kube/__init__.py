"""The Kubernetes layer: one client adapter and a live-object cache."""

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
