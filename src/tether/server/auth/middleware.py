"""Authentication of every API request: the caller is found before the handler runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from tether.errors import KubeError
from tether.server.access import AccessReview, Caller
from tether.server.errors import ApiError

CALLER: web.RequestKey[Caller] = web.RequestKey("tether.caller", Caller)
"""Where the middleware leaves the ``Caller`` on the request."""
ACCESS: web.AppKey[AccessReview] = web.AppKey("tether.access", AccessReview)
"""The application's ``AccessReview``: handlers ask it ``may(...)``."""
FORWARDED_AUTH = "X-Tether-Authorization"
"""Where a client reaching the API through the Kubernetes API server's service proxy puts
its bearer token: the API server checks and then removes ``Authorization``."""
PUBLIC_PATHS = ("/healthz", "/readyz", "/api/webhook")
"""Answered without a token: probes, and push webhooks (they carry signatures instead)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TOKEN_HINT = (
    "send 'Authorization: Bearer <token>' with a token the cluster trusts (a ServiceAccount "
    "token, or your OIDC id-token)"
)


def caller_of(request: web.Request) -> Caller:
    """The authenticated caller of ``request`` (the middleware put it there)."""
    caller = request.get(CALLER)
    if not isinstance(caller, Caller):
        raise ApiError(401, "a bearer token is required", TOKEN_HINT)
    return caller


def needs_caller(path: str) -> bool:
    """Whether ``path`` is answered only to an authenticated caller."""
    return path.startswith("/api/v1/")


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization") or request.headers.get(FORWARDED_AUTH) or ""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def authenticate_token(access: AccessReview, token: str) -> Caller:
    try:
        caller = await access.authenticate(token)
    except KubeError as e:
        raise ApiError(503, f"cannot check the token with the Kubernetes API: {e}", "retry") from e
    if caller is None:
        raise ApiError(401, "the token is not valid", TOKEN_HINT)
    return caller


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Finds the caller of every ``/api/v1`` request, or answers 401."""
    if needs_caller(request.path):
        if ACCESS not in request.app:
            raise ApiError(404, "the API is not enabled on this server")
        token = bearer_token(request)
        if not token:
            raise ApiError(401, "a bearer token is required", TOKEN_HINT)
        request[CALLER] = await authenticate_token(request.app[ACCESS], token)
    return await handler(request)
