"""A repository at one commit read straight from git objects (RepoView), and its export to disk.

The view is what renderers plan with before anything is written: which files a render will
read, and their git ids for the render cache. The export is the checkout a render runs in.

Paths are repository-relative and ``/``-separated; ``""`` (or ``"."``, ``"/"``) is the root.
They are normalized lexically (``a/./b``, ``a//b``, ``a/x/../b`` are ``a/b``); a path that
climbs above the root names nothing. Symlinks are never followed: ``read`` of a link gives
None, ``readlink`` its target, and ``resolve`` says where a chain of links leads (the same
resolution renderers apply on disk). Submodules are skipped everywhere, as in the export:
their content lives in another repository.

A view holds one pygit2 repository handle: use it from one thread at a time.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pygit2

from tether.errors import SourceError
from tether.symlinks import resolve

_TREE = pygit2.enums.FileMode.TREE
_LINK = pygit2.enums.FileMode.LINK
_COMMIT = pygit2.enums.FileMode.COMMIT
_EXEC = pygit2.enums.FileMode.BLOB_EXECUTABLE
_BLOBS = (pygit2.enums.FileMode.BLOB, _EXEC)


def normalize(path: str) -> str | None:
    """``path`` without ``.``, empty parts and ``x/..`` pairs; None if it climbs above the root."""
    parts: list[str] = []
    for part in path.strip().split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


class GitTreeView:
    """The tree of ``commit`` in ``repo``; implements ``tether.render.base.RepoView``."""

    def __init__(self, repo: Any, commit: str) -> None:
        self.repo = repo
        c = repo.get(commit)
        if c is None:
            raise SourceError(f"commit {commit} is not in the cache", hint="fetch it first")
        self.commit = str(c.id)
        self.tree = c.peel(pygit2.Commit).tree
        self._dirs: dict[str, Any] = {"": self.tree}
        """Directory path -> its tree, parsed once (None: not a directory). libgit2 parses
        every tree along a path on each lookup by path: with a directory of 5,000 apps that
        was about 2 ms per lookup, and a render looks up a few dozen paths."""

    def _dir(self, rel: str) -> Any:
        """The tree of the directory ``rel`` (normalized), or None when it is not one."""
        if rel in self._dirs:
            return self._dirs[rel]
        parent, _, name = rel.rpartition("/")
        above = self._dir(parent)
        tree = None
        if above is not None:
            try:
                entry = above[name]
            except KeyError:
                entry = None
            if entry is not None and entry.filemode == _TREE:
                tree = entry
        self._dirs[rel] = tree
        return tree

    def _entry(self, path: str) -> tuple[Any, int] | None:
        """The object at ``path`` and its file mode; None if absent, above the root, or
        inside a submodule or behind a symlink (neither is followed)."""
        rel = normalize(path)
        if rel is None:
            return None
        if rel == "":
            return self.tree, _TREE
        parent, _, name = rel.rpartition("/")
        above = self._dir(parent)
        if above is None:
            return None
        try:
            entry = above[name]
        except KeyError:
            return None
        mode = entry.filemode
        if mode == _COMMIT:
            return None
        if mode == _TREE:
            return self._dir(rel), _TREE
        return entry, mode

    def read(self, path: str) -> bytes | None:
        """The file's bytes; None for a directory, a symlink, or nothing at all."""
        found = self._entry(path)
        if found is None or found[1] not in _BLOBS:
            return None
        data: bytes = found[0].data
        return data

    def is_dir(self, path: str) -> bool:
        found = self._entry(path)
        return found is not None and found[1] == _TREE

    def is_link(self, path: str) -> bool:
        found = self._entry(path)
        return found is not None and found[1] == _LINK

    def is_executable(self, path: str) -> bool:
        found = self._entry(path)
        return found is not None and found[1] == _EXEC

    def exists(self, path: str) -> bool:
        return self._entry(path) is not None

    def listdir(self, path: str) -> list[str]:
        """Names directly under the directory ``path``, sorted; [] if it is not a directory."""
        found = self._entry(path)
        if found is None or found[1] != _TREE:
            return []
        return sorted(e.name for e in found[0] if e.filemode != _COMMIT)

    def object_id(self, path: str) -> str | None:
        """The git id of the tree, blob or link at ``path`` (links not followed), or None."""
        found = self._entry(path)
        return None if found is None else str(found[0].id)

    def readlink(self, path: str) -> str | None:
        """The target of the symlink at ``path`` as stored, or None if it is not a link."""
        found = self._entry(path)
        if found is None or found[1] != _LINK:
            return None
        return bytes(found[0].data).decode("utf-8", "surrogateescape")

    def resolve(self, path: str) -> str | None:
        """``path`` with every symlink along it followed, or None when that leads out of the
        repository, loops, or reaches nothing."""

        def link_at(prefix: str) -> str | None:
            found = self._entry(prefix)
            if found is None:
                raise KeyError(prefix)
            return self.readlink(prefix) if found[1] == _LINK else None

        try:
            resolved = resolve(path.strip().strip("/"), link_at)
        except KeyError:
            return None
        if resolved.problem or not self.exists(resolved.path):
            return None
        return resolved.path

    def files(self, path: str = "") -> list[str]:
        """Every file and symlink under the directory ``path`` (links not followed), sorted."""
        found = self._entry(path)
        if found is None or found[1] != _TREE:
            return []
        base = normalize(path) or ""
        out: list[str] = []
        stack: list[tuple[str, Any]] = [(base, found[0])]
        while stack:
            here, tree = stack.pop()
            for e in tree:
                p = f"{here}/{e.name}" if here else e.name
                if e.filemode == _TREE:
                    stack.append((p, e))
                elif e.filemode != _COMMIT:
                    out.append(p)
        return sorted(out)


# ---- export -------------------------------------------------------------------------------


def export_tree(repo: Any, tree: Any, dest: str, only: Sequence[str] | None = None) -> int:
    """Writes every file (with its exec bit), directory and symlink (as stored) of ``tree``
    into the empty directory ``dest``; submodules are skipped. Returns the files written.

    ``only`` limits the export to those paths (files, links or whole directories) and the
    directories that lead to them: what a render reads, when its renderer can say.

    Measured on a 5,000-file repository: writing blobs read through pygit2 beat libgit2's own
    ``checkout_tree(directory=)`` slightly, and lets every write be made relative to a
    directory descriptor with ``O_NOFOLLOW | O_EXCL``, so no crafted tree (a name ``..``, a
    duplicate entry, a link then a directory of one name) can write outside ``dest``.
    """
    if os.listdir(dest):
        raise FileExistsError(errno.ENOTEMPTY, "not an empty directory", dest)
    count = 0
    wanted = _Wanted.of(only)
    root = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    stack: list[tuple[int, str, Any]] = [(root, "", tree)]
    try:
        while stack:
            dfd, prefix, sub = stack.pop()
            try:
                for entry in _entries(sub, prefix, wanted):
                    count += _export_entry(repo, dfd, prefix, entry, stack)
            finally:
                os.close(dfd)
    finally:
        for dfd, _, _ in stack:
            os.close(dfd)
    return count


@dataclass(frozen=True)
class _Wanted:
    """The paths a partial export writes: each of ``paths`` with all it holds, and the
    directories on the way to them."""

    paths: frozenset[str]
    parents: frozenset[str]

    @classmethod
    def of(cls, only: Sequence[str] | None) -> _Wanted | None:
        if only is None:
            return None
        paths = {p.strip("/") for p in only}
        if "" in paths:
            return None  # the root: everything
        parents = {p.rsplit("/", i)[0] for p in paths for i in range(1, p.count("/") + 1)}
        return cls(frozenset(paths), frozenset(parents))

    def children(self, prefix: str) -> list[str] | None:
        """The names wanted directly under the directory ``prefix`` (``""`` or ``"a/b/"``),
        sorted; None when all of it is wanted (it is, or lies inside, a wanted path)."""
        here = prefix.rstrip("/")
        if here in self.paths or any(here.startswith(p + "/") for p in self.paths):
            return None
        depth = here.count("/") + 1 if here else 0
        names = {
            p.split("/")[depth]
            for p in (*self.paths, *self.parents)
            if p.startswith(prefix) and p.count("/") >= depth
        }
        return sorted(names)


def _entries(tree: Any, prefix: str, wanted: _Wanted | None) -> list[Any]:
    """The entries of ``tree`` (the directory ``prefix``) an export writes: all of them, or
    with ``wanted``, those it names, each looked up by name rather than found by walking a
    directory that may hold thousands of others."""
    names = wanted.children(prefix) if wanted is not None else None
    if names is None:
        return list(tree)
    found = []
    for name in names:
        try:
            found.append(tree[name])
        except (KeyError, ValueError):  # not there, or a name git cannot hold
            continue
    return found


def _export_entry(
    repo: Any, dfd: int, prefix: str, entry: Any, stack: list[tuple[int, str, Any]]
) -> int:
    name: str = entry.name
    path = f"{prefix}{name}"
    if name in ("", ".", "..") or "/" in name or "\0" in name or name.lower() == ".git":
        raise SourceError(
            f"the tree holds an invalid path '{path}'",
            hint="git itself refuses to check it out; fix the repository",
        )
    mode = entry.filemode
    if mode == _TREE:
        os.mkdir(name, 0o755, dir_fd=dfd)
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)
        stack.append((child, f"{path}/", repo[entry.id]))
        return 0
    if mode == _LINK:
        os.symlink(repo[entry.id].data, name, dir_fd=dfd)
        return 1
    if mode not in _BLOBS:
        return 0  # a submodule: its content lives in another repository
    perm = 0o755 if mode == _EXEC else 0o644
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, perm, dir_fd=dfd)
    try:
        view = memoryview(repo[entry.id].data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return 1
