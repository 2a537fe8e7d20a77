"""Rendering: the tree of files at a commit becomes the list of manifests an app wants applied."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tether.errors import SourceError
from tether.render.base import Renderer, RenderRequest, RepoView
from tether.render.directory import DirectoryRenderer, render_directory
from tether.render.parse import parse_manifests

__all__ = [
    "DirectoryOptions",
    "DirectoryRenderer",
    "RenderRequest",
    "Renderer",
    "RepoView",
    "Tree",
    "parse_manifests",
    "render_directory",
]


@dataclass
class Tree:
    """The files of a repository at one commit, held in memory so renderers never touch git.

    Paths are repo-relative POSIX paths. Symlinks are kept as links (their target exactly as
    git stores it) so the renderer can refuse the ones that lead out of the repository.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_directory(cls, root: Path) -> Tree:
        """Read a local checkout; symlinks are recorded, not followed, and ``.git`` is skipped."""
        if not root.is_dir():
            raise SourceError(
                f"{root} is not a directory", hint="point it at a checked-out repository"
            )
        tree = cls()
        try:
            for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
                here = Path(dirpath)
                dirnames[:] = [name for name in dirnames if name != ".git"]
                # os.walk lists a symlink to a directory among dirnames without descending into it.
                for name in dirnames:
                    if (here / name).is_symlink():
                        tree.symlinks[_rel(root, here / name)] = os.readlink(here / name)
                for name in filenames:
                    if name == ".git":
                        continue
                    full = here / name
                    if full.is_symlink():
                        tree.symlinks[_rel(root, full)] = os.readlink(full)
                    else:
                        tree.files[_rel(root, full)] = full.read_bytes()
        except OSError as e:
            raise SourceError(
                f"cannot read {e.filename}: {e.strerror}",
                hint="check the file's permissions in the checkout",
            ) from e
        return tree


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _raise(error: OSError) -> None:
    # os.walk skips unreadable directories silently by default; a partial tree would render
    # as "those objects were deleted" and the sync layer could prune them.
    raise error


@dataclass
class DirectoryOptions:
    """How a plain directory is read, after Argo CD's ``spec.source.directory``.

    ``include`` and ``exclude`` are globs (or a brace list ``{a.yaml,b/*.yaml}``) matched against
    the path relative to the app path; ``*`` stays within one directory, ``**`` crosses them.
    """

    recurse: bool = False
    include: str = ""
    exclude: str = ""
