"""Health of batch Jobs from their terminal conditions and suspension."""

from __future__ import annotations

from tether.health._fields import condition, integer, is_true, mapping, reason_message, text
from tether.model import Health, HealthStatus, Obj


def assess(obj: Obj) -> Health:
    # FailureTarget is set while the last pods of a job that has already failed are torn down,
    # before Failed itself; the outcome is settled either way.
    for type_ in ("Failed", "FailureTarget"):
        failed = condition(obj, type_)
        if is_true(failed):
            return Health(HealthStatus.DEGRADED, reason_message(failed))
    complete = condition(obj, "Complete")
    if is_true(complete):
        return Health(HealthStatus.HEALTHY, text(complete, "message"))
    if mapping(obj, "spec").get("suspend") is True:
        return Health(HealthStatus.SUSPENDED, "job is suspended")
    status = mapping(obj, "status")
    return Health(
        HealthStatus.PROGRESSING,
        f"{integer(status, 'active')} active, {integer(status, 'succeeded')} succeeded, "
        f"{integer(status, 'failed')} failed",
    )
