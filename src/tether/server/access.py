"""Who may read what the HTTP API serves: bearer tokens checked by the Kubernetes API server.

A caller's token goes to a TokenReview (is it valid, and whose is it?), and the identity it
names goes to a SubjectAccessReview (may it ``list applications.tether.dev`` in a
namespace?). Kubernetes stays the one place where access is granted: whoever may list an
Application may read its audit trail, and nobody else.

Answers are kept for a few seconds, so a client polling the API costs the API server one
review per token and namespace per period rather than one per request; a revoked grant
takes effect within that period. Tokens are cached by their SHA-256, never in clear.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from tether import metrics
from tether.kube import KubeClient

APPLICATIONS_GROUP = "tether.dev"
APPLICATIONS_RESOURCE = "applications"
REVIEW_TTL = 10.0
"""Seconds a TokenReview or SubjectAccessReview answer is reused."""
_CACHE_MAX = 4096
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Caller:
    """The identity a TokenReview found behind a token."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())


class AccessReview(Protocol):
    """What the HTTP API asks before it answers."""

    async def authenticate(self, token: str) -> Caller | None:
        """The caller behind ``token``, or None when the token is not valid."""
        ...

    async def may_list_applications(self, caller: Caller, namespace: str) -> bool:
        """Whether ``caller`` may list Applications in ``namespace`` ("" for every one)."""
        ...

    async def may(
        self,
        caller: Caller,
        verb: str,
        namespace: str,
        *,
        resource: str = APPLICATIONS_RESOURCE,
        name: str = "",
    ) -> bool:
        """Whether ``caller`` may ``verb`` (``get``, ``list``, ``sync``...) ``resource`` of
        ``tether.dev`` in ``namespace`` ("" for every namespace, or a cluster-scoped one)."""
        ...

    async def may_use_path(self, caller: Caller, verb: str, path: str) -> bool:
        """Whether ``caller`` may ``verb`` the non-resource URL ``path`` (e.g. ``get``
        ``/metrics``, as Kubernetes components protect theirs)."""
        ...


class KubeAccessReview:
    """``AccessReview`` by the API server's TokenReview and SubjectAccessReview.

    The controller's own account needs ``create`` on ``tokenreviews`` and
    ``subjectaccessreviews`` (both installs under deploy/ grant it). Failures to reach the
    API server raise ``KubeError``; the route answers those 503, never "allowed".
    """

    def __init__(self, kube: KubeClient, ttl: float = REVIEW_TTL) -> None:
        self.kube = kube
        self._tokens: _TtlCache[str, Caller | None] = _TtlCache(ttl)
        self._grants: _TtlCache[tuple[Caller, str], bool] = _TtlCache(ttl)

    async def authenticate(self, token: str) -> Caller | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        found, caller = self._tokens.get(key)
        if not found:
            metrics.API_TOKEN_REVIEWS.inc()
            review = await self._review("authentication.k8s.io", "TokenReview", {"token": token})
            caller = _caller(review)
            self._tokens.put(key, caller)
        return caller

    async def may_list_applications(self, caller: Caller, namespace: str) -> bool:
        return await self.may(caller, "list", namespace)

    async def may(
        self,
        caller: Caller,
        verb: str,
        namespace: str,
        *,
        resource: str = APPLICATIONS_RESOURCE,
        name: str = "",
    ) -> bool:
        key = (caller, f"{verb}/{resource}/{namespace}/{name}")
        found, allowed = self._grants.get(key)
        if found:
            return bool(allowed)
        attributes: dict[str, str] = {
            "verb": verb,
            "group": APPLICATIONS_GROUP,
            "resource": resource,
        }
        if namespace:
            attributes["namespace"] = namespace
        if name:
            attributes["name"] = name
        spec = _subject(caller)
        spec["resourceAttributes"] = attributes
        review = await self._review("authorization.k8s.io", "SubjectAccessReview", spec)
        allowed = bool(((review or {}).get("status") or {}).get("allowed"))
        self._grants.put(key, allowed)
        return allowed

    async def may_use_path(self, caller: Caller, verb: str, path: str) -> bool:
        key = (caller, f"{verb}/nonresource/{path}")
        found, allowed = self._grants.get(key)
        if found:
            return bool(allowed)
        spec = _subject(caller)
        spec["nonResourceAttributes"] = {"verb": verb, "path": path}
        review = await self._review("authorization.k8s.io", "SubjectAccessReview", spec)
        allowed = bool(((review or {}).get("status") or {}).get("allowed"))
        self._grants.put(key, allowed)
        return allowed

    async def _review(self, group: str, kind: str, spec: dict[str, Any]) -> Any:
        return await self.kube.request(
            "POST",
            f"/apis/{group}/v1/{kind.lower()}s",
            body={"apiVersion": f"{group}/v1", "kind": kind, "spec": spec},
        )


class _TtlCache(Generic[K, V]):
    """Answers kept ``ttl`` seconds. Bounded: a client cycling through random tokens must
    not grow it without end."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._items: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> tuple[bool, V | None]:
        hit = self._items.get(key)
        if hit is None or time.monotonic() - hit[0] >= self.ttl:
            return False, None
        return True, hit[1]

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= _CACHE_MAX:
            self._items.clear()
        self._items[key] = (time.monotonic(), value)


def _subject(caller: Caller) -> dict[str, Any]:
    """The part of a SubjectAccessReview's spec that names who asks."""
    spec: dict[str, Any] = {"user": caller.username, "groups": list(caller.groups)}
    if caller.uid:
        spec["uid"] = caller.uid
    if caller.extra:
        spec["extra"] = {k: list(v) for k, v in caller.extra}
    return spec


def _caller(review: Any) -> Caller | None:
    status = (review or {}).get("status") or {}
    user = status.get("user") or {}
    if not status.get("authenticated") or not user.get("username"):
        return None
    extra = user.get("extra") or {}
    return Caller(
        username=str(user["username"]),
        uid=str(user.get("uid") or ""),
        groups=tuple(str(g) for g in user.get("groups") or ()),
        extra=tuple(sorted((str(k), tuple(str(x) for x in v)) for k, v in extra.items())),
    )
