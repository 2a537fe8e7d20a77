"""The controller's render cache, metered: renders done (by type), their duration, and hits.

``tether_renders_total{type}`` and ``tether_render_duration_seconds{type}`` count each
render the cache did not save (``type`` is the render type when the caller names it);
``tether_render_cache_hits_total`` follows the cache's own hit counter, so a render shared
by two apps at once counts as a hit too.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from tether import metrics
from tether.model import Manifest
from tether.render.cache import RenderCache

UNKNOWN_TYPE = "Unknown"


class MeteredRenderCache(RenderCache):
    """A RenderCache that reports every render it runs to ``tether.metrics``."""

    def __init__(self, size: int = 1024) -> None:
        self._hits = 0
        super().__init__(size)

    @property
    def hits_total(self) -> int:
        return self._hits

    @hits_total.setter
    def hits_total(self, value: int) -> None:
        if value > self._hits:
            metrics.RENDER_CACHE_HITS.inc(value - self._hits)
        self._hits = value

    async def get_or_render(
        self,
        key: str,
        render: Callable[[], Awaitable[list[Manifest]]],
        render_type: str = "",
    ) -> list[Manifest]:
        async def timed() -> list[Manifest]:
            t0 = time.perf_counter()
            try:
                return await render()
            finally:
                metrics.record_render(render_type or UNKNOWN_TYPE, time.perf_counter() - t0)

        return await super().get_or_render(key, timed, render_type)
