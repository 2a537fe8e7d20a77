"""Browser sessions: a login token exchanged for a random session id held in memory.

A session remembers the caller, a CSRF token and, in memory only, the token it came from:
when the session is used after ``review_period`` the token goes to TokenReview again, so a
deleted ServiceAccount (or an expired OIDC token) ends its sessions within that period.
Sessions are bounded in number (the oldest is ended first) and in time (``ttl``); they do
not survive a restart of the process, which only means logging in again.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tether.server.access import AccessReview, Caller

COOKIE = "tether_session"
"""The session cookie's name."""


@dataclass
class Session:
    """One logged-in browser. ``ended`` is set when it expires or is revoked."""

    key: str = field(repr=False)
    """The SHA-256 of the session id: the store's key (the id is only in the cookie)."""
    caller: Caller
    token: str = field(repr=False)
    csrf_token: str = field(repr=False)
    expires_at: float
    """Wall-clock seconds (``time.time()``) after which the session is over."""
    reviewed_at: float
    """Monotonic seconds of the token's last TokenReview."""
    ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at

    def expires_iso(self) -> str:
        return datetime.fromtimestamp(self.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def csrf_matches(self, sent: str) -> bool:
        """Whether ``sent`` is this session's CSRF token (compared in constant time)."""
        return hmac.compare_digest(sent.encode(), self.csrf_token.encode())


class SessionStore:
    """Sessions by the SHA-256 of their id (the id itself is only in the browser's cookie)."""

    def __init__(self, ttl: float, review_period: float, max_sessions: int) -> None:
        self.ttl = ttl
        self.review_period = review_period
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, caller: Caller, token: str) -> tuple[str, Session]:
        """A new session for ``caller`` (whose ``token`` a TokenReview just accepted): its
        id, for the cookie, and the session."""
        session_id = secrets.token_urlsafe(32)
        session = Session(
            key=_key(session_id),
            caller=caller,
            token=token,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=time.time() + self.ttl,
            reviewed_at=time.monotonic(),
        )
        self._sessions[session.key] = session
        self._forget_expired()
        while len(self._sessions) > self.max_sessions:
            _, oldest = self._sessions.popitem(last=False)
            oldest.ended.set()
        return session_id, session

    def find(self, session_id: str) -> Session | None:
        """The live session of ``session_id``; None (and it is forgotten) once expired."""
        key = _key(session_id)
        session = self._sessions.get(key)
        if session is not None and session.expired():
            self._end(key)
            return None
        return session

    async def resume(self, session_id: str, access: AccessReview) -> Session | None:
        """``find``, and when the token's last review is older than ``review_period``, a new
        TokenReview: a token no longer valid (or naming someone else) ends the session.
        A ``KubeError`` from the review propagates: the API server's silence ends nothing."""
        session = self.find(session_id)
        return None if session is None else await self.recheck(session, access)

    async def recheck(self, session: Session, access: AccessReview) -> Session | None:
        """``session`` while it lasts: None once it expired, was ended, or its token failed
        the TokenReview that is due every ``review_period``."""
        if session.ended.is_set():
            return None
        if session.expired():
            self._end(session.key)
            return None
        now = time.monotonic()
        if now - session.reviewed_at < self.review_period:
            return session
        previous = session.reviewed_at
        session.reviewed_at = now  # concurrent requests do not each send a review
        try:
            caller = await access.authenticate(session.token)
        except BaseException:
            session.reviewed_at = previous
            raise
        if caller is None or caller.username != session.caller.username:
            self._end(session.key)
            return None
        session.caller = caller  # groups may have changed since the login
        return session

    def end(self, session: Session) -> bool:
        """Ends ``session`` (a logout); whether it was still live."""
        return self._end(session.key)

    def revoke_user(self, username: str) -> int:
        """Ends every session of ``username``; how many there were."""
        keys = [k for k, s in self._sessions.items() if s.caller.username == username]
        for key in keys:
            self._end(key)
        return len(keys)

    def _forget_expired(self) -> None:
        """Ends the expired sessions at the front: every session gets the same ``ttl``, so
        the oldest expire first and a session nobody uses again does not wait for eviction."""
        now = time.time()
        while self._sessions:
            key, oldest = next(iter(self._sessions.items()))
            if not oldest.expired(now):
                return
            self._end(key)

    def _end(self, key: str) -> bool:
        session = self._sessions.pop(key, None)
        if session is None:
            return False
        session.ended.set()
        return True


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()
