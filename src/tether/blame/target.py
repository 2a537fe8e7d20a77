"""The object a blame asks about: ``KIND/[NAMESPACE/]NAME`` matched against the app's
rendered objects (kind case-insensitively, as ``Deployment``, ``deployment`` or
``deployment.apps``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tether.errors import InvalidSpec
from tether.model import ResourceKey


@dataclass(frozen=True)
class Target:
    kind: str
    namespace: str | None
    name: str

    def __str__(self) -> str:
        ns = f"{self.namespace}/" if self.namespace is not None else ""
        return f"{self.kind}/{ns}{self.name}"


def parse_target(text: str) -> Target:
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidSpec(
            f"{text!r} does not name an object",
            hint="write KIND/NAME or KIND/NAMESPACE/NAME, e.g. deployment/web or "
            "Deployment/shop/web",
        )
    if len(parts) == 2:
        return Target(parts[0], None, parts[1])
    return Target(parts[0], parts[1], parts[2])


def _kind_matches(want: str, key: ResourceKey) -> bool:
    w = want.lower()
    return w == key.kind.lower() or (bool(key.group) and w == f"{key.kind}.{key.group}".lower())


def find_key(target: Target, keys: Iterable[ResourceKey], app: str) -> ResourceKey:
    """The one key ``target`` names. Raises InvalidSpec listing what the app does hold."""
    keys = list(keys)
    found = [
        k
        for k in keys
        if _kind_matches(target.kind, k)
        and k.name == target.name
        and (target.namespace is None or k.namespace == target.namespace)
    ]
    if len(found) == 1:
        return found[0]
    if found:
        where = ", ".join(sorted(str(k) for k in found))
        raise InvalidSpec(
            f"{target} names several objects of {app}: {where}",
            hint="give the namespace: KIND/NAMESPACE/NAME",
        )
    same_kind = sorted(
        f"{k.kind}/{k.namespace + '/' if k.namespace else ''}{k.name}"
        for k in keys
        if _kind_matches(target.kind, k)
    )
    listed = same_kind or sorted({k.kind for k in keys})
    what = "objects of that kind" if same_kind else "kinds"
    raise InvalidSpec(
        f"{app} renders no {target} at its synced revision",
        hint=f"its {what}: {', '.join(listed[:10]) or 'none'}" + ("…" if len(listed) > 10 else ""),
    )
