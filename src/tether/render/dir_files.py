"""The files of a directory app as its renderer reads them, from one of three places: an
in-memory tree (``TreeFiles``), a commit read from git objects without a checkout
(``ViewFiles``) or a checkout on disk (``DiskFiles``).

Each answers the same questions (a file's bytes, a link's target, what a directory holds),
and ``read_content`` and ``resolve_links`` follow links by the same rules over all three
(``tether.symlinks``): never by the kernel, never outside the repository, loops refused. A
file over the size limit is refused, and a file that cannot be read is an error, never an
empty file: a missing object would read as "delete it".
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tether.errors import RenderError
from tether.render.base import LinkedRepoView
from tether.symlinks import resolve

if TYPE_CHECKING:
    from tether.render import Tree


class TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class Files(Protocol):
    """The repository as the renderer reads it: in memory (a Tree) or a checkout on disk."""

    def read(self, name: str, limit: int) -> bytes | None:
        """A regular file's bytes, None when ``name`` is a link, a directory or missing;
        raises TooLarge when it holds more than ``limit`` bytes."""
        ...

    def link(self, name: str) -> str | None: ...

    def is_dir(self, name: str) -> bool: ...

    def is_file(self, name: str) -> bool: ...

    def names(self, directory: str, recurse: bool) -> Iterator[str]:
        """Files and links under ``directory``, relative to it (links are not followed)."""
        ...


class TreeFiles:
    def __init__(self, tree: Tree) -> None:
        self.tree = tree

    def read(self, name: str, limit: int) -> bytes | None:
        data = self.tree.files.get(name)
        if data is not None and len(data) > limit:
            raise TooLarge(len(data))
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


class ViewFiles:
    """A commit read from git objects: what a checkout of it would show, without one."""

    def __init__(self, view: LinkedRepoView) -> None:
        self.view = view

    def read(self, name: str, limit: int) -> bytes | None:
        data = self.view.read(name)
        if data is not None and len(data) > limit:
            raise TooLarge(len(data))
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


class DiskFiles:
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
            raise TooLarge(st.st_size)
        try:
            fd = os.open(self.root / name, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            raise _unreadable(name, e) from e
        with os.fdopen(fd, "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise TooLarge(len(data))
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


def read_content(files: Files, name: str, shown: str, limit: int) -> bytes | None:
    """The bytes behind ``name``, following symlinks; None for a link to a directory."""
    try:
        data = files.read(name, limit)
        if data is not None:
            return data
        target = resolve_links(files, name, shown)
        data = files.read(target, limit)
    except TooLarge as e:
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


def resolve_links(files: Files, path: str, shown: str) -> str:
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
