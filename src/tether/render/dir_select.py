"""Which files of the repository make a directory app: its path checked to be a directory
inside the repository, then the manifest files under it, in subdirectories too with
``directory.recurse``, filtered by ``directory.include`` and ``directory.exclude`` globs as
Argo CD writes them (``*``, ``?``, ``[abc]``, ``**``, ``{a,b}``).
"""

from __future__ import annotations

import posixpath
import re

from tether.errors import RenderError
from tether.render.dir_files import Files


def app_directory(path: str) -> str:
    """The app's path made repository-relative (``""`` for the root); refused if it leaves."""
    cleaned = posixpath.normpath(path) if path else "."
    if cleaned.startswith("/") or cleaned == ".." or cleaned.startswith("../"):
        raise RenderError(
            f"path {path!r} is not inside the repository",
            hint="check spec.source.path: it must be relative to the repository root",
        )
    return "" if cleaned == "." else cleaned


def check_is_directory(files: Files, app_dir: str, path: str) -> None:
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


def manifest_paths(
    files: Files,
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


def compile_glob(option: str, pattern: str) -> re.Pattern[str] | None:
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
