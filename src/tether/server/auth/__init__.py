"""Who is calling the HTTP API, and what they may do.

The middleware (``auth_middleware``) finds the caller behind every ``/api/v1`` request: a
bearer token checked with a TokenReview (``tether.server.access``), or the cookie of a
session opened with one (``POST /api/v1/session``). A handler reads it with
``caller_of(request)`` and asks ``access.may(caller, verb, namespace)``, a
SubjectAccessReview, before it answers; a long-lived handler (a stream) asks
``session_alive(request)`` now and then and stops when it answers False.
"""

from tether.server.auth.middleware import (
    ACCESS,
    CALLER,
    CSRF_HEADER,
    PUBLIC_PATHS,
    auth_middleware,
    caller_of,
    install_auth,
    session_alive,
    session_of,
)
from tether.server.auth.routes import add_session_routes
from tether.server.auth.sessions import COOKIE, Session, SessionStore
from tether.server.auth.settings import AuthSettings

__all__ = [
    "ACCESS",
    "CALLER",
    "COOKIE",
    "CSRF_HEADER",
    "PUBLIC_PATHS",
    "AuthSettings",
    "Session",
    "SessionStore",
    "add_session_routes",
    "auth_middleware",
    "caller_of",
    "install_auth",
    "session_alive",
    "session_of",
]
