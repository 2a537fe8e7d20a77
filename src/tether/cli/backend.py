"""Where a ``tether app`` command gets its answers: the Kubernetes API through the application
service (``DirectApplications``), or tether's HTTP API with ``--server``
(``tether.client.RemoteApplications``). Both answer with the same documents and values, so a
command prints the same thing either way; ``with_backend`` picks one from ``Ctx``."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from tether.cli.common import Ctx, with_kube, with_token
from tether.service.documents import app_document, diff_document
from tether.service.reading import read_app_now

if TYPE_CHECKING:
    from tether.client import RemoteApplications
    from tether.engine import Engine
    from tether.kube import KubeClient
    from tether.kube.oneshot import OneShot
    from tether.model import Obj
    from tether.service import ApplicationService, SyncOutcome, SyncRequest, WaitResult
    from tether.service.follow import Progress
    from tether.sync.state import OperationState


class Applications(Protocol):
    """What the ``tether app`` commands ask, whichever way they ask it. (``app list`` and
    ``app get`` read without an event loop: ``get_now`` and ``list_apps_now`` with a
    kubeconfig, ``tether.client.reading`` with ``--server``.)"""

    async def diff(self, name: str, namespace: str, revision: str | None) -> dict[str, Any]:
        """The ``diff_document`` of the app with Git."""

    async def sync(
        self,
        req: SyncRequest,
        *,
        dry_run: bool = False,
        timeout: float = 120.0,
        progress: Progress | None = None,
    ) -> SyncOutcome: ...

    async def refresh(self, name: str, namespace: str) -> str:
        """Asks for a hard refresh; the annotation's value."""

    async def terminate(
        self, name: str, namespace: str, *, wait: bool = True, timeout: float = 60.0
    ) -> OperationState: ...

    async def wait(
        self,
        name: str,
        namespace: str,
        *,
        health: bool = True,
        sync: bool = True,
        timeout: float = 120.0,
    ) -> WaitResult: ...


class DirectApplications:
    """The application service over the Kubernetes API, answering in documents. The engine
    (and the service over it) is made when a question needs it."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    @functools.cached_property
    def engine(self) -> Engine:
        from tether.engine import Engine

        return Engine(self.kube)

    @functools.cached_property
    def service(self) -> ApplicationService:
        from tether.service.applications import ApplicationService

        return ApplicationService(self.engine)

    async def diff(self, name: str, namespace: str, revision: str | None) -> dict[str, Any]:
        return diff_document(await self.service.diff(name, namespace, revision))

    async def sync(
        self,
        req: SyncRequest,
        *,
        dry_run: bool = False,
        timeout: float = 120.0,
        progress: Progress | None = None,
    ) -> SyncOutcome:
        return await self.service.sync(req, dry_run=dry_run, timeout=timeout, progress=progress)

    async def refresh(self, name: str, namespace: str) -> str:
        from tether.service.refresh import request_refresh

        return await request_refresh(self.engine, name, namespace)

    async def terminate(
        self, name: str, namespace: str, *, wait: bool = True, timeout: float = 60.0
    ) -> OperationState:
        return await self.service.terminate(name, namespace, wait=wait, timeout=timeout)

    async def wait(
        self,
        name: str,
        namespace: str,
        *,
        health: bool = True,
        sync: bool = True,
        timeout: float = 120.0,
    ) -> WaitResult:
        return await self.service.wait(name, namespace, health=health, sync=sync, timeout=timeout)


def get_now(kube: OneShot, name: str, namespace: str) -> Obj:
    """One Application (``app_document``) through the one-shot client (``tether app get``)."""
    return app_document(read_app_now(kube, name, namespace).obj)


async def with_backend(ctx: Ctx, fn: Callable[[Applications], Awaitable[int]]) -> int:
    """Runs ``fn`` with the Kubernetes API, or with tether's API when ``--server`` is given."""
    if ctx.server is None:
        return await with_kube(ctx, lambda kube: fn(DirectApplications(kube)))
    return await with_api(ctx, fn)


async def with_api(ctx: Ctx, fn: Callable[[RemoteApplications], Awaitable[int]]) -> int:
    """Runs ``fn`` with tether's API (``--server`` must be given)."""
    from tether.client import ApiClient, RemoteApplications

    assert ctx.server is not None
    async with ApiClient(with_token(ctx, ctx.server)) as api:
        return await fn(RemoteApplications(api))
