"""The controller's side of a pin: the ``Pinned`` condition, ``status.pin``, the Event, the
audit record and the metrics, once per change; and refusing a request that would leave it.

The pin itself holds the app in ``tether.desired.revision_of``; here it is made loud. A new
pin (``spec.pin.at`` that ``status.pin.at`` does not hold yet) and an unpin (``status.pin``
left while ``spec.pin`` is gone) are each announced once: ``status.pin`` is written first,
so a controller that restarts finds the change recorded and does not announce it again.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from tether import metrics
from tether.api.application import UNPINNED_BY_ANNOTATION, Application
from tether.controller import operation
from tether.controller.outlets import Outlets
from tether.engine import Condition, Engine, now
from tether.errors import TetherError
from tether.kube import KubeClient
from tether.model import Obj
from tether.pin import PinnedError, PinState, observe, pin_message, refuse_unpinned_revision
from tether.sync.state import FAILED, OperationRequest

log = logging.getLogger("tether.controller")

PINNED = "Pinned"
UNPINNED = "Unpinned"


class Pins:
    """Pins of the apps this controller runs."""

    def __init__(self, kube: KubeClient, engine: Engine, out: Outlets) -> None:
        self.kube = kube
        self.engine = engine
        self.out = out

    async def observe(self, app: Application) -> PinState | None:
        """How far behind its targets the pin of ``app`` is now (None: not pinned)."""
        return await observe(self.engine, app)

    @staticmethod
    def condition(app: Application, state: PinState | None) -> Condition | None:
        """``Pinned``, True while ``spec.pin`` is set."""
        if app.pin is None:
            return None
        return Condition(PINNED, pin_message(app.name, app.pin, state), reason=PINNED)

    async def announce(self, app: Application, state: PinState | None) -> Obj | None:
        """Writes ``status.pin`` when it changed and sets the metrics; a new pin or an unpin
        also gets its Event and audit record. Returns the Application as written, if it was."""
        key = (app.namespace, app.name)
        old = app.status.get("pin")
        if app.pin is None or state is None:
            forget_metrics(key)
            if not old:
                return None
            written = await self.kube.patch_status(app.obj, {"pin": None})
            await self._unpinned(app, old)
            return written
        metrics.APP_PINNED.labels(*key).set(1)
        metrics.APP_PIN_COMMITS_BEHIND.labels(*key).set(state.commits_behind)
        new = state.to_status()
        if old == new:
            return None
        written = await self.kube.patch_status(app.obj, {"pin": new})
        # A new pin, not a new count: another time, or other revisions (pinned twice
        # within a second).
        if not isinstance(old, dict) or any(old.get(k) != new[k] for k in ("at", "revisions")):
            await self._pinned(app, state)
        return written

    async def _pinned(self, app: Application, state: PinState) -> None:
        pin = app.pin
        assert pin is not None
        text = pin_message(app.name, pin, state)
        log.warning("%s/%s %s", app.namespace, app.name, text)
        await self.out.event(app, PINNED, text, warning=True)
        if self.out.audit is not None:
            await self.out.audit.record(
                "pin",
                app,
                revision=pin.revisions[0],
                message=pin.reason,
                user=pin.by,
                details={**pin.to_dict(), "status": state.to_status()},
            )

    async def _unpinned(self, app: Application, old: Any) -> None:
        user = app.annotations.get(UNPINNED_BY_ANNOTATION, "")
        revisions = list(old.get("revisions") or []) if isinstance(old, dict) else []
        targets = ", ".join(s.target_revision or "HEAD" for s in app.sources)
        text = (
            f"unpinned by {user or 'someone who removed spec.pin by hand'}: following "
            f"{targets} again"
        )
        log.info("%s/%s %s", app.namespace, app.name, text)
        await self.out.event(app, UNPINNED, text, warning=False)
        if self.out.audit is not None:
            await self.out.audit.record(
                "unpin",
                app,
                revision=revisions[0] if revisions else "",
                message=text,
                user=user,
                details={"revisions": revisions, "pinnedAt": str((old or {}).get("at") or "")},
            )

    async def refuse(self, app: Application, request: OperationRequest) -> Obj | None:
        """A request for a sync to another revision than the pinned one: ended Failed at
        once, with the reason and what to do, where ``tether app sync`` waits for it; the
        request is cleared. Returns the Application as written (None: not refused)."""
        if app.pin is None or not request.revision:
            return None
        try:
            await refuse_unpinned_revision(self.engine, app, request.revision)
        except PinnedError as e:
            why = str(e)
        except TetherError as e:
            why = (
                f"Application {app.namespace}/{app.name} is pinned, and revision "
                f"{request.revision} could not be checked against the pin: {e}"
            )
        else:
            return None
        at = now()
        state: dict[str, Any] = {
            "operation": request.to_dict(),
            "phase": FAILED,
            "message": why,
            "startedAt": at,
            "finishedAt": at,
            "revision": "",
            "runBy": self.out.identity,
            "generation": app.generation,
        }
        # A merge patch: every field of the last operation's state not set here is removed.
        old = app.status.get("operationState") or {}
        stale = {k: None for k in old if k not in state}
        written = await self.kube.patch_status(app.obj, {"operationState": {**stale, **state}})
        log.warning("%s/%s refused a sync request: %s", app.namespace, app.name, why)
        await self.out.event(app, "SyncRefused", why, warning=True)
        cleared = await operation.clear_request(self.kube, written, request.id)
        return cleared or written


def forget_metrics(key: tuple[str, str]) -> None:
    """An app that is not pinned (any more) has no pin series: bounded cardinality."""
    for gauge in (metrics.APP_PINNED, metrics.APP_PIN_COMMITS_BEHIND):
        with contextlib.suppress(KeyError):
            gauge.remove(*key)
