"""Pages of a sorted list: ``limit`` and an opaque ``continue`` token (the last key given)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

from tether.server.errors import ApiError

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000
T = TypeVar("T")


def parse_limit(raw: str | None) -> int:
    """``limit``: absent or empty means ``DEFAULT_LIMIT``; 1 to ``MAX_LIMIT``, else 400."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_LIMIT:
        raise ApiError(400, f"invalid limit {raw!r}", hint=f"use a number from 1 to {MAX_LIMIT}")
    return n


def encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_token(token: str) -> str:
    """The key a ``continue`` token carries; 400 when it is not one this server gave."""
    try:
        key = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        text = key.decode()
        if "/" not in text:
            raise ValueError(text)
        return text
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(
            400,
            "invalid continue token",
            hint="pass the 'continue' value of the previous page as it was, or start again "
            "without it",
        ) from None


def page(
    items: Sequence[T], key: Callable[[T], str], limit: int, token: str = ""
) -> tuple[list[T], str]:
    """The ``limit`` items after the token's key (``items`` sorted by ``key``) and the token
    of the next page ("" on the last). An item added or removed between two pages shifts
    nothing: the next page starts after the last key returned, not at an offset."""
    start = 0
    if token:
        after = decode_token(token)
        start = next((i for i, it in enumerate(items) if key(it) > after), len(items))
    chunk = list(items[start : start + limit])
    more = start + limit < len(items)
    return chunk, encode_token(key(chunk[-1])) if more and chunk else ""
