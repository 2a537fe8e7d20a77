"""``tether app pin`` and ``tether app unpin``: hold an app at a revision without writing Git,
and let it follow its branch again; the pin's line in ``tether app get``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from rich.markup import escape

from tether.api.application import UNPINNED_BY_ANNOTATION, Application, Pin
from tether.cli.common import EXIT_OK, Ctx, common, out, print_obj, run, with_engine
from tether.engine import Engine
from tether.errors import KubeError, TetherError
from tether.model import Obj
from tether.pin import resolve_pin, short
from tether.pin.message import commits_behind, list_mark
from tether.service.applications import who_asks

PIN_FIELD_MANAGER = "tether-pin"
"""Its own field manager: re-applying the Application's manifest (``tether app apply``,
another GitOps tool) leaves a pin it does not mention in place."""


@click.command("pin")
@click.argument("name")
@click.argument("revision")
@click.option("--reason", default="", help="Why: shown in the Pinned condition and audited.")
@click.option(
    "--source",
    "source",
    type=int,
    default=None,
    help="With several sources: the one REVISION is for (1-based); the others stay at "
    "their synced revisions.",
)
@common
def app_pin(ctx: Ctx, name: str, revision: str, reason: str, source: int | None) -> None:
    """Hold NAME at REVISION (a commit, tag, branch, chart version or history ID) instead of
    its targetRevision, without writing Git, until 'tether app unpin NAME'."""

    async def go(engine: Engine) -> int:
        app = await engine.get_app(name, ctx.namespace)
        revisions = await resolve_pin(engine, app, revision, source)
        pin = Pin(
            revisions=tuple(revisions),
            by=who_asks(),
            at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            reason=reason,
        )
        written = await _patch(
            engine,
            app,
            {
                "metadata": {"annotations": {UNPINNED_BY_ANNOTATION: None}},
                "spec": {"pin": pin.to_dict()},
            },
        )
        if ctx.output in ("json", "yaml"):
            print_obj(pin.to_dict(), ctx.output)
            return EXIT_OK
        at = ", ".join(short(r) for r in revisions)
        out.print(f"application/{name} pinned at {escape(at)} by {escape(pin.by)}")
        if not Application.from_obj(written).sync_policy.automated:
            out.print(f"automated sync is off: deploy the pin with 'tether app sync {name}'")
        out.print(
            "the controller deploys the pinned revision and reports how far behind it falls; "
            f"follow the branch again with 'tether app unpin {name}'"
        )
        return EXIT_OK

    run(with_engine(ctx, go))


@click.command("unpin")
@click.argument("name")
@common
def app_unpin(ctx: Ctx, name: str) -> None:
    """Remove the pin of NAME: it follows its targetRevision again (auto-sync deploys it)."""

    async def go(engine: Engine) -> int:
        app = await engine.get_app(name, ctx.namespace)
        if app.pin is None:
            raise TetherError(
                f"Application {ctx.namespace}/{name} is not pinned",
                hint=f"see its state with 'tether app get {name}'",
            )
        by = who_asks()
        await _patch(
            engine,
            app,
            {"metadata": {"annotations": {UNPINNED_BY_ANNOTATION: by}}, "spec": {"pin": None}},
        )
        held = ", ".join(short(r) for r in app.pin.revisions)
        targets = ", ".join(s.target_revision or "HEAD" for s in app.sources)
        if ctx.output in ("json", "yaml"):
            print_obj({"unpinned": list(app.pin.revisions), "by": by}, ctx.output)
            return EXIT_OK
        out.print(
            f"application/{name} unpinned (was at {escape(held)}): it follows "
            f"{escape(targets)} again"
        )
        return EXIT_OK

    run(with_engine(ctx, go))


async def _patch(engine: Engine, app: Application, patch: dict[str, Any]) -> Obj:
    """``patch`` at the resourceVersion read, so a change made meanwhile is not overrun."""
    body = {**patch, "metadata": {**patch["metadata"], "resourceVersion": _rv(app)}}
    try:
        return await engine.kube.merge_patch(app.obj, body, field_manager=PIN_FIELD_MANAGER)
    except KubeError as e:
        if e.status == 409:
            raise KubeError(
                f"Application {app.namespace}/{app.name} changed while it was being pinned",
                status=409,
                hint="run the command again",
            ) from e
        raise


def _rv(app: Application) -> str:
    return str((app.obj.get("metadata") or {}).get("resourceVersion") or "")


def pin_line(obj: Obj) -> str | None:
    """``tether app get``'s line for a pinned app: what is held, who, when, why, and how
    far behind as the controller last counted (None when the app is not pinned)."""
    try:
        app = Application.from_obj(obj)
    except TetherError:
        return None
    pin = app.pin
    if pin is None:
        return None
    held = ", ".join(short(r) for r in pin.revisions)
    text = f"{held} by {pin.by or 'unknown'} at {pin.at or '?'}"
    if pin.reason:
        text += f" ({pin.reason})"
    n = commits_behind(pin, app.status.get("pin"))
    if n is not None:
        text += f"; {n} commit{'' if n == 1 else 's'} behind"
    return f"{text}; unpin with 'tether app unpin {app.name}'"


def sync_cell(obj: Obj) -> str:
    """``tether app list``'s SYNC cell: the sync status, and a pin's mark beside it."""
    st = obj.get("status") or {}
    sync = str((st.get("sync") or {}).get("status", "Unknown"))
    raw = (obj.get("spec") or {}).get("pin")
    if not isinstance(raw, dict) or not raw.get("revisions"):
        return sync
    pin = Pin(
        revisions=tuple(str(r) for r in raw.get("revisions") or []),
        at=str(raw.get("at") or ""),
    )
    return f"{sync} ({list_mark(pin, st.get('pin'))})"


def register(app: click.Group) -> None:
    """Adds ``pin`` and ``unpin`` to the ``app`` group."""
    app.add_command(app_pin)
    app.add_command(app_unpin)
