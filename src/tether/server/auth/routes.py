"""The session routes: log in with a token, who am I, log out, and end a user's sessions.

``POST /api/v1/session`` is the one ``/api/v1`` route answered without a caller: it checks
the token it is given (rate limited like any other) and answers with the session's CSRF
token and the ``tether_session`` cookie.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from tether.errors import KubeError
from tether.server.auth.middleware import (
    ACCESS,
    LOGIN_PATH,
    SESSIONS,
    SETTINGS,
    authenticate_token,
    caller_of,
    session_of,
)
from tether.server.auth.sessions import COOKIE, Session
from tether.server.errors import ApiError

log = logging.getLogger(__name__)

SESSIONS_PATH = "/api/v1/sessions"
SESSIONS_RESOURCE = "sessions"
"""``delete sessions.tether.dev`` (cluster scope) lets a caller end anyone's sessions."""


def add_session_routes(app: web.Application) -> None:
    """``/api/v1/session`` (POST, GET, DELETE) and ``DELETE /api/v1/sessions?user=``."""
    app.router.add_post(LOGIN_PATH, login)
    app.router.add_get(LOGIN_PATH, whoami)
    app.router.add_delete(LOGIN_PATH, logout)
    app.router.add_delete(SESSIONS_PATH, end_user_sessions)


def session_body(request: web.Request, session: Session | None) -> dict[str, Any]:
    caller = session.caller if session is not None else caller_of(request)
    return {
        "username": caller.username,
        "groups": list(caller.groups),
        "expiresAt": session.expires_iso() if session is not None else "",
        "csrfToken": session.csrf_token if session is not None else "",
    }


async def login(request: web.Request) -> web.Response:
    """``{"token": "..."}`` -> the session body and its cookie."""
    if request.content_type != "application/json":
        # An HTML form can post text/plain cross-site without asking; JSON it cannot.
        raise ApiError(
            415,
            "the login body must be JSON (Content-Type: application/json)",
            reason="UnsupportedMediaType",
        )
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise ApiError(
            400,
            'the body must be {"token": "<a token the cluster trusts>"}',
            "a ServiceAccount token ('kubectl create token NAME', or its token Secret) or an "
            "OIDC id-token",
        )
    caller = await authenticate_token(request, token.strip())
    store = request.app[SESSIONS]
    previous = store.find(request.cookies.get(COOKIE, ""))
    if previous is not None:
        store.end(previous)  # a new login replaces the browser's session, never adds one
    session_id, session = store.create(caller, token.strip())
    log.info("%s logged in from %s", caller.username, request.remote)
    resp = web.json_response(session_body(request, session))
    settings = request.app[SETTINGS]
    resp.set_cookie(
        COOKIE,
        session_id,
        path="/",
        max_age=int(settings.session_ttl),
        httponly=True,
        samesite="Strict",
        secure=settings.secure_cookies or request.scheme == "https",
    )
    return resp


async def whoami(request: web.Request) -> web.Response:
    """The caller, and for a session its expiry and CSRF token (a reloaded page needs it)."""
    return web.json_response(session_body(request, session_of(request)))


async def logout(request: web.Request) -> web.Response:
    """Ends the session of the cookie (the middleware checked its CSRF token)."""
    caller = caller_of(request)
    session = session_of(request)
    ended = False
    if session is not None:
        ended = request.app[SESSIONS].end(session)
        log.info("%s logged out", caller.username)
    resp = web.json_response({"username": caller.username, "ended": ended})
    resp.del_cookie(COOKIE, path="/")
    return resp


async def end_user_sessions(request: web.Request) -> web.Response:
    """``?user=NAME``: ends every session of NAME, for callers who may ``delete``
    ``sessions.tether.dev``."""
    caller = caller_of(request)
    user = request.query.get("user", "").strip()
    if not user:
        raise ApiError(400, "name the user whose sessions to end: ?user=<username>")
    try:
        allowed = await request.app[ACCESS].may(caller, "delete", "", resource=SESSIONS_RESOURCE)
    except KubeError as e:
        raise ApiError(503, f"cannot check access with the Kubernetes API: {e}", "retry") from e
    if not allowed:
        raise ApiError(
            403,
            f"{caller.username} may not delete sessions.tether.dev",
            "a ClusterRole with verb 'delete' on resource 'sessions' of group 'tether.dev' "
            "grants it (see docs/auth.md)",
        )
    ended = request.app[SESSIONS].revoke_user(user)
    log.info("%s ended %d session(s) of %s", caller.username, ended, user)
    return web.json_response({"user": user, "ended": ended})
