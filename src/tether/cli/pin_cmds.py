"""``tether app pin`` and ``tether app unpin``: hold an app at a revision without writing Git,
and let it follow its branch again. The pin's line in ``tether app get`` and its mark in
``tether app list`` are in ``pin_text``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from tether.cli.common import EXIT_OK, Ctx, common, print_obj, run, with_engine

# ``X as X``: re-exported, app_cmds and the tests read them here.
from tether.cli.pin_text import pin_line as pin_line
from tether.cli.pin_text import print_pinned, print_unpinned
from tether.cli.pin_text import sync_cell as sync_cell

if TYPE_CHECKING:  # the engine: loaded when a command runs here, not over --server
    from tether.engine import Engine


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

    from tether.service.applications import who_asks
    from tether.service.pinning import pin as pin_app

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

    from tether.service.applications import who_asks
    from tether.service.pinning import unpin as unpin_app

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
