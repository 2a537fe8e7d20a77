"""Reading Applications for the application service: the list of a namespace and one app by
name, through the async client (``list_apps``, ``read_app``) or the one-shot client of short
commands (``list_apps_now``, ``read_app_now``). Kept apart from ``applications`` (which brings
the engine) so that ``tether app list`` and ``app get`` need only a Kubernetes client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.api.names import API_VERSION, KIND
from tether.errors import TetherError

if TYPE_CHECKING:
    from tether.api.application import Application
    from tether.kube import KubeClient
    from tether.kube.oneshot import OneShot
    from tether.model import Obj


async def list_apps(kube: KubeClient, namespace: str) -> list[Obj]:
    """The Applications of ``namespace``, by name."""
    items, _ = await kube.list(API_VERSION, KIND, namespace)
    return by_name(items)


def list_apps_now(kube: OneShot, namespace: str) -> list[Obj]:
    """``list_apps`` through the one-shot client."""
    items, _ = kube.list(API_VERSION, KIND, namespace)
    return by_name(items)


def by_name(items: list[Obj]) -> list[Obj]:
    return sorted(items, key=lambda o: str(o["metadata"]["name"]))


async def read_app(kube: KubeClient, name: str, namespace: str) -> Application:
    """The Application ``namespace/name``; a TetherError saying how to find it when absent
    (or, from ``Application.from_obj``, what is wrong with its spec)."""
    return parsed(await kube.get(API_VERSION, KIND, name, namespace), name, namespace)


def read_app_now(kube: OneShot, name: str, namespace: str) -> Application:
    """``read_app`` through the one-shot client."""
    return parsed(kube.get(API_VERSION, KIND, name, namespace), name, namespace)


def parsed(obj: Obj | None, name: str, namespace: str) -> Application:
    from tether.api.application import Application

    if obj is None:
        raise TetherError(
            f"Application {namespace}/{name} not found",
            hint="list them with 'tether app list' or check -n/--namespace",
        )
    return Application.from_obj(obj)
