"""Authentication of every API request: the caller is found before the handler runs.

A request under ``/api/v1/`` carries a bearer token (``Authorization``, or
``X-Tether-Authorization`` through the API server's service proxy) checked with a
TokenReview, or the ``tether_session`` cookie of a browser that logged in with such a token
(``tether.server.auth.routes``). A state change made with the cookie must also carry the
session's CSRF token; a bearer token is no ambient credential and needs none. Failed
tokens are counted per client address and per claimed user (``ratelimit``): past the limit
the token is not even sent to the API server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from tether import metrics
from tether.api.names import FORWARDED_AUTH
from tether.errors import KubeError
from tether.server.access import AccessReview, Caller
from tether.server.auth.ratelimit import FailureLimiter, claimed_user_key, client_key
from tether.server.auth.sessions import COOKIE, Session, SessionStore
from tether.server.auth.settings import AuthSettings
from tether.server.errors import ApiError

CALLER: web.RequestKey[Caller] = web.RequestKey("tether.caller", Caller)
"""Where the middleware leaves the ``Caller`` on the request."""
SESSION: web.RequestKey[Session] = web.RequestKey("tether.session", Session)
"""The session of a request authenticated by its cookie (absent for a bearer token)."""
ACCESS: web.AppKey[AccessReview] = web.AppKey("tether.access", AccessReview)
"""The application's ``AccessReview``: handlers ask it ``may(...)``."""
SESSIONS: web.AppKey[SessionStore] = web.AppKey("tether.sessions", SessionStore)
LIMITER: web.AppKey[FailureLimiter] = web.AppKey("tether.auth-limiter", FailureLimiter)
SETTINGS: web.AppKey[AuthSettings] = web.AppKey("tether.auth-settings", AuthSettings)
CSRF_HEADER = "X-CSRF-Token"
PUBLIC_PATHS = ("/healthz", "/readyz", "/api/webhook")
"""Answered without a token: probes, and push webhooks (they carry signatures instead)."""
LOGIN_PATH = "/api/v1/session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TOKEN_HINT = (
    "send 'Authorization: Bearer <token>' with a token the cluster trusts (a ServiceAccount "
    'token, or your OIDC id-token), or log in: POST /api/v1/session {"token": ...}'
)
LOGIN_HINT = "log in again with a token the cluster trusts"


def install_auth(app: web.Application, access: AccessReview, settings: AuthSettings) -> None:
    """Gives ``app`` what the middleware and the session routes use."""
    app[ACCESS] = access
    app[SETTINGS] = settings
    app[SESSIONS] = SessionStore(
        settings.session_ttl, settings.session_review_period, settings.max_sessions
    )
    app[LIMITER] = FailureLimiter(
        settings.failure_limit, settings.failure_window, settings.max_limited_keys
    )


def caller_of(request: web.Request) -> Caller:
    """The authenticated caller of ``request`` (the middleware put it there)."""
    caller = request.get(CALLER)
    if not isinstance(caller, Caller):
        raise ApiError(401, "a bearer token is required", TOKEN_HINT)
    return caller


def session_of(request: web.Request) -> Session | None:
    """The session behind ``request``, when its cookie authenticated it."""
    session = request.get(SESSION)
    return session if isinstance(session, Session) else None


async def session_alive(request: web.Request) -> bool:
    """Whether the caller of a long-lived request (a stream) may still be served: its
    session is neither expired, revoked, nor its token refused on a new review; for a bearer
    token, whether the token still passes TokenReview (answers are cached a few seconds).
    Ask it now and then (e.g. at each keepalive); a ``KubeError`` answers True: the API
    server's silence ends nothing."""
    access = request.app[ACCESS]
    session = session_of(request)
    try:
        if session is not None:
            return await request.app[SESSIONS].recheck(session, access) is not None
        token = bearer_token(request)
        return bool(token) and await access.authenticate(token) is not None
    except KubeError:
        return True


def needs_caller(path: str) -> bool:
    """Whether ``path`` is answered only to an authenticated caller."""
    return path.startswith("/api/v1/")


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization") or request.headers.get(FORWARDED_AUTH) or ""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def refuse(status: int, label: str, message: str, hint: str, reason: str = "") -> ApiError:
    """An ``ApiError``, counted in ``tether_api_auth_failures_total{reason=label}``."""
    metrics.API_AUTH_FAILURES.labels(reason=label).inc()
    return ApiError(status, message, hint, reason=reason)


async def authenticate_token(request: web.Request, token: str) -> Caller:
    """The caller behind ``token``: refused with 429 (no TokenReview sent) while its client
    address or the user it claims has failed too often, else reviewed; a failure counts."""
    limiter = request.app[LIMITER]
    keys = (client_key(request.remote), claimed_user_key(token))
    wait = limiter.retry_after(keys)
    if wait:
        metrics.API_AUTH_FAILURES.labels(reason="rate-limited").inc()
        raise ApiError(
            429,
            "too many failed authentications from this address or for this user",
            f"wait {wait}s, then try again with a valid token",
            reason="TooManyFailedLogins",
            headers={"Retry-After": str(wait)},
        )
    try:
        caller = await request.app[ACCESS].authenticate(token)
    except KubeError as e:
        raise ApiError(
            503,
            f"cannot check the token with the Kubernetes API: {e}",
            "retry",
            reason="KubernetesUnavailable",
        ) from e
    if caller is None:
        limiter.failed(keys)
        raise refuse(401, "invalid-token", "the token is not valid", TOKEN_HINT)
    return caller


async def _session_caller(request: web.Request, session_id: str) -> Session:
    try:
        session = await request.app[SESSIONS].resume(session_id, request.app[ACCESS])
    except KubeError as e:
        raise ApiError(
            503,
            f"cannot check the session's token with the Kubernetes API: {e}",
            "retry",
            reason="KubernetesUnavailable",
        ) from e
    if session is None:
        raise refuse(
            401,
            "session-ended",
            "the session has expired or was ended",
            LOGIN_HINT,
            reason="SessionExpired",
        )
    if request.method in UNSAFE_METHODS and not session.csrf_matches(
        request.headers.get(CSRF_HEADER, "")
    ):
        raise refuse(
            403,
            "csrf-token",
            f"a change made with the session cookie needs the header {CSRF_HEADER}",
            "send the csrfToken of GET /api/v1/session in X-CSRF-Token (scripts: use "
            "'Authorization: Bearer <token>' instead of the cookie)",
            reason="CSRFTokenInvalid",
        )
    return session


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Finds the caller of every ``/api/v1`` request, or answers 401 (403 for a missing
    CSRF token, 429 past the failed-login limit)."""
    if not needs_caller(request.path):
        return await handler(request)
    if ACCESS not in request.app:
        raise ApiError(404, "the API is not enabled on this server")
    if request.path == LOGIN_PATH and request.method == "POST":
        return await handler(request)  # the login checks its token itself
    token = bearer_token(request)
    if token:
        request[CALLER] = await authenticate_token(request, token)
        return await handler(request)
    session_id = request.cookies.get(COOKIE, "")
    if not session_id:
        raise refuse(401, "no-credentials", "a bearer token is required", TOKEN_HINT)
    session = await _session_caller(request, session_id)
    request[SESSION] = session
    request[CALLER] = session.caller
    return await handler(request)
