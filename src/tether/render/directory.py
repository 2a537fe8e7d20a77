"""The directory renderer: YAML, JSON and Jsonnet files under an app path, read into manifests."""

from __future__ import annotations

import asyncio
import os
import posixpath
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tether.api.source import TYPE_DIRECTORY, TYPE_JSONNET, Source
from tether.errors import RenderError
from tether.model import Manifest, ResourceKey
from tether.render import jsonnet
from tether.render.base import LinkedRepoView, ReadFiles, RenderRequest, RepoView
from tether.render.parse import (
    duplicate_error,
    manifests_of,
    parse_documents,
    to_manifest,
    unique_key,
)
from tether.sandbox import Runner
from tether.symlinks import resolve

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
            _DiskFiles(request.root),
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
            return _read_app(_ViewFiles(view), path, options, self.max_file_bytes)

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
    found = _read_app(_TreeFiles(tree), path, opts, max_file_bytes)
    return _assemble(found, {}, path, max_objects)


def has_jsonnet(view: RepoView, path: str, recurse: bool) -> bool:
    """Whether the app directory holds a ``*.jsonnet`` program (in subdirectories too when
    ``recurse``), read from git objects without a checkout."""
    return bool(_jsonnet_programs(view, _app_path(path), recurse))


def directory_inputs(view: RepoView, source: Source, path: str) -> list[str] | None:
    """The app directory and the files its links lead to elsewhere, plus, for Jsonnet, the
    library directories and every file its programs import from outside them; None when a
    link or an import cannot be followed (the caller then keys on the whole tree)."""
    app_path = _app_path(path)
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


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class _Files(Protocol):
    """The repository as the renderer reads it: in memory (a Tree) or a checkout on disk."""

    def read(self, name: str, limit: int) -> bytes | None:
        """A regular file's bytes, None when ``name`` is a link, a directory or missing;
        raises _TooLarge when it holds more than ``limit`` bytes."""
        ...

    def link(self, name: str) -> str | None: ...

    def is_dir(self, name: str) -> bool: ...

    def is_file(self, name: str) -> bool: ...

    def names(self, directory: str, recurse: bool) -> Iterator[str]:
        """Files and links under ``directory``, relative to it (links are not followed)."""
        ...


class _TreeFiles:
    def __init__(self, tree: Tree) -> None:
        self.tree = tree

    def read(self, name: str, limit: int) -> bytes | None:
        data = self.tree.files.get(name)
        if data is not None and len(data) > limit:
            raise _TooLarge(len(data))
        return data

    def link(self, name: str) -> str | None:
        return self.tree.symlinks.get(name)

    def is_dir(self, name: str) -> bool:
        prefix = name + "/"
        return any(n.startswith(prefix) for n in chain(self.tree.files, self.tree.symlinks))

    def is_file(self, name: str) -> bool:
        return name in self.tree.files

    def names(self, directory: str, recurse: bool) -> Iterator[str]:
        prefix = directory + "/" if directory else ""
        for name in chain(self.tree.files, self.tree.symlinks):
            if name.startswith(prefix):
                rel = name[len(prefix) :]
                if recurse or "/" not in rel:
                    yield rel


class _ViewFiles:
    """A commit read from git objects: what a checkout of it would show, without one."""

    def __init__(self, view: LinkedRepoView) -> None:
        self.view = view

    def read(self, name: str, limit: int) -> bytes | None:
        data = self.view.read(name)
        if data is not None and len(data) > limit:
            raise _TooLarge(len(data))
        return data

    def link(self, name: str) -> str | None:
        return self.view.readlink(name)

    def is_dir(self, name: str) -> bool:
        return self.view.is_dir(name)

    def is_file(self, name: str) -> bool:
        return self.view.read(name) is not None

    def names(self, directory: str, recurse: bool) -> Iterator[str]:
        pending = [""]
        while pending:
            rel_dir = pending.pop()
            here = posixpath.join(directory, rel_dir) if rel_dir else directory
            for name in self.view.listdir(here):
                if name == ".git":
                    continue
                rel = posixpath.join(rel_dir, name) if rel_dir else name
                if self.view.is_dir(posixpath.join(here, name) if here else name):
                    if recurse:
                        pending.append(rel)
                    continue
                yield rel


class _DiskFiles:
    """A checkout; links are read with readlink and resolved by us, never by the kernel, so a
    link cannot lead the read outside the repository."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _lstat(self, name: str) -> os.stat_result | None:
        try:
            return os.lstat(self.root / name) if name else os.stat(self.root)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def read(self, name: str, limit: int) -> bytes | None:
        st = self._lstat(name)
        if st is None or not stat.S_ISREG(st.st_mode):
            return None
        if st.st_size > limit:
            raise _TooLarge(st.st_size)
        try:
            fd = os.open(self.root / name, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            raise _unreadable(name, e) from e
        with os.fdopen(fd, "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise _TooLarge(len(data))
        return data

    def link(self, name: str) -> str | None:
        st = self._lstat(name)
        if st is None or not stat.S_ISLNK(st.st_mode):
            return None
        return os.readlink(self.root / name)

    def is_dir(self, name: str) -> bool:
        st = self._lstat(name)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def is_file(self, name: str) -> bool:
        st = self._lstat(name)
        return st is not None and stat.S_ISREG(st.st_mode)

    def names(self, directory: str, recurse: bool) -> Iterator[str]:
        base = self.root / directory if directory else self.root
        pending = [""]
        while pending:
            rel_dir = pending.pop()
            try:
                entries = list(os.scandir(base / rel_dir if rel_dir else base))
            except OSError as e:
                raise _unreadable(posixpath.join(directory, rel_dir), e) from e
            for entry in entries:
                if entry.name == ".git":
                    continue
                rel = posixpath.join(rel_dir, entry.name) if rel_dir else entry.name
                if entry.is_dir(follow_symlinks=False):
                    if recurse:
                        pending.append(rel)
                    continue
                yield rel


def _unreadable(name: str, error: OSError) -> RenderError:
    # An unreadable part of the tree must not read as "those objects were deleted".
    return RenderError(
        f"cannot read: {error.strerror}",
        file=name,
        hint="check the file's permissions in the checkout",
    )


def _read_app(files: _Files, path: str, options: _Options, max_file_bytes: int) -> list[_Entry]:
    """The app's manifest files in path order, parsed; Jsonnet programs listed for evaluation."""
    app_path = _app_path(path)
    app_dir = _resolve(files, app_path, app_path or ".")
    _check_is_directory(files, app_dir, path)
    include = _glob("include", options.include)
    exclude = _glob("exclude", options.exclude)
    suffixes = (*MANIFEST_SUFFIXES, JSONNET_SUFFIX)
    entries: list[_Entry] = []
    for rel in _manifest_paths(files, app_dir, options.recurse, include, exclude, suffixes):
        shown = posixpath.join(app_path, rel)
        if rel.endswith(JSONNET_SUFFIX):
            if not options.jsonnet:
                raise _jsonnet_needs_checkout(shown)
            if _is_program(files, posixpath.join(app_dir, rel), shown, max_file_bytes):
                entries.append(_Entry(shown, None))
            continue
        data = _content(files, posixpath.join(app_dir, rel), shown, max_file_bytes)
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


def _is_program(files: _Files, name: str, shown: str, limit: int) -> bool:
    """Whether ``name`` is a file inside the repository (through links too) of a sane size,
    which gojsonnet then reads from the checkout; False for a link to a directory."""
    return _content(files, name, shown, limit) is not None


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
                    f"{_app_path(path) or 'the repository root'}",
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


# --- finding the files ---------------------------------------------------------------------------


def _app_path(path: str) -> str:
    cleaned = posixpath.normpath(path) if path else "."
    if cleaned.startswith("/") or cleaned == ".." or cleaned.startswith("../"):
        raise RenderError(
            f"path {path!r} is not inside the repository",
            hint="check spec.source.path: it must be relative to the repository root",
        )
    return "" if cleaned == "." else cleaned


def _check_is_directory(files: _Files, app_dir: str, path: str) -> None:
    if not app_dir:
        return
    if files.is_file(app_dir):
        raise RenderError(
            f"path {path!r} is a file, not a directory",
            hint="check spec.source.path: it must name the directory holding the manifests",
        )
    if not files.is_dir(app_dir):
        raise RenderError(
            f"path {path!r} does not exist in the repository",
            hint="check spec.source.path and that the revision contains it",
        )


def _manifest_paths(
    files: _Files,
    app_dir: str,
    recurse: bool,
    include: re.Pattern[str] | None,
    exclude: re.Pattern[str] | None,
    suffixes: tuple[str, ...],
) -> list[str]:
    found: set[str] = set()
    for rel in files.names(app_dir, recurse):
        if not rel.endswith(suffixes):
            continue
        if include is not None and not include.fullmatch(rel):
            continue
        if exclude is not None and exclude.fullmatch(rel):
            continue
        found.add(rel)
    return sorted(found)


def _glob(option: str, pattern: str) -> re.Pattern[str] | None:
    """Compile an Argo CD style glob: ``*``, ``?``, ``[abc]``, ``**`` and ``{a,b}`` lists."""
    if not pattern:
        return None
    out: list[str] = []
    depth = 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            # "**/x.yaml" also matches x.yaml at the top, as in gitignore and most glob tools.
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                raise _bad_glob(option, pattern, "'[' is never closed")
            body = pattern[i + 1 : end].replace("\\", "\\\\").replace("[", "\\[")
            out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
            i = end + 1
            continue
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if depth:
        raise _bad_glob(option, pattern, "'{' is never closed")
    try:
        return re.compile("".join(out))
    except re.error as e:
        raise _bad_glob(option, pattern, str(e)) from e


def _bad_glob(option: str, pattern: str, problem: str) -> RenderError:
    return RenderError(
        f"directory.{option} pattern {pattern!r} is invalid: {problem}",
        hint=f"fix spec.source.directory.{option}",
    )


# --- symlinks ------------------------------------------------------------------------------------


def _content(files: _Files, name: str, shown: str, limit: int) -> bytes | None:
    """The bytes behind ``name``, following symlinks; None for a link to a directory."""
    try:
        data = files.read(name, limit)
        if data is not None:
            return data
        target = _resolve(files, name, shown)
        data = files.read(target, limit)
    except _TooLarge as e:
        raise RenderError(
            f"file is {e.size} bytes, over the limit of {limit} bytes",
            file=shown,
            hint="split it into smaller files",
        ) from None
    if data is not None:
        return data
    if not target or files.is_dir(target):
        return None
    raise RenderError(
        f"symlink points to {target}, which does not exist in the repository",
        file=shown,
        hint="fix the link or delete it",
    )


def _resolve(files: _Files, path: str, shown: str) -> str:
    """``path`` with every symlink along it replaced by its target, as the kernel would do it."""
    resolved = resolve(path, files.link)
    if resolved.problem == "escapes":
        raise _escapes(shown, resolved.link, resolved.target)
    if resolved.problem == "loop":
        raise RenderError(
            "symlink loop: " + " -> ".join(resolved.hops),
            file=shown,
            hint="change one of these links so the chain ends at a file",
        )
    return resolved.path


def _escapes(shown: str, link: str, target: str) -> RenderError:
    return RenderError(
        f"symlink {link} points to {target!r}, which is outside the repository",
        file=shown,
        hint="links may only point inside the repository, with a relative target; copy the file in",
    )


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
