"""The engine: one façade over the stages Application → desired → compare → sync → status.

The one-shot CLI and the controller both call ``Engine.compare`` and ``Engine.sync``; the
controller only decides *when*. Each stage has its own module: ``tether.desired`` (source and
render), ``tether.live`` (live objects), ``tether.compare``, ``tether.sync.apply`` and
``tether.status``.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from pathlib import Path

from tether.api.application import API_VERSION, Application
from tether.api.names import HISTORY_LIMIT
from tether.compare import Comparer, Comparison, ResourceState, shared_message
from tether.controller.windows import SyncWindow
from tether.desired import (
    DESIRED_MEMO_SIZE,
    CommitInfo,
    Desired,
    DesiredSource,
    default_cache_dir,
)
from tether.errors import TetherError
from tether.kube import KubeClient, LiveCache
from tether.live import LiveObjects
from tether.model import HealthStatus, ResourceKey
from tether.project import windows_in_force
from tether.render.cache import RenderCache
from tether.sandbox import Runner
from tether.source import GitCache
from tether.status import Condition, inventory_of, now
from tether.status import write_status as write_app_status
from tether.sync.apply import ResourceResult, Syncer, SyncResult
from tether.sync.operation import Step, SyncOperation
from tether.sync.state import DEFAULT_TIMEOUT, RUN_BY_CLI, OperationRequest, OperationState
from tether.sync.tracking import manifest_hash, object_sync_options, owned_by


class Engine:
    def __init__(
        self,
        kube: KubeClient,
        git: GitCache | None = None,
        *,
        cache: LiveCache | None = None,
        cache_dir: Path | None = None,
        credentials_ttl: float = 0.0,
        render_cache_size: int = 256,
        credentials_namespace: str = "",
        runner: Runner | None = None,
        render_cache: RenderCache | None = None,
        allow_remote: bool = False,
        desired_memo_size: int = DESIRED_MEMO_SIZE,
    ) -> None:
        self.kube = kube
        self.git = git or GitCache(cache_dir or default_cache_dir())
        self.cache = cache
        self.desired = DesiredSource(
            kube,
            self.git,
            credentials_ttl=credentials_ttl,
            render_cache_size=render_cache_size,
            credentials_namespace=credentials_namespace,
            runner=runner,
            render_cache=render_cache,
            allow_remote=allow_remote,
            memo_size=desired_memo_size,
        )
        self.live = LiveObjects(kube, cache)
        self.comparer = Comparer(kube, self.desired, self.live)
        self.syncer = Syncer(kube, self.comparer, self.live)
        # Each stage's entry point, offered as the engine's own: the CLI and the controller
        # call ``compare``, ``sync`` and ``write_status`` here.
        self.credentials_for = self.desired.credentials_for
        self.projects = self.desired.projects
        self.compare = self.comparer.compare
        self.sync = self.syncer.sync
        self.write_status = partial(write_app_status, kube)

    # ---- applications -----------------------------------------------------------------
    async def get_app(self, name: str, namespace: str) -> Application:
        obj = await self.kube.get(API_VERSION, "Application", name, namespace)
        if obj is None:
            raise TetherError(
                f"Application {namespace}/{name} not found",
                hint="list them with 'tether app list' or check -n/--namespace",
            )
        return Application.from_obj(obj)

    async def sync_windows(self, app: Application) -> list[SyncWindow]:
        """The sync windows in force for ``app``: its own, then its Project's. When the
        Project cannot be read, its own alone: the comparison then refuses the app anyway."""
        try:
            project = await self.projects.project_of(app)
        except TetherError:
            project = None
        return windows_in_force(app, project)

    # ---- operations ----------------------------------------------------------------------
    def operation(
        self,
        app: Application,
        request: OperationRequest,
        *,
        run_by: str = RUN_BY_CLI,
        dry_run: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> SyncOperation:
        """A new sync operation for ``request``, to step (``tether.sync.operation``)."""
        return SyncOperation.start(
            self.kube,
            self.comparer,
            self.live,
            app,
            request,
            run_by=run_by,
            dry_run=dry_run,
            timeout=timeout,
        )

    def resume(self, app: Application, *, timeout: float = DEFAULT_TIMEOUT) -> SyncOperation:
        """The operation recorded in ``app.status.operationState``, to step on."""
        return SyncOperation.resume(self.kube, self.comparer, self.live, app, timeout=timeout)

    # ---- delete ----------------------------------------------------------------------
    async def delete_owned(self, app: Application) -> list[ResourceKey]:
        """Cascade delete: every object in the inventory that is still this app's.

        Only the inventory counts: ``LiveObjects.read`` may return more (everything carrying the
        app's label), such as a copy made by hand or an object an earlier app of the same
        name left behind, and those are not this app's to delete."""
        inventory = inventory_of(app)
        live = await self.live.read(app, inventory.items())
        deleted: list[ResourceKey] = []
        for key in sorted(inventory, key=lambda k: (k.kind == "Namespace", k)):
            obj = live.get(key)
            if obj is None:
                continue
            if not owned_by(app, obj) or object_sync_options(obj).get("Delete") == "false":
                continue
            if await self.kube.delete(
                str(obj["apiVersion"]), key.kind, key.name, key.namespace, propagation="Foreground"
            ):
                deleted.append(key)
        return deleted

    # ---- health wait --------------------------------------------------------------------
    async def wait_healthy(
        self, app: Application, timeout: float, interval: float = 1.0, *, revision: str = ""
    ) -> Comparison:
        """Re-compares until the app is Healthy (or Suspended), Degraded, or time runs out.

        ``revision`` is the commit just synced: the app is judged against it, not against
        its ``targetRevision`` (which a sync with ``--revision`` did not deploy).
        """
        deadline = time.monotonic() + timeout
        while True:
            cmp = await self.compare(app, revision or None)
            h = cmp.health.status
            if h in (HealthStatus.HEALTHY, HealthStatus.SUSPENDED, HealthStatus.DEGRADED):
                return cmp
            if cmp.error is not None or time.monotonic() >= deadline:
                return cmp
            await asyncio.sleep(interval)


__all__ = [
    "HISTORY_LIMIT",
    "CommitInfo",
    "Comparison",
    "Condition",
    "Desired",
    "Engine",
    "OperationRequest",
    "OperationState",
    "ResourceResult",
    "ResourceState",
    "Step",
    "SyncOperation",
    "SyncResult",
    "default_cache_dir",
    "manifest_hash",
    "now",
    "shared_message",
]
