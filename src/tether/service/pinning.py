"""Holding an Application at a revision and letting it go (``tether app pin``/``unpin`` and
the HTTP API's ``POST``/``DELETE .../pin``): the writes, without the printing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tether.api.application import UNPINNED_BY_ANNOTATION, Application, Pin
from tether.engine import Engine
from tether.errors import KubeError, TetherError
from tether.model import Obj
from tether.pin import resolve_pin

ATTEMPTS = 3
PIN_FIELD_MANAGER = "tether-pin"
"""Its own field manager: re-applying the Application's manifest (``tether app apply``,
another GitOps tool) leaves a pin it does not mention in place."""


@dataclass
class Unpinned:
    revisions: list[str]
    by: str

    def to_dict(self) -> dict[str, Any]:
        return {"unpinned": self.revisions, "by": self.by}


async def pin(
    engine: Engine,
    name: str,
    namespace: str,
    revision: str,
    *,
    by: str,
    reason: str = "",
    source: int | None = None,
) -> tuple[Pin, Application]:
    """Pins the app at ``revision`` (a commit, tag, branch, chart version or history ID;
    ``source``: 1-based, with several sources). The controller audits the pin with ``by``.
    Returns the pin and the Application as written."""
    for attempt in range(ATTEMPTS):
        app = await engine.get_app(name, namespace)
        revisions = await resolve_pin(engine, app, revision, source)
        held = Pin(
            revisions=tuple(revisions),
            by=by,
            at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            reason=reason,
        )
        patch = {
            "metadata": {"annotations": {UNPINNED_BY_ANNOTATION: None}},
            "spec": {"pin": held.to_dict()},
        }
        written = await _patch(engine, app, patch, last=attempt == ATTEMPTS - 1)
        if written is not None:
            break
    assert written is not None
    return held, Application.from_obj(written)


async def unpin(engine: Engine, name: str, namespace: str, *, by: str) -> Unpinned:
    """Removes the pin; the controller audits the unpin with ``by``."""
    for attempt in range(ATTEMPTS):
        app = await engine.get_app(name, namespace)
        if app.pin is None:
            raise TetherError(
                f"Application {namespace}/{name} is not pinned",
                hint=f"see its state with 'tether app get {name}'",
            )
        patch = {"metadata": {"annotations": {UNPINNED_BY_ANNOTATION: by}}, "spec": {"pin": None}}
        if await _patch(engine, app, patch, last=attempt == ATTEMPTS - 1) is not None:
            break
    assert app.pin is not None
    return Unpinned(list(app.pin.revisions), by)


async def _patch(
    engine: Engine, app: Application, patch: dict[str, Any], *, last: bool
) -> Obj | None:
    """``patch`` at the resourceVersion read, so a change made meanwhile is not overrun;
    None when the app changed meanwhile (the controller writes its status often): read it
    again and retry, unless this was the ``last`` attempt."""
    rv = str((app.obj.get("metadata") or {}).get("resourceVersion") or "")
    body = {**patch, "metadata": {**patch["metadata"], "resourceVersion": rv}}
    try:
        return await engine.kube.merge_patch(app.obj, body, field_manager=PIN_FIELD_MANAGER)
    except KubeError as e:
        if e.status != 409:
            raise
        if last:
            raise KubeError(
                f"Application {app.namespace}/{app.name} kept changing while it was being "
                "pinned or unpinned",
                status=409,
                hint="try again",
            ) from e
        return None


__all__ = ["PIN_FIELD_MANAGER", "Unpinned", "pin", "unpin"]
