"""``tether app pin`` and ``tether app unpin``: hold an app at a revision without writing Git,
and let it follow its branch again; the pin's line in ``tether app get``."""

from __future__ import annotations

import click

from tether.api.application import Application, Pin
from tether.cli.common import EXIT_OK, Ctx, common, print_obj, run, with_engine
from tether.cli.pin_text import print_pinned, print_unpinned
from tether.engine import Engine
from tether.errors import TetherError
from tether.model import Obj
from tether.pin import short
from tether.pin.message import commits_behind, list_mark
from tether.service.applications import who_asks
from tether.service.pinning import pin as pin_app
from tether.service.pinning import unpin as unpin_app


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
        pin, written = await pin_app(
            engine, name, ctx.namespace, revision, by=who_asks(), reason=reason, source=source
        )
        revisions = pin.revisions
        if ctx.output in ("json", "yaml"):
            print_obj(pin.to_dict(), ctx.output)
            return EXIT_OK
        print_pinned(name, revisions, pin.by, bool(written.sync_policy.automated))
        return EXIT_OK

    run(with_engine(ctx, go))


@click.command("unpin")
@click.argument("name")
@common
def app_unpin(ctx: Ctx, name: str) -> None:
    """Remove the pin of NAME: it follows its targetRevision again (auto-sync deploys it)."""

    async def go(engine: Engine) -> int:
        app = await engine.get_app(name, ctx.namespace)
        done = await unpin_app(engine, name, ctx.namespace, by=who_asks())
        targets = [s.target_revision or "HEAD" for s in app.sources]
        if ctx.output in ("json", "yaml"):
            print_obj(done.to_dict(), ctx.output)
            return EXIT_OK
        print_unpinned(name, done.revisions, targets)
        return EXIT_OK

    run(with_engine(ctx, go))


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
