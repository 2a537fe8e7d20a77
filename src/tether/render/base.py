"""The contract every renderer meets: what it is given, what it returns, what it reads.

A renderer turns one source of an app, materialized on disk, into manifests. It never
touches git or the cluster: the caller hands it a fresh directory holding the repository at
the commit (``root``), the cluster facts Helm needs, and the sandboxed runner for tools.
Before any checkout is made, ``inputs`` names the repository paths the render will read,
so the render cache can key the result by their git object ids.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from tether.api.source import Source
from tether.model import Manifest
from tether.sandbox import Runner


class RepoView(Protocol):
    """Read-only view of a repository at one commit, without a checkout (git objects)."""

    def read(self, path: str) -> bytes | None:
        """The blob at ``path`` (symlinks not followed), or None if there is none."""
        ...

    def is_dir(self, path: str) -> bool: ...

    def listdir(self, path: str) -> list[str]:
        """Names (not paths) directly under directory ``path``; ``""`` is the root."""
        ...

    def object_id(self, path: str) -> str | None:
        """The git id of the tree or blob at ``path`` (``""`` is the root tree), or None."""
        ...


class LinkedRepoView(RepoView, Protocol):
    """A view that also shows symlinks as stored (a Git tree's view does)."""

    def readlink(self, path: str) -> str | None:
        """The target of the symlink at ``path`` as stored, or None if it is not a link."""
        ...


T = TypeVar("T")


class ReadFiles(Protocol):
    """Runs a function over a revision's files read straight from git objects, in a worker
    thread with a view of its own (a view serves one thread), beside other reads and never
    beside a fetch of the repository."""

    def __call__(self, fn: Callable[[LinkedRepoView], T]) -> Awaitable[T]: ...


@dataclass
class RenderRequest:
    app: str
    """``<namespace>/<name>`` of the Application, for messages."""
    source: Source
    root: Path
    """A fresh private directory holding the repository at the commit (or, for a Helm
    repository source, the unpacked chart). Nothing outside it may be read."""
    path: str
    """The app's path relative to ``root`` (``""`` for the root itself)."""
    destination_namespace: str = ""
    release_name: str = ""
    """The Helm release name when the spec gives none: the Application's name."""
    kube_version: str = ""
    """The live cluster's version, e.g. ``1.20.2`` (Helm's ``--kube-version``)."""
    api_versions: tuple[str, ...] = ()
    """Every group/version and group/version/Kind the cluster serves (``--api-versions``)."""
    refs: Mapping[str, Path] = field(default_factory=dict)
    """``ref`` name -> root of that source's checkout, for ``$<ref>/file`` value files."""
    allow_remote: bool = False
    """Remote kustomize bases and Helm chart repositories may be fetched."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment for tools (e.g. a Helm registry/repository config in the sandbox)."""


class Renderer(Protocol):
    """One kind of source: directory (with Jsonnet), Kustomize, Helm."""

    type: str
    """``Directory``, ``Kustomize``, ``Helm`` or ``Jsonnet`` (see tether.api.source)."""

    def version(self) -> str:
        """The tool's version, part of the render cache key (``""`` for in-process code)."""
        ...

    def inputs(self, view: RepoView, source: Source, path: str) -> list[str] | None:
        """Repository paths (dirs or files) whose content decides the output, or None when
        they cannot be known statically (the caller then keys on the whole repository)."""
        ...

    async def render(self, request: RenderRequest, runner: Runner) -> list[Manifest]:
        """The manifests, each with its file and line where known.

        Raises RenderError naming the tool, the file and the tool's own message."""
        ...
