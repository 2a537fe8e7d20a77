"""Which Applications a list shows: search and filters over the objects, pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.api.names import project_name
from tether.model import Obj
from tether.source import redact


@dataclass(frozen=True)
class ListFilter:
    """``search``: a substring (any case) of the name, a repository URL or a path;
    ``sync``, ``health``, ``project``: exact values (comma for several), "" for any."""

    search: str = ""
    sync: str = ""
    health: str = ""
    project: str = ""

    @classmethod
    def of(cls, query: Mapping[str, str]) -> ListFilter:
        return cls(
            search=query.get("search", "").strip(),
            sync=query.get("sync", "").strip(),
            health=query.get("health", "").strip(),
            project=query.get("project", "").strip(),
        )

    def matches(self, obj: Obj) -> bool:
        status = obj.get("status") or {}
        return (
            _one_of(self.sync, str((status.get("sync") or {}).get("status") or "Unknown"))
            and _one_of(self.health, str((status.get("health") or {}).get("status") or "Unknown"))
            and _one_of(self.project, project_name(obj))
            and self._searched(obj)
        )

    def _searched(self, obj: Obj) -> bool:
        if not self.search:
            return True
        needle = self.search.lower()
        return any(needle in text.lower() for text in _searchable(obj))


def sort_key(obj: Obj) -> str:
    """``namespace/name``: the order of the list and the key of its pages."""
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _one_of(wanted: str, value: str) -> bool:
    return not wanted or value in {w.strip() for w in wanted.split(",")}


def _searchable(obj: Obj) -> list[str]:
    spec = obj.get("spec") or {}
    texts = [str((obj.get("metadata") or {}).get("name") or "")]
    sources: list[Any] = [spec.get("source"), *(spec.get("sources") or [])]
    for s in sources:
        if isinstance(s, dict):
            # Masked first: a search must not probe the credentials a URL may carry.
            texts += [redact(str(s.get("repoURL") or "")), str(s.get("path") or "")]
            texts.append(str(s.get("chart") or ""))
    return texts
