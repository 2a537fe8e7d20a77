"""Which renderer a source needs: detection from the files at the app path, and the registry.

The order is Argo CD's: a type the spec names wins; else a kustomization makes it Kustomize,
a ``Chart.yaml`` makes it Helm, a ``*.jsonnet`` file makes it Jsonnet, and anything else is a
plain directory of manifests. A chart from a Helm repository is always Helm.
"""

from __future__ import annotations

import posixpath

from tether.api.source import (
    TYPE_DIRECTORY,
    TYPE_HELM,
    TYPE_JSONNET,
    TYPE_KUSTOMIZE,
    Source,
)
from tether.errors import RenderError
from tether.render.base import Renderer, RepoView

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
CHART_FILE = "Chart.yaml"
TYPES = (TYPE_DIRECTORY, TYPE_KUSTOMIZE, TYPE_HELM, TYPE_JSONNET)

_renderers: dict[str, Renderer] = {}


def repo_path(path: str) -> str:
    """``path`` as a repository-relative POSIX path, ``""`` for the root (``.``, ``./``)."""
    cleaned = posixpath.normpath(path.strip()) if path.strip() else "."
    return "" if cleaned == "." else cleaned.lstrip("/")


def detect(view: RepoView, source: Source, path: str) -> str:
    """The render type of ``source`` at ``path`` (repository-relative) in ``view``.

    A directory (detected, or named by a ``directory`` block) that holds a ``*.jsonnet``
    program, in a subdirectory too when ``directory.recurse`` is set, is reported as
    Jsonnet: the same renderer, which evaluates those programs."""
    if source.is_helm_repository:
        return TYPE_HELM
    where = repo_path(path)
    found = source.explicit_type or _by_files(view, where)
    if found == TYPE_DIRECTORY and view.is_dir(where):
        from tether.render.directory import has_jsonnet

        if has_jsonnet(view, where, source.directory.recurse):
            return TYPE_JSONNET
    return found


def _by_files(view: RepoView, where: str) -> str:
    if not view.is_dir(where):
        # The directory renderer names the missing path in its error.
        return TYPE_DIRECTORY
    names = set(view.listdir(where))
    if names.intersection(KUSTOMIZATION_FILES):
        return TYPE_KUSTOMIZE
    if CHART_FILE in names:
        return TYPE_HELM
    if any(n.endswith(".jsonnet") for n in names):
        return TYPE_JSONNET
    return TYPE_DIRECTORY


def renderer_for(render_type: str) -> Renderer:
    """The renderer of ``render_type``, one instance per process (they keep no per-app state,
    and a tool's version is asked once)."""
    hit = _renderers.get(render_type)
    if hit is None:
        hit = _renderers[render_type] = _new_renderer(render_type)
    return hit


def _new_renderer(render_type: str) -> Renderer:
    # Imported here: each renderer pulls in its own tools' code, and a process that renders
    # only plain directories never needs Helm's.
    if render_type in (TYPE_DIRECTORY, TYPE_JSONNET):
        from tether.render.directory import DirectoryRenderer

        return DirectoryRenderer()
    if render_type == TYPE_KUSTOMIZE:
        from tether.render.kustomize import KustomizeRenderer

        return KustomizeRenderer()
    if render_type == TYPE_HELM:
        from tether.render.helm import HelmRenderer

        return HelmRenderer()
    raise RenderError(
        f"unknown render type {render_type!r}",
        hint=f"use one of {', '.join(TYPES)}",
    )
