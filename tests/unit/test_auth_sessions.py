"""Sessions in memory: ids and CSRF tokens, expiry, the bound on their number, revocation."""

from __future__ import annotations

import pytest

from tether.server.access import Caller
from tether.server.auth.sessions import SessionStore

pytestmark = pytest.mark.unit
ALICE = Caller(username="alice", groups=("team-a",))
BOB = Caller(username="bob")


def test_a_session_is_found_by_its_id_and_holds_no_id_of_its_own() -> None:
    store = SessionStore(ttl=3600, review_period=60, max_sessions=10)
    session_id, session = store.create(ALICE, "alice-token")
    assert len(session_id) >= 43  # 256 random bits, URL-safe base64
    assert store.find(session_id) is session
    assert store.find(session_id + "x") is None
    assert session_id not in repr(session) and "alice-token" not in repr(session)
    assert session.csrf_token not in repr(session)
    other_id, other = store.create(ALICE, "alice-token")
    assert other_id != session_id and other.csrf_token != session.csrf_token
    assert session.expires_iso().endswith("Z")


def test_the_csrf_token_must_match_exactly() -> None:
    _, session = SessionStore(ttl=3600, review_period=60, max_sessions=10).create(ALICE, "t")
    assert session.csrf_matches(session.csrf_token)
    assert not session.csrf_matches("")
    assert not session.csrf_matches(session.csrf_token[:-1])
    assert not session.csrf_matches(session.csrf_token + "a")


def test_an_expired_session_is_gone_and_signals_its_end() -> None:
    store = SessionStore(ttl=0, review_period=60, max_sessions=10)
    session_id, session = store.create(ALICE, "t")
    assert store.find(session_id) is None
    assert session.ended.is_set() and len(store) == 0


def test_past_the_maximum_the_oldest_session_ends() -> None:
    store = SessionStore(ttl=3600, review_period=60, max_sessions=100)
    created = [store.create(ALICE if i % 2 else BOB, f"t{i}") for i in range(1000)]
    assert len(store) == 100
    first_id, first = created[0]
    assert store.find(first_id) is None and first.ended.is_set()
    last_id, last = created[-1]
    assert store.find(last_id) is last and not last.ended.is_set()


def test_every_session_of_a_user_can_be_ended_and_a_logout_ends_one() -> None:
    store = SessionStore(ttl=3600, review_period=60, max_sessions=10)
    alice = [store.create(ALICE, "a") for _ in range(3)]
    bob_id, bob = store.create(BOB, "b")
    assert store.end(alice[0][1]) is True
    assert store.end(alice[0][1]) is False
    assert store.revoke_user("alice") == 2
    assert all(store.find(i) is None and s.ended.is_set() for i, s in alice)
    assert store.find(bob_id) is bob
    assert store.revoke_user("carol") == 0


def test_sessions_nobody_uses_again_are_forgotten_at_the_next_login() -> None:
    store = SessionStore(ttl=0, review_period=60, max_sessions=10)
    stale = [store.create(ALICE, "a")[1] for _ in range(5)]
    assert len(store) <= 1  # each login forgets the expired ones before it
    assert all(s.ended.is_set() for s in stale[:-1])
