"""Health of any other object that reports status, from the conventions controllers share."""

from __future__ import annotations

import re

from tether.health._fields import (
    condition,
    is_true,
    mapping,
    optional_int,
    reason_message,
    text,
)
from tether.model import Health, HealthStatus, Obj

# Words controllers put in a condition reason when something is wrong rather than still
# underway (ReconciliationFailed, ErrInitIssuer, InvalidConfig, QuotaExceeded, ...).
_FAILURE_WORDS = (
    "fail",
    "error",
    "invalid",
    "denied",
    "forbidden",
    "unauthorized",
    "backoff",
    "crashloop",
    "expired",
    "exceeded",
)
_ERR_PREFIX = re.compile(r"Err[A-Z]")


def assess(obj: Obj) -> Health | None:
    """Health from observedGeneration and standard conditions, or None if they say nothing."""
    status = mapping(obj, "status")
    if not status:
        return None
    generation = optional_int(mapping(obj, "metadata"), "generation")
    observed = optional_int(status, "observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        return Health(
            HealthStatus.PROGRESSING,
            f"waiting for the controller to observe generation {generation} (at {observed})",
        )
    # kstatus (Flux, cli-utils): Stalled=True means the controller gave up until something
    # changes, Reconciling=True that it is still working. Stalled wins if both linger.
    stalled = condition(obj, "Stalled")
    if is_true(stalled):
        return Health(HealthStatus.DEGRADED, reason_message(stalled))
    reconciling = condition(obj, "Reconciling")
    if is_true(reconciling):
        return Health(HealthStatus.PROGRESSING, reason_message(reconciling))
    for type_ in ("Ready", "Available"):
        cond = condition(obj, type_)
        if cond is None:
            continue
        state = text(cond, "status")
        if state == "True":
            return Health(HealthStatus.HEALTHY, text(cond, "message"))
        if state == "False" and suggests_failure(text(cond, "reason")):
            return Health(HealthStatus.DEGRADED, reason_message(cond))
        return Health(HealthStatus.PROGRESSING, reason_message(cond))
    return None


def suggests_failure(reason: str) -> bool:
    """Whether a condition reason reads as a fault rather than work in progress."""
    lowered = reason.lower()
    return any(word in lowered for word in _FAILURE_WORDS) or bool(_ERR_PREFIX.match(reason))
