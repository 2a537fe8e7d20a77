"""Reading a path of a commit from git objects: every file under it, and whatever its
symlinks point to elsewhere in the repository (``GitCache.read_tree``)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import pygit2

from tether.source.credentials import redact
from tether.source.failures import REASON_PATH, source_error
from tether.symlinks import resolve


@dataclass(frozen=True)
class TreeContent:
    """Every blob under a path at a commit. Paths are relative to the repository root."""

    commit: str
    files: dict[str, bytes]
    symlinks: dict[str, str]


def tree_content(url: str, commit: Any, path: str = "") -> TreeContent:
    """Every file and symlink under ``path`` of the pygit2 ``commit`` of ``url``.

    Submodules are skipped: their content lives in another repository. ``path`` may
    name a directory or a single file; "" or "." is the whole tree.
    """
    sha = str(commit.id)
    rel = _clean_path(path)
    reader = _TreeReader(commit.tree)
    if not reader.read(rel):
        raise source_error(
            REASON_PATH,
            f"path '{rel}' not found in {redact(url)} at {sha[:12]}",
            hint="check the application's source path; it is relative to the repository root",
        )
    reader.follow_links()
    return TreeContent(commit=sha, files=reader.files, symlinks=reader.symlinks)


class _TreeReader:
    """Reads a path at a commit, and whatever its symlinks point to elsewhere in the repository.

    A link is kept as a link (the renderer resolves it, and refuses one that leads out of the
    repository); what it points to is read too, even outside the app's path, so that
    ``app/cm.yaml -> ../shared/cm.yaml`` renders. Links that leave the repository, dangle or
    loop are left for the renderer to report.
    """

    def __init__(self, root: Any) -> None:
        self.root = root
        self.files: dict[str, bytes] = {}
        self.symlinks: dict[str, str] = {}
        self._read_dirs: set[str] = set()
        self._followed: set[str] = set()

    def read(self, path: str) -> bool:
        """Reads the file or directory ``path`` names, through links; False if it is not there."""
        try:
            resolved = resolve(path, self._link_at)
        except KeyError:
            return False
        if resolved.problem:
            return True  # out of the repository, or a loop: the renderer says so
        here = resolved.path
        entry = self.root[here] if here else self.root
        if not here or entry.filemode == pygit2.enums.FileMode.TREE:
            self._walk(here, entry)
        else:
            _add_entry(here, entry, self.files, self.symlinks)
        return True

    def _link_at(self, path: str) -> str | None:
        """The target of the link at ``path`` (recorded), None if not a link; KeyError if absent."""
        entry = self.root[path]
        if entry.filemode != pygit2.enums.FileMode.LINK:
            return None
        target: str = entry.data.decode("utf-8", "surrogateescape")
        self.symlinks[path] = target
        return target

    def follow_links(self) -> None:
        """Reads the target of every link read so far, and of the links found doing so."""
        while todo := [link for link in self.symlinks if link not in self._followed]:
            for link in todo:
                self._followed.add(link)
                self.read(posixpath.join(posixpath.dirname(link), self.symlinks[link]))

    def _walk(self, prefix: str, tree: Any) -> None:
        """Every entry under ``prefix``, once: a directory inside one already read is skipped."""
        if any(not d or prefix == d or prefix.startswith(d + "/") for d in self._read_dirs):
            return
        self._read_dirs.add(prefix)
        stack: list[tuple[str, Any]] = [(prefix, tree)]
        while stack:
            here, sub = stack.pop()
            for entry in sub:
                entry_path = f"{here}/{entry.name}" if here else entry.name
                if entry.filemode == pygit2.enums.FileMode.TREE:
                    stack.append((entry_path, entry))
                else:
                    _add_entry(entry_path, entry, self.files, self.symlinks)


def _add_entry(path: str, entry: Any, files: dict[str, bytes], symlinks: dict[str, str]) -> None:
    mode = entry.filemode
    if mode == pygit2.enums.FileMode.COMMIT:
        return
    if mode == pygit2.enums.FileMode.LINK:
        symlinks[path] = entry.data.decode("utf-8", "surrogateescape")
    else:
        files[path] = entry.data


def _clean_path(path: str) -> str:
    """``path`` relative to the repository root, without "." parts; an error if it leaves it."""
    parts = [p for p in PurePosixPath(path.strip()).parts if p not in ("/", ".")]
    if ".." in parts:
        raise source_error(
            REASON_PATH,
            f"path '{path}' leaves the repository",
            hint="use a path relative to the repository root without '..'",
        )
    return "/".join(parts)
