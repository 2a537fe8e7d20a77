"""What a person can ask of tether, whatever the face (the ``tether`` command, the HTTP API):
``ApplicationService`` and the values it takes and returns."""

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
