"""What the API server's answers mean to a caller, for every client of it (the pooled async
transport and the one-shot client): the error values of failed requests, their wording, and
which failed requests may be sent again. Standard library and ``orjson`` only, so a command
that imports it pays for no HTTP library.
"""

from __future__ import annotations

import orjson

from tether.backoff import Backoff
from tether.errors import KubeError

DEFAULT_TIMEOUT = 30.0
RETRY_ATTEMPTS = 5
"""Attempts per request, the first included, when the server answers 429 or 5xx."""
RETRY_BACKOFF = Backoff(base=0.2, cap=5.0, jitter=0.5)
"""Waits between attempts when the server does not say (no ``Retry-After``)."""
MAX_RETRY_AFTER = 60.0
"""A longer ``Retry-After`` fails the request at once: a caller's own retry serves it better
than a request held open for minutes."""
USER_AGENT = "tether"

_HINTS = {
    401: "the credentials in the kubeconfig were rejected",
    403: "the identity lacks RBAC permission for this",
    409: "the object changed or another field manager owns the field",
    422: "the object is invalid: fix the manifest in Git",
}


def may_retry(method: str, status: int, preconditions: bool) -> bool:
    """Whether an answer of ``status`` to ``method`` may be retried without doing twice what
    was asked.

    429 (API Priority and Fairness, max-in-flight) and 503 are refusals before the request was
    acted on, so any request may be repeated. Another 5xx may come after the work was done:
    only requests whose repetition lands in the same state are repeated then: reads, PATCH
    (server-side apply and merge patches state the result, not a change), PUT (carries a
    resourceVersion: a repeat after success is a conflict, not a second write) and a DELETE
    bound to one object by preconditions. A create (POST) is never repeated after one.
    A PATCH answered 500 is not repeated either: kube-apiserver answers 500 for a
    server-side apply it cannot build ("failed to create typed patch object"), which no
    repeat changes; 502 and 504 (a proxy or a timeout in front of it) are repeated.
    """
    if status in (429, 503):
        return True
    if status < 500 or status == 501:
        return False
    if method == "PATCH" and status == 500:
        return False
    if method in ("GET", "HEAD", "PATCH", "PUT"):
        return True
    return method == "DELETE" and preconditions


def retry_wait(
    method: str,
    path: str,
    status: int,
    raw: bytes,
    *,
    preconditions: bool,
    attempt: int,
    asked: float | None,
) -> float:
    """Seconds to wait before sending again a request that failed with ``status`` on its
    ``attempt``-th try (``asked``: what ``Retry-After`` asks, or None); raises the request's
    error when it is not to be sent again: unsafe to repeat (:func:`may_retry`), out of
    attempts (:data:`RETRY_ATTEMPTS`), or asked to wait past :data:`MAX_RETRY_AFTER`."""
    if not may_retry(method, status, preconditions):
        raise api_error(method, path, status, raw)
    if attempt >= RETRY_ATTEMPTS:
        raise api_error(method, path, status, raw, f"gave up after {attempt} attempts")
    wait = asked if asked is not None else RETRY_BACKOFF.delay(attempt)
    if wait > MAX_RETRY_AFTER:
        raise api_error(method, path, status, raw, f"the server asked to retry after {wait:.0f}s")
    return wait


def api_error(method: str, path: str, status: int, raw: bytes, retried: str = "") -> KubeError:
    """The error of an answer ``status`` (>= 300) with body ``raw`` to ``method path``: the
    server's own message and reason (a ``Status`` body), and what to do for the usual ones."""
    message = raw.decode(errors="replace")[:500]
    reason = ""
    try:
        body = orjson.loads(raw)
        message = str(body.get("message", message))
        reason = str(body.get("reason", ""))
    except (ValueError, AttributeError):
        pass
    if retried:
        message += f" ({retried})"
    return KubeError(
        f"{method} {path}: {status} {reason}: {message}".replace(":  :", ":"),
        status=status,
        hint=_HINTS.get(status, ""),
    )


def unreachable(server: str, error: BaseException) -> KubeError:
    """The error of a request that got no answer from ``server`` (refused, reset, TLS)."""
    return KubeError(
        f"cannot reach the Kubernetes API at {server}: {error}",
        hint="check that the cluster is running and the kubeconfig points at it",
    )


def timed_out(method: str, path: str, seconds: float) -> KubeError:
    return KubeError(f"{method} {path} timed out after {seconds:.0f}s")


def unserved(api_version: str, kind: str, served: list[str]) -> KubeError:
    """The error of a kind the cluster's discovery does not list in ``api_version``;
    ``served``: the other versions of its group that serve it (``autoscaling/v2beta2`` for
    ``autoscaling/v2`` on a 1.20 cluster), so the hint says which to use."""
    if served:
        which = "that apiVersion" if len(served) == 1 else "one of those apiVersions"
        hint = (
            f"this cluster serves {kind} as {', '.join(served)}: use {which}, "
            f"or a cluster that serves {api_version}"
        )
    else:
        hint = "check the apiVersion, or install the CRD that defines it"
    return KubeError(
        f"the cluster does not serve kind {kind} in apiVersion {api_version}",
        status=404,
        hint=hint,
    )
