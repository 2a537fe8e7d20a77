"""The answers of ``git ls-remote``, kept per repository and credentials for a while, so that
many apps on one repository cost one ls-remote per interval, not one each.

Concurrent askers of one key share one attempt. A failure is an answer too, kept as long:
callers that waited, and the reconciles a failed poll triggers, report it rather than wait on
the same unreachable server again. ``forget`` drops what is kept; with ``in_flight``
(something newer than any answer so far was announced: a push, a refresh asked for) the answer
being asked for at that moment is not kept either, and goes to its own caller alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tether.errors import SourceError
from tether.source.failures import source_error

Refs = dict[str, str]


class RefsCache:
    """Answers by (normalized URL, credentials key), each reused for ``ttl`` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._answers: dict[tuple[str, str], tuple[float, Refs | SourceError]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._forgotten: dict[str, int] = {}
        """How many times each URL's answers were forgotten with ``in_flight`` (``""``: all
        URLs'): an answer is kept only if no such forget came while it was being asked for."""

    async def get(self, url: str, creds: str, ask: Callable[[], Awaitable[Refs]]) -> Refs:
        """The kept answer for (``url``, ``creds``), else ``ask()``'s (kept when it may be)."""
        key = (url, creds)
        async with self._locks.setdefault(key, asyncio.Lock()):
            hit = self._answers.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.ttl:
                if isinstance(hit[1], SourceError):
                    raise source_error(hit[1].reason, hit[1].message, hit[1].hint)
                return dict(hit[1])
            asked = self._generation(url)
            try:
                refs = await ask()
            except SourceError as e:
                self._keep(key, asked, e)
                raise
            self._keep(key, asked, refs)
            return dict(refs)

    def forget(self, url: str = "", *, in_flight: bool = False) -> None:
        """Drops the kept answers (all, or one normalized URL's); with ``in_flight`` the
        answers being asked for now are not kept either."""
        if in_flight:
            self._forgotten[url] = self._forgotten.get(url, 0) + 1
        for key in list(self._answers):
            if not url or key[0] == url:
                del self._answers[key]

    def _keep(
        self, key: tuple[str, str], asked: tuple[int, int], answer: Refs | SourceError
    ) -> None:
        """Keeps ``answer`` unless an ``in_flight`` forget came since it was ``asked``."""
        if self._generation(key[0]) == asked:
            self._answers[key] = (time.monotonic(), answer)

    def _generation(self, url: str) -> tuple[int, int]:
        return self._forgotten.get("", 0), self._forgotten.get(url, 0)


__all__ = ["Refs", "RefsCache"]
