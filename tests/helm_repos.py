"""Helm repository fixtures: a real HTTP chart repository per test, and one real OCI registry
(Debian's docker-registry) per session, anonymous and with a password, charts pushed by helm."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from devcluster.chartrepo import ChartRepo, write_chart  # noqa: E402
from devcluster.ociregistry import OCIRegistry  # noqa: E402

CHART = "greeter"
VERSIONS = ("1.2.3", "1.2.4", "1.3.0-rc.1", "2.0.0")
"""The versions of CHART every fixture repository holds."""
OCI_USER = "robot"
OCI_PASSWORD = "oci-pass-7f3e9c"


@dataclass
class Registry:
    server: OCIRegistry
    url: str
    """``oci://127.0.0.1:PORT/charts``: the repoURL of charts pushed there."""


def _charts(root: Path) -> list[Path]:
    """CHART packaged at every version in VERSIONS (greeting names the version)."""
    out = []
    for version in VERSIONS:
        src = write_chart(root / f"src-{version}", CHART, config_value=f"hello from {version}")
        out.append(ChartRepo(root / f"pkg-{version}").add_chart(src, version))
    return out


@pytest.fixture
def chart_repo_factory(tmp_path: Path) -> Iterator[Callable[..., ChartRepo]]:
    """Makes started HTTP chart repositories (``username``/``password`` for Basic auth,
    ``tls`` for HTTPS with a self-signed certificate), each holding CHART at VERSIONS with an
    index unless ``charts=False``; all stopped afterwards."""
    started: list[ChartRepo] = []

    def make(
        username: str = "", password: str = "", *, charts: bool = True, tls: bool = False
    ) -> ChartRepo:
        root = tmp_path / f"chartrepo-{len(started)}"
        repo = ChartRepo(root / "www", username=username, password=password, tls=tls).start()
        started.append(repo)
        if charts:
            for archive in _charts(root / "build"):
                archive.rename(repo.root / archive.name)
            repo.index()
        return repo

    yield make
    for repo in started:
        repo.stop()


@pytest.fixture
def chart_repo(chart_repo_factory: Callable[..., ChartRepo]) -> ChartRepo:
    """An anonymous HTTP chart repository holding CHART at VERSIONS."""
    return chart_repo_factory()


def _registry(root: Path, username: str = "", password: str = "") -> Iterator[Registry]:
    server = OCIRegistry(root / "registry", username=username, password=password).start()
    try:
        url = ""
        for archive in _charts(root / "build"):
            url = server.push(archive, "charts")
        yield Registry(server, url)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous OCI registry with CHART at VERSIONS under ``/charts``."""
    yield from _registry(tmp_path_factory.mktemp("oci"))


@pytest.fixture(scope="session")
def oci_registry_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An OCI registry behind HTTP Basic auth (OCI_USER / OCI_PASSWORD), same charts."""
    yield from _registry(tmp_path_factory.mktemp("oci-auth"), OCI_USER, OCI_PASSWORD)
