"""Reading a JSON request body: an object, its fields of the types they must have."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tether.server.errors import ApiError


async def json_body(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}``; anything else is 400."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise ApiError(400, f"the body is not JSON: {e}", hint="send a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body is not a JSON object", hint="send a JSON object")
    return body


def text(body: dict[str, Any], key: str, default: str = "") -> str:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ApiError(400, f"{key!r} must be a string", reason="Invalid", hint=f"got {value!r}")
    return value


def flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ApiError(
            400, f"{key!r} must be true or false", reason="Invalid", hint=f"got {value!r}"
        )
    return value


def number(body: dict[str, Any], key: str, default: int | None) -> int | None:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{key!r} must be an integer", reason="Invalid", hint=f"got {value!r}")
    return value


def objects(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ApiError(
            400, f"{key!r} must be a list of objects", reason="Invalid", hint=f"got {value!r}"
        )
    return value
