"""The knobs of authentication: session lifetime and re-review, failed-login limits, cookies,
and whether ``/metrics`` on the HTTP port is open."""

from __future__ import annotations

from dataclasses import dataclass

SESSION_TTL = 8 * 3600.0
SESSION_REVIEW_PERIOD = 60.0
MAX_SESSIONS = 10_000
FAILURE_LIMIT = 10
FAILURE_WINDOW = 60.0
MAX_LIMITED_KEYS = 10_000


@dataclass(frozen=True)
class AuthSettings:
    """How the HTTP server authenticates; ``tether controller`` fills it from its options."""

    session_ttl: float = SESSION_TTL
    """Seconds a session lasts after login (``--session-ttl``)."""
    session_review_period: float = SESSION_REVIEW_PERIOD
    """A session's token is sent to TokenReview again when the session is used this many
    seconds after the last review: a deleted ServiceAccount or expired token ends it."""
    max_sessions: int = MAX_SESSIONS
    """Sessions held in memory; past it the oldest is ended."""
    secure_cookies: bool = False
    """Mark the session cookie ``Secure`` even on plain HTTP (``--secure-cookies``: TLS ends
    at an ingress in front of tether). Under ``--tls-cert-file`` it is always Secure."""
    failure_limit: int = FAILURE_LIMIT
    """Failed authentications per client address, and per claimed user, within
    ``failure_window`` before further attempts are refused with 429."""
    failure_window: float = FAILURE_WINDOW
    max_limited_keys: int = MAX_LIMITED_KEYS
    """Addresses and users whose failures are remembered; past it the oldest are forgotten."""
    metrics_public: bool = False
    """Serve ``/metrics`` on the HTTP port without a token (``--metrics-public``)."""
