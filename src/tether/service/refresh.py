"""Asking the controller to re-read Git and compare an Application now (a hard refresh), for
``tether app refresh`` and ``POST /api/v1/applications/{namespace}/{name}/refresh``."""

from __future__ import annotations

from datetime import UTC, datetime

from tether.api.application import REFRESH_ANNOTATION
from tether.engine import Engine


async def request_refresh(engine: Engine, name: str, namespace: str) -> str:
    """Writes the ``tether.dev/refresh`` annotation (a fresh timestamp, so every request is
    a change the controller sees) and returns its value; raises TetherError when the app
    does not exist."""
    app = await engine.get_app(name, namespace)
    token = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    await engine.kube.merge_patch(
        app.obj, {"metadata": {"annotations": {REFRESH_ANNOTATION: token}}}
    )
    return token


__all__ = ["request_refresh"]
