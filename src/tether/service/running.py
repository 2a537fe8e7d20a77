"""Running a sync in this process (no controller is running for the namespace, or a dry run),
finding whether a controller runs, and turning what an engine recorded into a ``SyncOutcome``.
"""

from __future__ import annotations

from collections.abc import Callable

from tether.api.application import Application
from tether.compare import Comparison
from tether.engine import Engine
from tether.service.results import (
    OperationInProgress,
    SyncOutcome,
    SyncRequest,
    outcome_of_state,
)
from tether.sync.operation import Step, SyncOperation
from tether.sync.record import Busy, run_to_end
from tether.sync.state import (
    RUN_BY_CLI,
    OperationRequest,
    OperationState,
)

MIN_OPERATION_TIMEOUT = 5.0


def here_line(namespace: str) -> str:
    return f"run by this command: no controller is running for namespace {namespace}"


async def dry_run(engine: Engine, app: Application, req: SyncRequest) -> SyncOutcome:
    """What a sync would do, computed here and recorded nowhere: every wave in one go, no
    hook run (they are listed as what would run)."""
    request = OperationRequest(
        trigger="manual",
        revision=req.revision,
        prune=req.prune,
        resources=list(req.resources),
        allow_mass_prune=req.allow_mass_prune,
    )
    op = SyncOperation.start(
        engine.kube, engine.comparer, engine.live, app, request, run_by=RUN_BY_CLI, dry_run=True
    )
    step = await run_to_end(op, engine.kube, app, record=False)
    outcome = outcome_of_state(step.state, by_controller=False)
    if step.result is not None:
        outcome.phase, outcome.message = step.result.phase, step.result.message
        outcome.revision = step.result.revision or outcome.revision
    outcome.dry_run = True
    outcome.runner = "dry run, in this command: nothing was changed or recorded"
    _fold_comparison(outcome, step.comparison)
    return outcome


async def run_here(
    engine: Engine,
    app: Application,
    request: OperationRequest,
    time_left: float,
    say: Callable[[str], None],
) -> SyncOutcome:
    """Runs the operation in this process to its end, recording its progress on the app so
    that ``tether app wait`` and ``terminate-op`` see it (and a controller that starts later
    can take it up)."""
    op = SyncOperation.start(
        engine.kube,
        engine.comparer,
        engine.live,
        app,
        request,
        run_by=RUN_BY_CLI,
        timeout=max(time_left, MIN_OPERATION_TIMEOUT),
    )

    def on_step(step: Step) -> None:
        if step.waiting_for:
            say(step.waiting_for)

    try:
        step = await run_to_end(op, engine.kube, app, record=True, on_step=on_step)
    except Busy as e:
        raise OperationInProgress(e.message, hint=e.hint) from None
    outcome = outcome_of_state(step.state, by_controller=False)
    outcome.runner = here_line(app.namespace)
    _fold_comparison(outcome, step.comparison)
    return outcome


async def end_terminating(engine: Engine, app: Application) -> OperationState:
    """Ends the Terminating operation recorded on ``app`` here (Failed, "terminated"),
    writing its end: for an operation whose engine is gone."""
    op = SyncOperation.resume(engine.kube, engine.comparer, engine.live, app)
    step = await run_to_end(op, engine.kube, app, record=True)
    return step.state


def _fold_comparison(outcome: SyncOutcome, cmp: Comparison | None) -> None:
    if cmp is None:
        return
    outcome.sync_status = cmp.sync_status.value
    outcome.health_status = cmp.health.status.value
    outcome.health_message = cmp.health.message
