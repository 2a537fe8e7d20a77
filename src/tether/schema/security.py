"""The rules of a pod's and a container's ``securityContext`` (``ValidatePodSecurityContext``,
``ValidateSecurityContext`` of the API server), for the fields most manifests set: user and
group ids, ``runAsNonRoot``, ``fsGroup``, ``readOnlyRootFilesystem``,
``allowPrivilegeEscalation``, dropped capabilities and a ``RuntimeDefault``/``Unconfined``
seccomp profile. Anything else (``privileged``, added capabilities, SELinux, Windows options,
sysctls...) sends the object to the server.
"""

from __future__ import annotations

from typing import Any

from tether.schema.rules import Judge

_POD = frozenset({"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "seccompProfile"})
_CONTAINER = frozenset(
    {
        "runAsUser",
        "runAsGroup",
        "runAsNonRoot",
        "readOnlyRootFilesystem",
        "allowPrivilegeEscalation",
        "capabilities",
        "seccompProfile",
    }
)
_IDS = ("runAsUser", "runAsGroup", "fsGroup")
MAX_ID = 2**31 - 1
"""User and group ids are 0 to 2147483647."""


def judge_pod_security(value: Any, j: Judge, path: str) -> None:
    _context(value, _POD, j, path)


def judge_container_security(value: Any, j: Judge, path: str) -> None:
    context = _context(value, _CONTAINER, j, path)
    if not context:
        return
    caps = j.mapping(context.get("capabilities"), f"{path}.capabilities")
    if caps:
        j.only(caps, frozenset({"drop"}), f"{path}.capabilities")


def _context(value: Any, allowed: frozenset[str], j: Judge, path: str) -> dict[str, Any] | None:
    context = j.mapping(value, path)
    if not context:
        return context
    j.only(context, allowed, path)
    for name in _IDS:
        number = j.integer(context.get(name), f"{path}.{name}")
        if number is not None and not 0 <= number <= MAX_ID:
            j.problem(f"{path}.{name}", f"must be between 0 and {MAX_ID}, is {number}")
    seccomp = j.mapping(context.get("seccompProfile"), f"{path}.seccompProfile")
    if seccomp:
        where = f"{path}.seccompProfile"
        j.only(seccomp, frozenset({"type"}), where)
        kind = j.string(seccomp.get("type"), f"{where}.type")
        if kind == "Localhost":
            j.defer(f"{where}.type", "a Localhost profile is judged by the server")
        elif kind is not None and kind not in ("RuntimeDefault", "Unconfined"):
            j.problem(
                f"{where}.type", f"{kind!r} is not one of RuntimeDefault, Unconfined, Localhost"
            )
    return context
