"""The directory renderer: YAML, JSON and Jsonnet files under an app path, read into manifests.

Which files make the app is ``dir_select``'s answer, and reading them (from a tree, a commit's
git objects or a checkout, links followed inside the repository) ``dir_files``'; here they are
parsed (``parse``), Jsonnet programs evaluated, and the objects assembled in path order with
no object defined twice and no more than ``max_objects``.
"""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tether.api.source import TYPE_DIRECTORY, TYPE_JSONNET, Source
from tether.errors import RenderError
from tether.model import Manifest, ResourceKey
from tether.render import jsonnet
from tether.render.base import LinkedRepoView, ReadFiles, RenderRequest, RepoView
from tether.render.dir_files import (
    DiskFiles,
    Files,
    TreeFiles,
    ViewFiles,
    read_content,
    resolve_links,
)
from tether.render.dir_select import (
    app_directory,
    check_is_directory,
    compile_glob,
    manifest_paths,
)
from tether.render.parse import (
    duplicate_error,
    manifests_of,
    parse_documents,
    to_manifest,
    unique_key,
)
from tether.sandbox import Runner

if TYPE_CHECKING:
    from tether.render import DirectoryOptions, Tree

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
JSONNET_SUFFIX = ".jsonnet"
"""Jsonnet programs evaluated as manifests; ``.libsonnet`` files are only imported."""

MAX_FILE_BYTES = 1_048_576
MAX_OBJECTS = 10_000


class DirectoryRenderer:
    """The :class:`~tether.render.base.Renderer` for a plain directory, Jsonnet programs included.

    YAML and JSON files are parsed in-process; ``*.jsonnet`` files are evaluated by
    :mod:`tether.render.jsonnet` in a sandboxed process.
    """

    type = TYPE_DIRECTORY

    def __init__(
        self, *, max_file_bytes: int = MAX_FILE_BYTES, max_objects: int = MAX_OBJECTS
    ) -> None:
        self.max_file_bytes = max_file_bytes
        self.max_objects = max_objects

    def version(self) -> str:
        return jsonnet.version()

    def detected_type(self, view: RepoView, source: Source, path: str) -> str:
        """``Jsonnet`` when the app's files include a ``*.jsonnet`` program, else ``Directory``."""
        return TYPE_JSONNET if has_jsonnet(view, path, source.directory.recurse) else TYPE_DIRECTORY

    def inputs(self, view: RepoView, source: Source, path: str) -> list[str] | None:
        return directory_inputs(view, source, path)

    async def render(self, request: RenderRequest, runner: Runner) -> list[Manifest]:
        d = request.source.directory
        found = await asyncio.to_thread(
            _read_app,
            DiskFiles(request.root),
            request.path,
            _Options(d.recurse, d.include, d.exclude, jsonnet=True),
            self.max_file_bytes,
        )
        programs = [entry.shown for entry in found if entry.manifests is None]
        results: dict[str, object] = {}
        if programs:
            results = await jsonnet.evaluate(
                request.root, programs, d.jsonnet, runner, app=request.app
            )
        return _assemble(found, results, request.path, self.max_objects)

    async def render_git(self, source: Source, path: str, read: ReadFiles) -> list[Manifest] | None:
        """The render read straight from git objects, with no checkout written; None when
        the app needs one after all (a Jsonnet program reached through a link)."""
        d = source.directory
        options = _Options(d.recurse, d.include, d.exclude, jsonnet=True)

        def read_app(view: LinkedRepoView) -> list[_Entry]:
            return _read_app(ViewFiles(view), path, options, self.max_file_bytes)

        found = await read(read_app)
        if any(entry.manifests is None for entry in found):
            return None
        return _assemble(found, {}, path, self.max_objects)


def render_directory(
    tree: Tree,
    path: str,
    options: DirectoryOptions,
    *,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_objects: int = MAX_OBJECTS,
) -> list[Manifest]:
    """Every object in the manifest files under ``path`` of an in-memory tree, in file order.

    Raises :class:`RenderError` for the first problem found; nothing partial is returned, since
    a missing object would read as "delete it" to the sync layer. Jsonnet programs need a
    checkout on disk and the sandbox: a tree holding them is refused here rather than read as
    empty (see :class:`DirectoryRenderer`).
    """
    opts = _Options(options.recurse, options.include, options.exclude, jsonnet=False)
    found = _read_app(TreeFiles(tree), path, opts, max_file_bytes)
    return _assemble(found, {}, path, max_objects)


def has_jsonnet(view: RepoView, path: str, recurse: bool) -> bool:
    """Whether the app directory holds a ``*.jsonnet`` program (in subdirectories too when
    ``recurse``), read from git objects without a checkout."""
    return bool(_jsonnet_programs(view, app_directory(path), recurse))


def directory_inputs(view: RepoView, source: Source, path: str) -> list[str] | None:
    """The app directory and the files its links lead to elsewhere, plus, for Jsonnet, the
    library directories and every file its programs import from outside them; None when a
    link or an import cannot be followed (the caller then keys on the whole tree)."""
    app_path = app_directory(path)
    recurse = source.directory.recurse
    links = _LinkView.of(view)
    real_app: str | None = app_path
    if links is not None and app_path:
        real_app = links.resolve(app_path)
    if real_app is None:
        return None
    found = [app_path] if real_app == app_path else [app_path, real_app]
    if links is not None:
        targets = _link_targets(view, links, real_app, recurse)
        if targets is None:
            return None
        found += sorted(set(targets))
    programs = _jsonnet_programs(view, real_app, recurse)
    if not programs:
        return found
    scanned = jsonnet.inputs(view, real_app, programs, source.directory.jsonnet)
    return None if scanned is None else sorted(set(found + scanned))


@dataclass
class _LinkView:
    """The symlink half of a view that has one (``tether.source.view.GitTreeView``): without
    it, links are invisible in a view and their targets cannot be keyed."""

    readlink: Callable[[str], str | None]
    resolve: Callable[[str], str | None]

    @classmethod
    def of(cls, view: RepoView) -> _LinkView | None:
        readlink = getattr(view, "readlink", None)
        resolve_path = getattr(view, "resolve", None)
        if callable(readlink) and callable(resolve_path):
            return cls(readlink, resolve_path)
        return None


def _link_targets(
    view: RepoView, links: _LinkView, app_dir: str, recurse: bool
) -> list[str] | None:
    """Where the links among the app's files lead outside the app directory: a change there
    changes the render but not the app directory's git tree."""
    suffixes = (*MANIFEST_SUFFIXES, JSONNET_SUFFIX)
    targets: list[str] = []
    pending = [app_dir]
    while pending:
        here = pending.pop()
        for name in view.listdir(here):
            full = posixpath.join(here, name) if here else name
            if links.readlink(full) is None:
                if recurse and name != ".git" and view.is_dir(full):
                    pending.append(full)
                continue
            if not name.endswith(suffixes):
                continue
            target = links.resolve(full)
            if target is None:
                return None
            if app_dir and target != app_dir and not target.startswith(app_dir + "/"):
                targets.append(target)
    return targets


def _jsonnet_programs(view: RepoView, app_path: str, recurse: bool) -> list[str]:
    found: list[str] = []
    pending = [app_path]
    while pending:
        here = pending.pop()
        for name in view.listdir(here):
            full = posixpath.join(here, name) if here else name
            if name.endswith(JSONNET_SUFFIX):
                found.append(full)
            elif recurse and name != ".git" and view.is_dir(full):
                pending.append(full)
    return sorted(found)


# --- reading the files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    recurse: bool
    include: str
    exclude: str
    jsonnet: bool
    """Whether ``*.jsonnet`` files are collected for evaluation (only with a checkout)."""


@dataclass
class _Entry:
    shown: str
    """The file's path from the repository root, as messages name it."""
    manifests: list[Manifest] | None
    """The file's objects; None for a Jsonnet program still to evaluate."""


def _read_app(files: Files, path: str, options: _Options, max_file_bytes: int) -> list[_Entry]:
    """The app's manifest files in path order, parsed; Jsonnet programs listed for evaluation."""
    app_path = app_directory(path)
    app_dir = resolve_links(files, app_path, app_path or ".")
    check_is_directory(files, app_dir, path)
    include = compile_glob("include", options.include)
    exclude = compile_glob("exclude", options.exclude)
    suffixes = (*MANIFEST_SUFFIXES, JSONNET_SUFFIX)
    entries: list[_Entry] = []
    for rel in manifest_paths(files, app_dir, options.recurse, include, exclude, suffixes):
        shown = posixpath.join(app_path, rel)
        if rel.endswith(JSONNET_SUFFIX):
            if not options.jsonnet:
                raise _jsonnet_needs_checkout(shown)
            if _is_program(files, posixpath.join(app_dir, rel), shown, max_file_bytes):
                entries.append(_Entry(shown, None))
            continue
        data = read_content(files, posixpath.join(app_dir, rel), shown, max_file_bytes)
        if data is not None:
            documents = parse_documents(data, shown)
            entries.append(_Entry(shown, [_directory_manifest(v, shown, n) for v, n in documents]))
    return entries


def _jsonnet_needs_checkout(shown: str) -> RenderError:
    return RenderError(
        "is a Jsonnet program, which is evaluated only when the app renders from a checkout",
        file=shown,
        hint="render the app with tether.render.directory.DirectoryRenderer, or leave the file "
        f"out with directory.exclude: '{posixpath.basename(shown)}'",
    )


def _is_program(files: Files, name: str, shown: str, limit: int) -> bool:
    """Whether ``name`` is a file inside the repository (through links too) of a sane size,
    which gojsonnet then reads from the checkout; False for a link to a directory."""
    return read_content(files, name, shown, limit) is not None


def _assemble(
    entries: list[_Entry], programs: dict[str, object], path: str, max_objects: int
) -> list[Manifest]:
    manifests: list[Manifest] = []
    seen: dict[ResourceKey, Manifest] = {}
    for entry in entries:
        found = entry.manifests
        if found is None:
            found = manifests_of(programs[entry.shown], entry.shown)
        for manifest in found:
            key = unique_key(manifest)  # None: a hook named by generateName
            first = seen.get(key) if key is not None else None
            if first is not None:
                raise duplicate_error(manifest, first)
            if len(manifests) == max_objects:
                raise RenderError(
                    f"more than {max_objects} objects under "
                    f"{app_directory(path) or 'the repository root'}",
                    file=manifest.source_file,
                    line=manifest.line,
                    hint="split the application into smaller ones",
                )
            if key is not None:
                seen[key] = manifest
            manifests.append(manifest)
    return manifests


def _directory_manifest(value: object, file: str, line: int) -> Manifest:
    if isinstance(value, dict):
        _refuse_kustomization(value, file, line)
    return to_manifest(value, file, line)


# --- objects -------------------------------------------------------------------------------------

# Kustomize also reads a file named "Kustomization", which a directory app never reads.
_KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml")


def _refuse_kustomization(value: dict[object, object], file: str, line: int) -> None:
    """A Kustomize file is not an object to apply; say so rather than "object has no
    apiVersion". A Kubernetes object in a file of that name (a Flux Kustomization) passes."""
    if posixpath.basename(file) not in _KUSTOMIZATION_FILES:
        return
    api_version = value.get("apiVersion")
    if api_version and not str(api_version).startswith("kustomize.config.k8s.io/"):
        return
    name = posixpath.basename(file)
    raise RenderError(
        "is a Kustomize file, and this app renders as a plain directory",
        file=file,
        line=line,
        hint="remove spec.source.directory so the path is rendered with Kustomize, commit the "
        f"output of 'kustomize build' instead, or leave the file out with directory.exclude: "
        f"'{name}'",
    )
