"""The controller's watch on Projects: when one changes (or appears, or goes), its cached
copy is dropped and every app that names it is reconciled at once, rather than at its next
poll or resync."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from tether.api.names import project_name
from tether.api.project import PROJECT_API_VERSION, PROJECT_KIND
from tether.errors import KubeError
from tether.kube import KubeClient, LiveCache
from tether.model import Obj
from tether.project.source import ProjectSource

if TYPE_CHECKING:
    from tether.controller.controller import Controller

log = logging.getLogger(__name__)

AppKey = tuple[str, str]
REASON = "project"
"""The reason the requeued apps are reconciled for."""


class ProjectWatch:
    def __init__(
        self,
        kube: KubeClient,
        projects: ProjectSource,
        apps: Mapping[AppKey, Obj],
        requeue: Callable[[AppKey, str], None],
    ) -> None:
        self.projects = projects
        self.apps = apps
        self.requeue = requeue
        self.cache = LiveCache(kube)
        self.cache.add_listener(self._on_event)

    async def start(self) -> bool:
        """Starts watching; False (logged) when Projects cannot be watched: the CRD is not
        installed or the controller may not list them. Projects are then still read at each
        reconcile, and a change is seen at the app's next poll or resync."""
        try:
            await self.cache.ensure(PROJECT_API_VERSION, PROJECT_KIND)
        except KubeError as e:
            log.warning("not watching Projects (%s): changes apply at each app's next poll", e)
            return False
        return True

    async def run(self) -> None:
        """Watches until cancelled."""
        try:
            if await self.start():
                await asyncio.Event().wait()
        finally:
            await self.cache.close()

    def _on_event(self, event: str, obj: Obj) -> None:
        name = str((obj.get("metadata") or {}).get("name") or "")
        self.projects.forget(name)
        keys = [k for k, app in list(self.apps.items()) if project_name(app) == name]
        for key in keys:
            self.requeue(key, REASON)
        if keys:
            log.info("Project %s %s: reconciling its %d app(s)", name, event.lower(), len(keys))


async def watch_projects(controller: Controller) -> None:
    """The controller's ProjectWatch, until cancelled (``tether.controller.runtime``)."""
    engine = controller.engine
    await ProjectWatch(
        controller.kube, engine.projects, controller.apps, controller.refresh_app
    ).run()
