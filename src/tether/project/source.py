"""Reading an app's Project from the cluster, with a short cache: the Project named by
``spec.project``, the built-in default when no Project ``default`` exists, or a refusal.

Read at every reconcile (cached ``ttl`` seconds, as repository credentials are), so that a
Project change is enforced on the next one; the controller also ``forget``s a Project the
moment its watch sees it change (``tether.project.watch``).
"""

from __future__ import annotations

import asyncio
import logging
import time

from tether.api.application import Application
from tether.api.names import DEFAULT_PROJECT
from tether.api.project import (
    PROJECT_API_VERSION,
    PROJECT_KIND,
    Project,
    builtin_default,
)
from tether.errors import InvalidSpec, KubeError, TetherError
from tether.kube import KubeClient
from tether.project.enforce import ProjectViolation

log = logging.getLogger(__name__)


class ProjectSource:
    def __init__(self, kube: KubeClient, *, ttl: float = 0.0) -> None:
        self.kube = kube
        self.ttl = ttl
        """Seconds a Project read is reused (0: read it every time)."""
        self._cache: dict[str, tuple[float, Project | TetherError]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._warned_unreadable = False

    def forget(self, name: str) -> None:
        """The next read of Project ``name`` asks the cluster (it changed)."""
        self._cache.pop(name, None)

    async def project_of(self, app: Application) -> Project:
        """The Project ``app`` names; raises ProjectViolation when it does not exist or
        cannot be read, InvalidSpec when its spec does not read."""
        return await self.get(app.project)

    async def get(self, name: str) -> Project:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            hit = self._cache.get(name)
            if hit is None or time.monotonic() - hit[0] >= self.ttl:
                hit = (time.monotonic(), await self._read(name))
                self._cache[name] = hit
        found = hit[1]
        if isinstance(found, TetherError):
            raise found
        return found

    async def _read(self, name: str) -> Project | TetherError:
        try:
            obj = await self.kube.get(PROJECT_API_VERSION, PROJECT_KIND, name)
        except KubeError as e:
            if e.status == 404:
                obj = None  # the Project CRD is not installed: no Project exists
            elif e.status in (401, 403) and name == DEFAULT_PROJECT:
                return self._unreadable_default(e)
            elif e.status in (401, 403):
                return ProjectViolation(
                    f'cannot read project "{name}": {e.message}',
                    hint="the identity syncing must be allowed to get projects.tether.dev "
                    "(deploy/ grants it to the controller)",
                    rules=("project",),
                )
            else:
                return e
        if obj is None:
            if name == DEFAULT_PROJECT:
                return builtin_default()
            return ProjectViolation(
                f'project "{name}" not found',
                hint="a cluster admin creates it (see docs/projects.md), or set spec.project "
                "to an existing one ('kubectl get projects')",
                rules=("project",),
            )
        try:
            return Project.from_obj(obj)
        except InvalidSpec as e:
            return ProjectViolation(
                f'project "{name}" cannot be used: {e.message}',
                hint=e.hint,
                rules=("project",),
            )

    def _unreadable_default(self, e: KubeError) -> Project:
        """The identity may not read Projects (a CLI user with namespace rights only, an
        older namespaced install): the ``default`` project is then the built-in one, as
        before Projects existed. Such an identity applies with its own rights anyway; the
        controller's own RBAC (deploy/) lets it read Projects, so it enforces them."""
        if not self._warned_unreadable:
            self._warned_unreadable = True
            log.warning(
                "cannot read Project %s (%s): using the built-in default project, which "
                "allows everything; grant get on projects.tether.dev to enforce it",
                DEFAULT_PROJECT,
                e.message,
            )
        return builtin_default()
