"""Who is calling the HTTP API, and what they may do.

The middleware (``auth_middleware``) finds the caller behind every ``/api/v1`` request: a
bearer token checked with a TokenReview (``tether.server.access``). A handler reads it with
``caller_of(request)`` and asks ``access.may(caller, verb, namespace)``, a
SubjectAccessReview, before it answers.
"""

from tether.server.auth.middleware import (
    ACCESS,
    CALLER,
    PUBLIC_PATHS,
    auth_middleware,
    caller_of,
)

__all__ = ["ACCESS", "CALLER", "PUBLIC_PATHS", "auth_middleware", "caller_of"]
