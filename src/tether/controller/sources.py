"""Which repositories an Application reads, as the triggers see them: every source's URL.

Polling and webhooks work on Application objects as the watch delivers them (plain dicts,
possibly invalid), so the sources are read from ``spec.sources`` (or ``spec.source``)
directly. Repository URLs are compared by ``normalize_url``: the same repository spelled
``https://host/x.git`` in one app and ``https://host/x`` in another is polled once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from tether.model import Obj
from tether.source import normalize_url


@dataclass(frozen=True)
class SourceRef:
    """One source of an app, as far as triggers care: where it lives and what it follows."""

    repo_url: str
    target_revision: str = "HEAD"
    chart: str = ""

    @property
    def is_git(self) -> bool:
        """A Git repository (polled with ls-remote); a ``chart`` source is a Helm
        repository, whose versions are resolved again at every refresh instead."""
        return not self.chart


def source_refs(obj: Obj) -> list[SourceRef]:
    """Every source of the Application ``obj``, in order (``spec.sources`` when it has any,
    else ``spec.source``); entries without a ``repoURL`` are left out."""
    spec = obj.get("spec") or {}
    raw: list[Any] = []
    if isinstance(spec, dict):
        many = spec.get("sources")
        if isinstance(many, list) and many:
            raw = many
        elif isinstance(spec.get("source"), dict):
            raw = [spec["source"]]
    out: list[SourceRef] = []
    for src in raw:
        if not isinstance(src, dict) or not src.get("repoURL"):
            continue
        out.append(
            SourceRef(
                repo_url=str(src["repoURL"]),
                target_revision=str(src.get("targetRevision") or "HEAD"),
                chart=str(src.get("chart") or ""),
            )
        )
    return out


def git_urls(obj: Obj) -> list[str]:
    """The Git repository URLs of ``obj``, each repository once (first spelling kept)."""
    seen: dict[str, str] = {}
    for s in source_refs(obj):
        if s.is_git:
            seen.setdefault(repo_key(s.repo_url) or s.repo_url, s.repo_url)
    return list(seen.values())


def has_chart_source(obj: Obj) -> bool:
    """Whether ``obj`` reads a chart from a Helm repository (re-resolved at each poll)."""
    return any(not s.is_git for s in source_refs(obj))


@functools.lru_cache(maxsize=8192)
def repo_key(url: str) -> str:
    """The URL as repositories are matched, or "" for one that cannot be parsed (kept for
    the next ask: the poll loop and every webhook ask it for every app's sources)."""
    try:
        return normalize_url(url)
    except ValueError:
        return ""
