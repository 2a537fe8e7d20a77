"""What a person can ask of tether, whatever the face (the ``tether`` command, the HTTP API):
``ApplicationService`` and the values it takes and returns.

The names below are imported from their modules when first used, so that importing
``tether.service.reading`` (all ``tether app list`` needs) does not load the engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.lazy_names import lazy_names

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

__getattr__ = lazy_names(__name__, _WHERE)


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
