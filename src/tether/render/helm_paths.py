"""Where a Helm render may read: the chart directory and value files, confined to the repository.

A chart and its value files come from the app's repository (or, for ``$<ref>/...`` value
files, from the checkout of another source of the same app). Nothing outside those roots may
be read: a ``../`` that climbs above the root, an absolute path, or a symlink that leads out is
refused with the file named, before helm is run.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tether.errors import RenderError

VALUE_FILES_FIELD = "spec.source.helm.valueFiles"
REMOTE_VALUE_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class ValueFile:
    """One ``valueFiles`` entry, resolved."""

    arg: str
    """What helm is given: a path on disk, or a URL."""
    shown: str
    """How messages name it: the repository path, ``$<ref>/path``, or the URL."""


def repo_relative(path: str, *, what: str, field: str, written: str = "") -> str:
    """``path`` normalized and relative to the repository root (``""`` is the root itself).

    Refuses an absolute path and a ``../`` that climbs above the root; messages quote
    ``written`` (the entry as the spec has it) when given."""
    shown = written or path
    if path.startswith("/"):
        raise RenderError(
            f"{what} {shown!r} is an absolute path",
            file=shown,
            hint=f"check {field}: write a relative path inside the repository",
        )
    cleaned = posixpath.normpath(path) if path else "."
    if cleaned == ".." or cleaned.startswith("../"):
        raise RenderError(
            f"{what} {shown!r} leads outside the repository",
            file=shown,
            hint=f"check {field}: nothing outside the repository can be read",
        )
    return "" if cleaned == "." else cleaned


def confined(root: Path, rel: str, *, shown: str, what: str) -> Path:
    """``root/rel`` after following every symlink along it; refused when that leaves ``root``."""
    base = Path(os.path.realpath(root))
    real = Path(os.path.realpath(root / rel)) if rel else base
    if real != base and base not in real.parents:
        raise RenderError(
            f"{what} is a symlink, or lies under one, that leads outside the repository",
            file=shown,
            hint="links may only point inside the repository; copy the file in instead",
        )
    return real


def check_links_inside(directory: Path, root: Path, shown_dir: str) -> None:
    """Refuse any symlink under ``directory`` that leads outside ``root``: helm follows links
    when it loads a chart, so a chart could otherwise read any file of the machine."""
    base = Path(os.path.realpath(root))
    for dirpath, dirnames, filenames in os.walk(directory):
        here = Path(dirpath)
        for name in (*dirnames, *filenames):
            full = here / name
            if not full.is_symlink():
                continue
            real = Path(os.path.realpath(full))
            if real != base and base not in real.parents:
                rel = full.relative_to(directory).as_posix()
                raise RenderError(
                    f"symlink points to {os.readlink(full)!r}, which is outside the repository",
                    file=posixpath.join(shown_dir, rel) if shown_dir else rel,
                    hint="links in a chart may only point inside the repository; copy the file in",
                )


def chart_directory(root: Path, path: str) -> tuple[Path, str]:
    """The chart directory on disk and its repository path; it must hold a Chart.yaml."""
    rel = repo_relative(path, what="path", field="spec.source.path")
    shown = rel or "."
    chart_dir = confined(root, rel, shown=shown, what="the chart directory")
    if not chart_dir.is_dir():
        raise RenderError(
            f"path {shown!r} does not exist in the repository",
            hint="check spec.source.path and that the revision contains it",
        )
    if not (chart_dir / "Chart.yaml").is_file():
        raise RenderError(
            "no Chart.yaml here: this is not a Helm chart",
            file=posixpath.join(rel, "Chart.yaml") if rel else "Chart.yaml",
            hint="point spec.source.path at the directory holding Chart.yaml",
        )
    check_links_inside(chart_dir, root, rel)
    return chart_dir, rel


def is_url(entry: str) -> bool:
    return "://" in entry and bool(urlsplit(entry).scheme)


def resolve_value_file(
    entry: str,
    *,
    root: Path,
    chart_path: str,
    refs: Mapping[str, Path],
    allow_remote: bool,
    ignore_missing: bool,
) -> ValueFile | None:
    """Where helm reads one ``valueFiles`` entry, or None for a missing file that may be skipped.

    A relative path is relative to the chart directory; ``$<ref>/path`` to the root of the
    source whose ``ref`` is ``<ref>``; a URL only when remote fetches are allowed."""
    if is_url(entry):
        return _remote_value_file(entry, allow_remote)
    if entry.startswith("$"):
        base, rel, shown = _ref_value_file(entry, refs)
    else:
        base = root
        rel = repo_relative(
            posixpath.join(chart_path, entry) if not entry.startswith("/") else entry,
            what="value file",
            field=VALUE_FILES_FIELD,
            written=entry,
        )
        shown = rel
    real = confined(base, rel, shown=shown, what="value file")
    if real.is_dir():
        raise RenderError(
            "value file is a directory",
            file=shown,
            hint=f"check {VALUE_FILES_FIELD}: each entry names one YAML file",
        )
    if not real.is_file():
        if ignore_missing:
            return None
        raise RenderError(
            "value file does not exist in the repository",
            file=shown,
            hint=f"check {VALUE_FILES_FIELD} (relative paths start at the chart directory), "
            "or set spec.source.helm.ignoreMissingValueFiles",
        )
    return ValueFile(str(real), shown)


def _remote_value_file(entry: str, allow_remote: bool) -> ValueFile:
    scheme = urlsplit(entry).scheme.lower()
    shown = _without_userinfo(entry)
    if scheme not in REMOTE_VALUE_SCHEMES:
        raise RenderError(
            f"value file URL scheme {scheme!r} is not allowed",
            file=shown,
            hint=f"{VALUE_FILES_FIELD} takes repository paths, or http(s) URLs where allowed",
        )
    if not allow_remote:
        raise RenderError(
            "remote value files are not allowed: the controller does not fetch sources from "
            "the network",
            file=shown,
            hint="commit the file to the repository, or start the controller with "
            "--allow-remote-sources",
        )
    return ValueFile(entry, shown)


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()


def _ref_value_file(entry: str, refs: Mapping[str, Path]) -> tuple[Path, str, str]:
    name, _, rest = entry[1:].partition("/")
    if not name or name not in refs:
        known = ", ".join(sorted(f"${ref}" for ref in refs)) or "none"
        raise RenderError(
            f"value file names ${name}, but no source of this application has ref: {name!r}",
            file=entry,
            hint=f"add a source with ref: {name} to spec.sources (known refs: {known})",
        )
    rel = repo_relative(rest, what="value file", field=VALUE_FILES_FIELD, written=entry)
    shown = f"${name}/{rel}"
    if not rel:
        raise RenderError(
            "value file names a source's root, not a file",
            file=entry,
            hint=f"write ${name}/<path to the values file>",
        )
    return refs[name], rel, shown


def split_ref(entry: str) -> tuple[str, str] | None:
    """``("values", "env/prod.yaml")`` for ``$values/env/prod.yaml``; None for other entries."""
    if not entry.startswith("$"):
        return None
    name, _, rest = entry[1:].partition("/")
    return name, rest
