"""What a person can ask of tether, whatever the face (the ``tether`` command, the HTTP API):
``ApplicationService`` and the values it takes and returns.

The names below are imported from their modules when first used, so that importing
``tether.service.reading`` (all ``tether app list`` needs) does not load the engine."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.service.applications import ApplicationService, refuse_running, who_asks
    from tether.service.results import (
        OperationInProgress,
        SyncOutcome,
        SyncRequest,
        SyncRequested,
        WaitResult,
        WaitTimedOut,
    )
    from tether.sync.state import RUN_BY_CLI

_WHERE = {
    "RUN_BY_CLI": "tether.sync.state",
    "ApplicationService": "tether.service.applications",
    "OperationInProgress": "tether.service.results",
    "SyncOutcome": "tether.service.results",
    "SyncRequest": "tether.service.results",
    "SyncRequested": "tether.service.results",
    "WaitResult": "tether.service.results",
    "WaitTimedOut": "tether.service.results",
    "refuse_running": "tether.service.applications",
    "who_asks": "tether.service.applications",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "RUN_BY_CLI",
    "ApplicationService",
    "OperationInProgress",
    "SyncOutcome",
    "SyncRequest",
    "SyncRequested",
    "WaitResult",
    "WaitTimedOut",
    "refuse_running",
    "who_asks",
]
