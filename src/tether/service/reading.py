"""Reading Applications for the application service: the list of a namespace and one app by
name. Kept apart from ``applications`` (which brings the engine) so that ``tether app list``
and ``app get`` need only a Kubernetes client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.api.application import API_VERSION, KIND, Application
from tether.errors import TetherError
from tether.model import Obj

if TYPE_CHECKING:
    from tether.kube import KubeClient


async def list_apps(kube: KubeClient, namespace: str) -> list[Obj]:
    """The Applications of ``namespace``, by name."""
    items, _ = await kube.list(API_VERSION, KIND, namespace)
    return sorted(items, key=lambda o: str(o["metadata"]["name"]))


async def read_app(kube: KubeClient, name: str, namespace: str) -> Application:
    """The Application ``namespace/name``; a TetherError saying how to find it when absent."""
    obj = await kube.get(API_VERSION, KIND, name, namespace)
    if obj is None:
        raise TetherError(
            f"Application {namespace}/{name} not found",
            hint="list them with 'tether app list' or check -n/--namespace",
        )
    return Application.from_obj(obj)
