"""The app rendered at chosen revisions of its sources, through the engine's own path
(``tether.desired.DesiredSource``: credentials, resolve, render with the shared render
cache, then ``prepare`` to place each object in its namespace), in this process.

The render cache keys a render by the git object ids of what the renderer reads, so a
commit that did not touch the app (another app's directory in the same repository) costs
no render: ``renders`` and ``reused`` count what ran and what the cache saved.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tether.api.application import Application
from tether.api.source import Source
from tether.desired import DesiredSource, Resolved
from tether.errors import TetherError
from tether.model import Manifest, ResourceKey
from tether.render.cache import RenderCache
from tether.render.pipeline import Checkout, RenderContext


class AppRenderer:
    """Renders one app at per-source revisions; every render shares one cache."""

    def __init__(self, desired: DesiredSource, app: Application, cache_size: int) -> None:
        self.desired = desired
        self.app = app
        self.cache = RenderCache(cache_size)
        self._ctx: RenderContext | None = None
        self.synced: list[Resolved] = []

    @property
    def renders(self) -> int:
        return self.cache.renders_total

    @property
    def reused(self) -> int:
        return self.cache.hits_total

    async def resolve(self, revisions: list[str]) -> list[Resolved]:
        """Each source resolved (fetched, verified where the spec says so) at its revision
        (``""``: its targetRevision); kept as ``synced``."""
        ds = self.desired
        self.synced = [
            await ds.resolve_source(self.app, _at(s, rev), None)
            for s, rev in zip(self.app.sources, revisions, strict=True)
        ]
        ctx = await ds.render_context(self.app)
        self._ctx = dataclasses.replace(ctx, cache=self.cache)
        return self.synced

    def moved(self, index: int, commit: str) -> list[Resolved]:
        """The synced sources with source ``index`` (a Git source) at ``commit`` instead."""
        r = self.synced[index]
        git, url = self.desired.git, r.source.repo_url

        async def export(dest: Path) -> None:
            await git.export(url, commit, dest)

        checkout = Checkout(git.view(url, commit), export, commit)
        out = list(self.synced)
        out[index] = dataclasses.replace(r, revision=commit, checkout=checkout)
        return out

    async def objects(self, resolved: list[Resolved]) -> dict[ResourceKey, Manifest]:
        """The app's objects (hooks left out) as rendered, by key once placed in their
        namespace. Raises TetherError when a source does not render."""
        assert self._ctx is not None, "resolve() first"
        refs = {r.source.ref: r.checkout for r in resolved if r.source.ref and r.checkout}
        manifests: list[Manifest] = []
        for r in resolved:
            if r.source.renders:
                _, out = await self.desired.render_source(self._ctx, r, refs)
                manifests += out
        _, sources, _ = await self.desired.prepare(self.app, manifests)
        return sources

    async def try_objects(
        self, resolved: list[Resolved]
    ) -> tuple[dict[ResourceKey, Manifest] | None, str]:
        """``objects``, or None and why when the render fails at these revisions."""
        try:
            return await self.objects(resolved), ""
        except TetherError as e:
            return None, e.message


def _at(source: Source, revision: str) -> Source:
    return dataclasses.replace(source, target_revision=revision) if revision else source
