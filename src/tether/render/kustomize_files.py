"""What a kustomization reads, found statically: its bases, components and files, remote
entries, and the paths that would leave the repository or include themselves.

The walk reads kustomization files through a small view (a git tree without checkout, or
the checkout on disk), so the render cache can name a render's inputs before any checkout
and the renderer can refuse a bad tree before kustomize runs.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tether.errors import RenderError
from tether.render.dir_select import app_directory
from tether.render.parse import load_mapping

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

# Fields whose entries name a kustomization directory or a file, relative to the
# kustomization's directory.
_DIR_OR_FILE_FIELDS = ("resources", "bases", "components")
_PLUGIN_FIELDS = ("generators", "transformers", "validators")
_FILE_LIST_FIELDS = ("crds", "configurations")
_PATH_ITEM_FIELDS = ("patches", "patchesJson6902", "replacements")
_GENERATOR_FIELDS = ("configMapGenerator", "secretGenerator")
_HELM_FIELDS = ("helmCharts", "helmChartInflationGenerator")

_REMOTE_PREFIXES = ("git::", "gh:", "ssh://", "https://", "http://", "git@", "github.com")
_REMOTE_QUERIES = ("?ref=", "?version=", "?submodules=", "?timeout=")


class FileView(Protocol):
    """The part of :class:`tether.render.base.RepoView` the walk needs."""

    def read(self, path: str) -> bytes | None: ...

    def is_dir(self, path: str) -> bool: ...


@dataclass(frozen=True)
class Entry:
    """One entry of a kustomization field, for messages: ``apps/a/kustomization.yaml``,
    ``resources``, ``../../base``."""

    file: str
    field: str
    value: str

    def __str__(self) -> str:
        return f"{self.field} entry {self.value!r}"


@dataclass
class Walk:
    """Everything reached from one app's kustomization."""

    app_file: str
    """The app's kustomization file, repository-relative."""
    dirs: list[str] = field(default_factory=list)
    """Kustomization directories reached, the app's first."""
    files: set[str] = field(default_factory=set)
    """Files named by an entry (patches, generator files, resource files...)."""
    remote: list[Entry] = field(default_factory=list)
    helm: list[Entry] = field(default_factory=list)
    """Each Helm chart a kustomization inflates (``helmCharts``), by name."""
    helm_pulls: list[Entry] = field(default_factory=list)
    """The charts among them not in the repository (under ``helmGlobals.chartHome``), which
    kustomize would download."""
    missing: list[str] = field(default_factory=list)
    """Directories reached that hold no kustomization file (kustomize will refuse them)."""

    def inputs(self) -> list[str]:
        """The directories and files read, without any path already under a listed dir."""
        dirs = sorted(set(self.dirs) | set(self.missing))
        out: list[str] = []
        for path in sorted(set(dirs) | self.files):
            if not any(_under(path, d) for d in dirs if d != path):
                out.append(path)
        return out


def is_remote(value: str) -> bool:
    """Whether kustomize would fetch ``value`` (a git URL or an HTTP file) rather than read it."""
    lowered = value.lower()
    return (
        "://" in lowered
        or lowered.startswith(_REMOTE_PREFIXES)
        or "_git/" in lowered
        or any(q in lowered for q in _REMOTE_QUERIES)
    )


def find_kustomization(view: FileView, directory: str) -> str | None:
    """The kustomization file of ``directory`` (repository-relative), or None.

    Raises RenderError when there are several: kustomize refuses to choose."""
    found = [
        _join(directory, name)
        for name in KUSTOMIZATION_NAMES
        if view.read(_join(directory, name)) is not None
    ]
    if len(found) > 1:
        raise RenderError(
            f"{' and '.join(found)} are both kustomization files; kustomize reads only one",
            file=found[0],
            hint="keep one of them",
        )
    return found[0] if found else None


def load_kustomization(view: FileView, file: str) -> dict[str, Any]:
    """The kustomization at ``file`` as a mapping; RenderError naming it if it is not one."""
    data = view.read(file)
    if data is None:
        raise RenderError("file is missing", file=file)
    return load_mapping(data, file, what="a kustomization")


def walk(
    view: FileView,
    path: str,
    *,
    edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    confine: Callable[[str], str | None] | None = None,
    resolve: Callable[[str], str | None] | None = None,
) -> Walk:
    """Follow the app's kustomization at ``path`` through every local base and component.

    ``edit`` changes the app's own kustomization before it is read (the Application's
    overrides); ``confine`` says where a path really leads when that is outside the
    repository (a symlink on disk), or None; ``resolve`` follows symlinks in a view that
    does not (a git tree: where a link leads, None when nowhere), so a linked base is read
    where kustomize reads it and both the link and its target count as inputs. Raises
    RenderError for a path that leaves the repository, a kustomization that includes
    itself, and unreadable kustomization files.
    """
    app_dir = app_directory(path)
    app_file = find_kustomization(view, app_dir)
    if app_file is None:
        raise RenderError(
            f"no {', '.join(KUSTOMIZATION_NAMES[:-1])} or {KUSTOMIZATION_NAMES[-1]} "
            f"in {app_dir or 'the repository root'}",
            file=app_dir or ".",
            hint="point spec.source.path at the directory holding the kustomization",
        )
    result = Walk(app_file=app_file)
    _Walker(view, result, edit, confine, resolve).visit(app_dir, [])
    return result


class _Walker:
    def __init__(
        self,
        view: FileView,
        result: Walk,
        edit: Callable[[dict[str, Any]], dict[str, Any]] | None,
        confine: Callable[[str], str | None] | None,
        resolve: Callable[[str], str | None] | None,
    ) -> None:
        self.view = view
        self.result = result
        self.edit = edit
        self.confine = confine
        self.resolve = resolve
        self.done: set[str] = set()

    def visit(self, directory: str, stack: list[str]) -> None:
        """Read ``directory``'s kustomization; ``stack`` is the chain of directories that
        included it, to name a loop."""
        file = find_kustomization(self.view, directory)
        if file is None:
            self.result.missing.append(directory)
            return
        self._check_confined(file, None)
        kustomization = load_kustomization(self.view, file)
        if not stack and self.edit is not None:
            kustomization = self.edit(kustomization)
        self.result.dirs.append(directory)
        here = [*stack, directory]
        for entry, may_be_dir in references(kustomization, file):
            target = self._target(directory, entry)
            if target is None:
                continue
            if may_be_dir and self.view.is_dir(target):
                self._check_cycle(here, target, entry)
                if target not in self.done:
                    self.visit(target, here)
            else:
                self._check_exists(entry, target)
                _check_in_directory(entry, target, directory)
                self.result.files.add(target)
        if any(name in kustomization for name in _HELM_FIELDS):
            self._charts(kustomization, file, directory)
        self.done.add(directory)

    def _charts(self, kustomization: dict[str, Any], file: str, directory: str) -> None:
        home = self._target(
            directory, Entry(file, "helmGlobals.chartHome", _chart_home(kustomization))
        )
        if home is None:
            return
        self.result.files.add(home)
        for field_name in _HELM_FIELDS:
            for chart in _mappings(kustomization.get(field_name)):
                name = chart.get("name") or chart.get("chartName")
                entry = Entry(file, "helmCharts", str(name or ""))
                self.result.helm.append(entry)
                version = str(chart.get("version") or "")
                local = [_join(home, str(name)), _join(home, f"{name}-{version}")]
                if not name or not any(self.view.is_dir(p) for p in local):
                    self.result.helm_pulls.append(entry)

    def _target(self, directory: str, entry: Entry) -> str | None:
        """The repository path an entry names, None for a remote one (recorded)."""
        value = entry.value
        if is_remote(value):
            self.result.remote.append(entry)
            return None
        if value.startswith("/") or os.path.isabs(value):
            raise _escape_error(entry, "is an absolute path")
        target = posixpath.normpath(posixpath.join(directory or ".", value))
        if target == ".." or target.startswith("../"):
            raise _escape_error(entry, "leads outside the repository")
        target = "" if target == "." else target
        self._check_confined(target, entry)
        if self.resolve is not None:
            real = self.resolve(target)
            if real is not None and real != target:
                self.result.files.add(target)  # the link itself: retargeting it is a change
                return real
        return target

    def _check_exists(self, entry: Entry, target: str) -> None:
        exists = getattr(self.view, "exists", None)  # cheaper than reading, where offered
        found = exists(target) if exists is not None else self.view.read(target) is not None
        if found or self.view.is_dir(target):
            return
        raise RenderError(
            f"{entry} names {target or '.'}, which does not exist in the repository",
            file=entry.file,
            hint="paths are relative to the kustomization's directory; fix the path or commit "
            "the file",
        )

    def _check_confined(self, target: str, entry: Entry | None) -> None:
        if self.confine is None:
            return
        outside = self.confine(target)
        if outside is None:
            return
        if entry is None:
            raise RenderError(
                f"is a symlink to {outside}, outside the repository",
                file=target,
                hint="links may only point inside the repository; copy the file in",
            )
        raise _escape_error(entry, f"is a symlink to {outside}, outside the repository")

    def _check_cycle(self, here: list[str], target: str, entry: Entry) -> None:
        if target not in here:
            return
        loop = [*here[here.index(target) :], target]
        shown = " -> ".join(d or "." for d in loop)
        raise RenderError(
            f"{entry} makes the kustomization include itself: {shown}",
            file=entry.file,
            hint="a kustomization cannot be its own base; remove the entry that closes the loop",
        )


def references(kustomization: dict[str, Any], file: str) -> Iterator[tuple[Entry, bool]]:
    """Each local-or-remote path the kustomization names, with whether it may be a directory
    holding another kustomization. Inline patches and inline plugin configs are skipped."""
    for name in _DIR_OR_FILE_FIELDS:
        for value in _strings(kustomization.get(name)):
            yield Entry(file, name, value), True
    for name in _PLUGIN_FIELDS:
        for value in _strings(kustomization.get(name)):
            if not _inline(value):
                yield Entry(file, name, value), True
    for name in _FILE_LIST_FIELDS:
        for value in _strings(kustomization.get(name)):
            yield Entry(file, name, value), False
    for value in _strings(kustomization.get("patchesStrategicMerge")):
        if not _inline(value):
            yield Entry(file, "patchesStrategicMerge", value), False
    for name in _PATH_ITEM_FIELDS:
        for item in _mappings(kustomization.get(name)):
            if isinstance(item.get("path"), str) and item["path"]:
                yield Entry(file, name, item["path"]), False
    openapi = kustomization.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield Entry(file, "openapi", openapi["path"]), False
    for name in _GENERATOR_FIELDS:
        for generator in _mappings(kustomization.get(name)):
            yield from _generator_files(generator, name, file)
    for chart in _mappings(kustomization.get("helmCharts")):
        values_files = [chart.get("valuesFile"), *_strings(chart.get("additionalValuesFiles"))]
        for values_file in values_files:
            if isinstance(values_file, str) and values_file and not is_remote(values_file):
                yield Entry(file, "helmCharts", values_file), False


def _generator_files(
    generator: dict[str, Any], name: str, file: str
) -> Iterator[tuple[Entry, bool]]:
    for value in _strings(generator.get("files")):
        # "key=path" names the key the file's content is stored under.
        yield Entry(file, f"{name}.files", value.split("=", 1)[-1]), False
    envs = [*_strings(generator.get("envs")), *_strings([generator.get("env")])]
    for value in envs:
        yield Entry(file, f"{name}.envs", value), False


def _chart_home(kustomization: dict[str, Any]) -> str:
    globals_ = kustomization.get("helmGlobals")
    if isinstance(globals_, dict) and isinstance(globals_.get("chartHome"), str):
        return str(globals_["chartHome"])
    return "charts"


def _strings(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str) and v]


def _mappings(value: object) -> list[dict[str, Any]]:
    if isinstance(value, dict):  # the deprecated single helmChartInflationGenerator form
        return [value]
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, dict)]


def _inline(value: str) -> bool:
    """An inline patch or plugin config rather than a file name (kustomize tries both)."""
    return "\n" in value or ": " in value or value.lstrip().startswith(("{", "-", "["))


def _check_in_directory(entry: Entry, target: str, directory: str) -> None:
    """kustomize's load restrictor: a kustomization reads files only in or below its own
    directory (other directories come in as bases, each with its own kustomization)."""
    if _under(target, directory):
        return
    raise RenderError(
        f"{entry} reads {target}, which is not in or below {directory}/: kustomize lets a "
        "kustomization read files only inside its own directory",
        file=entry.file,
        hint=f"move the file under {directory}/, or give its directory a kustomization and "
        "list that directory under resources",
    )


def _escape_error(entry: Entry, problem: str) -> RenderError:
    return RenderError(
        f"{entry} {problem}; kustomize may only read files inside the repository",
        file=entry.file,
        hint="refer to files and bases by a relative path inside the repository, or copy them in",
    )


def _join(directory: str, name: str) -> str:
    return posixpath.join(directory, name) if directory else name


def _under(path: str, directory: str) -> bool:
    return directory == "" or path.startswith(directory + "/")


class DiskView:
    """A :class:`FileView` over a checkout on disk; ``confine`` resolves symlinks."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = os.path.realpath(root)

    def _full(self, path: str) -> str:
        return os.path.join(self.root, path) if path else str(self.root)

    def read(self, path: str) -> bytes | None:
        full = self._full(path)
        if not os.path.isfile(full):
            return None
        try:
            with open(full, "rb") as f:
                return f.read()
        except OSError:
            return None

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(self._full(path))

    def exists(self, path: str) -> bool:
        return os.path.exists(self._full(path))

    def confine(self, path: str) -> str | None:
        """Where ``path`` really leads when that is outside the checkout, else None."""
        real = os.path.realpath(self._full(path))
        if real == self._real_root or real.startswith(self._real_root + os.sep):
            return None
        return real
