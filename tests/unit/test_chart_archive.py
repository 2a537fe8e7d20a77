"""Unpacking chart archives: only regular files inside the chart directory, bounded size."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tether.errors import SourceError
from tether.source import chart_archive
from tether.source.chart_archive import unpack_chart

pytestmark = pytest.mark.unit


def _tgz(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buf.getvalue()


def _file(name: str, data: bytes = b"x: 1\n") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _chart(*extra: tuple[tarfile.TarInfo, bytes]) -> bytes:
    return _tgz(_file("demo/Chart.yaml", b"name: demo\nversion: 1.0.0\n"), *extra)


def test_a_chart_unpacks_into_its_directory(tmp_path: Path) -> None:
    archive = _chart(_file("demo/templates/cm.yaml"), _file("demo/values.yaml"))
    chart = unpack_chart(archive, tmp_path / "out", origin="http://repo/demo-1.0.0.tgz")
    assert chart == tmp_path / "out" / "demo"
    assert (chart / "templates" / "cm.yaml").read_text() == "x: 1\n"


@pytest.mark.parametrize(
    ("member", "words"),
    [
        (_file("../escape.yaml"), "points outside"),
        (_file("demo/../../escape.yaml"), "points outside"),
        (_file("/etc/evil"), "absolute"),
    ],
)
def test_entries_outside_the_chart_are_refused(
    tmp_path: Path, member: tuple[tarfile.TarInfo, bytes], words: str
) -> None:
    with pytest.raises(SourceError) as e:
        unpack_chart(_chart(member), tmp_path / "out", origin="http://repo/demo.tgz")
    assert words in str(e.value) and "http://repo/demo.tgz" in str(e.value)
    assert not (tmp_path / "escape.yaml").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE])
def test_links_and_special_files_are_refused(tmp_path: Path, kind: bytes) -> None:
    info = tarfile.TarInfo("demo/values.yaml")
    info.type = kind
    info.linkname = "/etc/passwd"
    with pytest.raises(SourceError) as e:
        unpack_chart(_chart((info, b"")), tmp_path / "out", origin="o")
    assert "'demo/values.yaml'" in str(e.value)
    assert not (tmp_path / "out" / "demo" / "values.yaml").exists()


def test_over_large_archives_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chart_archive, "MAX_UNPACKED_BYTES", 1000)
    big = _chart(_file("demo/big.yaml", b"a" * 5000))
    with pytest.raises(SourceError, match="unpacks to more than 1000 bytes"):
        unpack_chart(big, tmp_path / "out", origin="o")
    monkeypatch.setattr(chart_archive, "MAX_ARCHIVE_BYTES", 10)
    with pytest.raises(SourceError, match="larger than 10 bytes"):
        unpack_chart(big, tmp_path / "out2", origin="o")


def test_an_entry_listed_twice_is_refused(tmp_path: Path) -> None:
    twice = _chart(_file("demo/values.yaml"), _file("demo/values.yaml", b"x: 2\n"))
    with pytest.raises(SourceError, match=r"'demo/values\.yaml' is listed twice"):
        unpack_chart(twice, tmp_path / "out", origin="o")


def test_not_a_chart(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"no Chart\.yaml"):
        unpack_chart(_tgz(_file("demo/values.yaml")), tmp_path / "a", origin="o")
    with pytest.raises(SourceError, match="2 top-level entries"):
        unpack_chart(_chart(_file("other/x.yaml")), tmp_path / "b", origin="o")
    with pytest.raises(SourceError, match=r"not a readable \.tgz"):
        unpack_chart(b"<html>login</html>", tmp_path / "c", origin="o")
