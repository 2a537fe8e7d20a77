"""Enforcing a Project: the refusal (``ProjectViolation``) raised when an app or its render
breaks a rule, so that nothing is applied and nothing is pruned.

The engine calls ``enforce_app`` before it fetches any source and ``enforce_render`` on the
whole render (hooks included) before it compares or plans anything: the CLI and the
controller go through the same two calls.
"""

from __future__ import annotations

from collections.abc import Iterable

from tether.api.application import Application
from tether.api.project import Project
from tether.controller.windows import SyncWindow
from tether.errors import TetherError
from tether.model import Manifest
from tether.project.rules import Violation, check_app, check_objects

SHOWN = 5
"""Violations quoted in one message; the rest are counted."""


class ProjectViolation(TetherError):
    """The app, or an object of its render, is outside its Project's rules (or its Project
    does not exist). Its condition type and reason are ``ProjectViolation``."""

    reason = "ProjectViolation"

    def __init__(self, message: str, *, hint: str = "", rules: Iterable[str] = ()) -> None:
        super().__init__(message, hint=hint)
        self.rules = tuple(dict.fromkeys(rules))
        """The spec fields broken (``sourceRepos``, ``clusterResourceWhitelist``...)."""


def refuse(project: Project, violations: list[Violation]) -> None:
    """Raises ProjectViolation naming each rule broken (none: returns)."""
    if not violations:
        return
    shown = "; ".join(v.message for v in violations[:SHOWN])
    if len(violations) > SHOWN:
        shown += f"; and {len(violations) - SHOWN} more"
    raise ProjectViolation(
        shown,
        hint=f"change the app, or ask a cluster admin to change Project {project.name} "
        f"('kubectl get project {project.name} -o yaml'); until then a sync applies and "
        "prunes nothing",
        rules=(v.rule for v in violations),
    )


def enforce_app(project: Project, app: Application) -> None:
    refuse(project, check_app(project, app))


def enforce_render(project: Project, manifests: Iterable[Manifest]) -> None:
    """Every object of the render (objects and hooks alike) against the project."""
    refuse(project, check_objects(project, manifests))


def windows_in_force(app: Application, project: Project | None) -> list[SyncWindow]:
    """The sync windows that apply to ``app``: its own, then its Project's (each set judged
    apart, both must allow: ``tether.controller.windows``)."""
    extra = list(project.sync_windows) if project is not None else []
    return [*app.sync_windows, *extra]
