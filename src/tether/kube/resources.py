"""Resource types as discovery describes them (``ApiResource``), the paths of their objects, and
discovery answers read into them: shared by every client of the API, no HTTP library here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ApiResource:
    """One served resource type, as discovery describes it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: frozenset[str]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "", subresource: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base


def split_api_version(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        g, v = api_version.split("/", 1)
        return g, v
    return "", api_version


def discovery_path(api_version: str) -> str:
    """Where discovery lists the resources of ``api_version``."""
    group, version = split_api_version(api_version)
    return f"/apis/{api_version}" if group else f"/api/{version}"


def read_discovery(api_version: str, body: Any) -> list[ApiResource]:
    """The resource types (no subresources) of a discovery answer for ``api_version``."""
    group, version = split_api_version(api_version)
    found: list[ApiResource] = []
    for r in (body or {}).get("resources", []):
        if "/" in r["name"]:
            continue  # subresources
        found.append(
            ApiResource(
                group,
                version,
                r["kind"],
                r["name"],
                bool(r["namespaced"]),
                frozenset(r.get("verbs", [])),
            )
        )
    return found
