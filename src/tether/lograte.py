"""Log lines that anyone outside can cause, at most one per cause per interval.

A client that drops its connection, or a repository that keeps failing, must not be able to
fill the log: the first occurrence of a cause is logged as one line (no traceback), repeats
within ``interval`` are only counted, and the next line for that cause says how many were
left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

_MAX_CAUSES = 1024


class RateLimitedLog:
    """``log(level, cause, msg, *args)``: one line per ``cause`` per ``interval`` seconds."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, cause: str, msg: str, *args: object) -> bool:
        """Logs unless ``cause`` was logged less than ``interval`` ago; True when logged."""
        now = self.clock()
        last = self._last.get(cause)
        if last is not None and now - last < self.interval:
            self._suppressed[cause] = self._suppressed.get(cause, 0) + 1
            return False
        if len(self._last) >= _MAX_CAUSES and cause not in self._last:
            # Causes come from outside (addresses, URLs): forget old ones rather than grow.
            self._last.clear()
            self._suppressed.clear()
        self._last[cause] = now
        skipped = self._suppressed.pop(cause, 0)
        if skipped:
            msg += f" ({skipped} more like this since the last such line)"
        self.logger.log(level, msg, *args)
        return True
