"""Failed-authentication limits: per key, per window, in bounded memory; the key of a token."""

from __future__ import annotations

import base64
import json

import pytest

from tether.server.auth.ratelimit import FailureLimiter, claimed_user_key, client_key

pytestmark = pytest.mark.unit


class Clock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def jwt(claims: dict[str, object]) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def test_a_key_is_refused_after_the_limit_until_its_window_ends() -> None:
    clock = Clock()
    limiter = FailureLimiter(limit=3, window=60, max_keys=100, clock=clock)
    keys = [client_key("10.0.0.1")]
    for _ in range(3):
        assert limiter.retry_after(keys) == 0
        limiter.failed(keys)
    assert limiter.retry_after(keys) == 60
    clock.now += 45.5
    assert limiter.retry_after(keys) == 15  # rounded up: never an early retry
    assert limiter.retry_after([client_key("10.0.0.2")]) == 0  # another address is not held
    clock.now += 15
    assert limiter.retry_after(keys) == 0
    limiter.failed(keys)  # a new window starts with one failure
    assert limiter.retry_after(keys) == 0


def test_any_refused_key_refuses_the_attempt() -> None:
    limiter = FailureLimiter(limit=2, window=60, max_keys=100, clock=Clock())
    user = claimed_user_key(jwt({"sub": "alice"}))
    for address in ("10.0.0.1", "10.0.0.2"):
        limiter.failed([client_key(address), user])
    # A third address, never seen, is refused for the user it claims.
    assert limiter.retry_after([client_key("10.0.0.3"), user]) == 60
    assert limiter.retry_after([client_key("10.0.0.3"), claimed_user_key(jwt({"sub": "bob"}))]) == 0


def test_memory_stays_bounded_under_a_flood_of_distinct_keys() -> None:
    clock = Clock()
    limiter = FailureLimiter(limit=10, window=60, max_keys=10_000, clock=clock)
    for i in range(100_000):
        limiter.failed([client_key(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"), f"token:{i}"])
        assert len(limiter) <= 10_000
    assert len(limiter) == 10_000
    # The most recent failures are the ones remembered.
    last = client_key(f"10.{99_999 >> 16}.{(99_999 >> 8) & 255}.{99_999 & 255}")
    for _ in range(9):
        limiter.failed([last])
    assert limiter.retry_after([last]) == 60


def test_the_claimed_user_of_a_jwt_is_its_unverified_subject() -> None:
    sa = "system:serviceaccount:team-a:deployer"
    assert claimed_user_key(jwt({"sub": sa, "iss": "kubernetes"})) == f"user:{sa}"
    assert claimed_user_key(jwt({"sub": "x" * 1000})) == "user:" + "x" * 256


@pytest.mark.parametrize(
    "token",
    ["opaque-static-token-0123456789", "a.b.c", "e30.bm90IGpzb24.x", jwt({"sub": 7}), jwt([])],
)
def test_a_token_without_a_subject_is_keyed_by_its_digest_never_by_itself(token: str) -> None:
    key = claimed_user_key(token)
    assert key.startswith("token:") and len(key) == len("token:") + 32
    assert token not in key
    assert claimed_user_key(token) == key
