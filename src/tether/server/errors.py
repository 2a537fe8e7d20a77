"""The HTTP API's errors, one JSON shape for all of them.

Every refusal is ``{"error": message, "reason": CamelCaseWord, "code": status, "hint": text}``:
``error`` is for a person (and is what older clients of ``/api/v1/audit`` read), ``reason``
for a program, ``hint`` says what to do. Raise ``ApiError`` in a handler; a ``TetherError``
that escapes becomes one too (see ``from_tether_error``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tether.errors import KubeError, TetherError

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "TooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "Unavailable",
}


class ApiError(Exception):
    """An answer other than success: raise it from a handler."""

    def __init__(
        self,
        status: int,
        message: str,
        hint: str = "",
        reason: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint
        self.reason = reason or REASONS.get(status, "Error")
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "error": self.message,
            "reason": self.reason,
            "code": self.status,
            "hint": self.hint,
        }

    def response(self) -> web.Response:
        resp = web.json_response(self.body(), status=self.status)
        resp.headers.update(self.headers)
        if self.status == 401 and "WWW-Authenticate" not in resp.headers:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="tether"'
        return resp


def from_tether_error(e: TetherError) -> ApiError:
    """The answer for an engine error: the Kubernetes API's own status where it gave one
    (404, 409, 422), 503 when it could not be reached, otherwise 409 (the request is sound;
    the app's state refuses it) with the error's reason."""
    if isinstance(e, KubeError):
        if e.status in (404, 409, 422):
            return ApiError(e.status, e.message, e.hint)
        return ApiError(503, e.message, e.hint or "retry", reason="KubernetesUnavailable")
    return ApiError(409, e.message, e.hint, reason=e.reason)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answers every refusal under ``/api/`` in the one JSON shape, including aiohttp's own
    404 (no such route) and 405 (no such method)."""
    try:
        return await handler(request)
    except ApiError as e:
        return e.response()
    except TetherError as e:
        return from_tether_error(e).response()
    except web.HTTPException as e:
        if not request.path.startswith("/api/") or e.status < 400:
            raise
        return ApiError(e.status, e.reason or REASONS.get(e.status, "Error")).response()
