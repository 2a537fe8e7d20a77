"""What the controller remembers about each Application between reconciles (in memory)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from tether.api.application import Application
from tether.controller.events import Change
from tether.model import ResourceKey
from tether.pin import PinState


@dataclass
class AppState:
    generation: int = 0
    refresh_token: str = ""
    drift_reported: dict[ResourceKey, str] = field(default_factory=dict)
    """Object → resourceVersion whose drift was already reported (report each once)."""
    corrections: dict[ResourceKey, deque[float]] = field(default_factory=dict)
    fighting: dict[ResourceKey, Change | None] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    """Failed automated syncs per revision, for the retry policy."""
    health: str = ""
    deleting: str = ""
    """Why the app is being deleted, once the controller has said it will leave it alone."""
    pin: PinState | None = None
    """What the last reconcile found about the app's pin (None: not pinned)."""
    reconciles: int = 0
    """Reconciles finished (or failed) since this controller started."""


def attempt_key(revision: str, app: Application) -> str:
    """Failed attempts count per revision and spec generation."""
    return f"{revision}@{app.generation}"
