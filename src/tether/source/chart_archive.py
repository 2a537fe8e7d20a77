"""Unpacking a chart archive (``.tgz``) safely: nothing outside the destination, no links,
no devices, bounded size."""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
from pathlib import Path

from tether.errors import SourceError

MAX_ARCHIVE_BYTES = 32 * 1024 * 1024
"""Most bytes a downloaded chart archive may have (public charts are well under 1 MiB)."""
MAX_UNPACKED_BYTES = 128 * 1024 * 1024
"""Most bytes its files may hold once unpacked (stops a gzip bomb)."""
MAX_ENTRIES = 20_000


def unpack_chart(archive: bytes, dest: Path, *, origin: str) -> Path:
    """Unpacks ``archive`` into ``dest`` and returns the chart directory in it.

    A chart archive holds one top-level directory (the chart's name) with regular files and
    directories only. Raises SourceError naming ``origin`` (the archive's URL) and the entry
    when an entry is absolute, climbs out with ``..``, is a link or a device, when the
    files would hold more than MAX_UNPACKED_BYTES, or when there is no ``Chart.yaml``.
    """
    if len(archive) > MAX_ARCHIVE_BYTES:
        raise _refused(origin, f"it is larger than {MAX_ARCHIVE_BYTES} bytes")
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    tops: set[str] = set()
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            for count, member in enumerate(tar, start=1):
                if count > MAX_ENTRIES:
                    raise _refused(origin, f"it has more than {MAX_ENTRIES} entries")
                name = _safe_name(member, origin)
                if name is None:
                    continue
                tops.add(name.split("/", 1)[0])
                total += member.size
                if total > MAX_UNPACKED_BYTES:
                    raise _refused(origin, f"it unpacks to more than {MAX_UNPACKED_BYTES} bytes")
                _extract(tar, member, dest, name, origin)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise SourceError(
            f"chart archive {origin} is not a readable .tgz: {e}",
            hint="check that the repository serves the chart package itself "
            "(helm package makes one)",
        ) from None
    if len(tops) != 1:
        raise _refused(origin, f"it has {len(tops)} top-level entries; a chart has one directory")
    chart_dir = dest / tops.pop()
    if not (chart_dir / "Chart.yaml").is_file():
        raise _refused(origin, f"it has no Chart.yaml in {chart_dir.name}/")
    return chart_dir


def _safe_name(member: tarfile.TarInfo, origin: str) -> str | None:
    """The entry's normalized relative path, or None for the archive's own ``.`` entry."""
    raw = member.name
    if raw.startswith("/") or "\\" in raw or "\x00" in raw:
        raise _refused(origin, f"entry {raw!r} is an absolute or non-POSIX path")
    name = posixpath.normpath(raw)
    if name == ".":
        return None
    if name == ".." or name.startswith("../"):
        raise _refused(origin, f"entry {raw!r} points outside the chart directory")
    if not (member.isfile() or member.isdir()):
        what = "link" if (member.issym() or member.islnk()) else "special file"
        raise _refused(origin, f"entry {raw!r} is a {what}; charts hold regular files only")
    return name


def _extract(
    tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path, name: str, origin: str
) -> None:
    target = dest / name
    # Parents are made here, by us, as plain directories: no entry can have turned one
    # into a link, so the path cannot leave dest.
    if member.isdir():
        target.mkdir(parents=True, exist_ok=True, mode=0o755)
        return
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    src = tar.extractfile(member)
    if src is None:
        raise _refused(origin, f"entry {member.name!r} has no content")
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError:
        raise _refused(origin, f"entry {member.name!r} is listed twice") from None
    with os.fdopen(fd, "wb") as out:
        while chunk := src.read(1024 * 1024):
            out.write(chunk)


def _refused(origin: str, what: str) -> SourceError:
    return SourceError(
        f"chart archive {origin} refused: {what}",
        hint="a chart archive made by 'helm package' has none of this; check who "
        "publishes this chart",
    )
