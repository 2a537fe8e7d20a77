"""Projects: loading an app's Project (with a short cache), its rules as pure functions
returning violations, and the refusal the engine raises when they are broken."""

from tether.project.enforce import (
    ProjectViolation,
    enforce_app,
    enforce_render,
    refuse,
    windows_in_force,
)
from tether.project.rules import Violation, check_app, check_object, check_objects
from tether.project.source import ProjectSource

__all__ = [
    "ProjectSource",
    "ProjectViolation",
    "Violation",
    "check_app",
    "check_object",
    "check_objects",
    "enforce_app",
    "enforce_render",
    "refuse",
    "windows_in_force",
]
