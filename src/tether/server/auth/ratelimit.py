"""Failed authentications, counted per client address and per claimed user, in bounded memory.

Past ``limit`` failures of one key within ``window`` seconds, further attempts under that key
are refused (429) before any TokenReview is sent, until the window that started with the
first failure is over. At most ``max_keys`` keys are remembered: the least recently failing
are forgotten first, so a flood of distinct addresses or made-up users cannot grow memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable


class FailureLimiter:
    """Counts failures per key in fixed windows; an LRU of at most ``max_keys`` keys."""

    def __init__(
        self,
        limit: int,
        window: float,
        max_keys: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, keys: Iterable[str]) -> int:
        """Seconds until every one of ``keys`` may try again; 0 when none is refused."""
        now = self.clock()
        wait = 0.0
        for key in keys:
            entry = self._failures.get(key)
            if entry is None:
                continue
            started, count = entry
            left = self.window - (now - started)
            if left <= 0:
                del self._failures[key]
            elif count >= self.limit:
                wait = max(wait, left)
        return math.ceil(wait)

    def failed(self, keys: Iterable[str]) -> None:
        """One failed authentication under each of ``keys``."""
        now = self.clock()
        for key in keys:
            entry = self._failures.pop(key, None)
            if entry is None or now - entry[0] >= self.window:
                entry = (now, 0)
            self._failures[key] = (entry[0], entry[1] + 1)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)


def client_key(address: str | None) -> str:
    """The key of a client address (the TCP peer: forwarded headers are not trusted)."""
    return f"addr:{address or '?'}"


def claimed_user_key(token: str) -> str:
    """The key of the user a token claims to be, before anyone checked it: a JWT's ``sub``
    (ServiceAccount and OIDC tokens are JWTs), or a digest of an opaque token."""
    sub = _unverified_subject(token)
    if sub:
        return f"user:{sub}"
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def _unverified_subject(token: str) -> str:
    parts = token.split(".")
    if len(parts) != 3:
        return ""
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return ""
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub[:256] if isinstance(sub, str) else ""
