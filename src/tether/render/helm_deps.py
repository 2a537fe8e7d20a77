"""A chart's dependencies: which are vendored, which local (``file://``), which need the network.

Helm reads a chart's dependencies from ``Chart.yaml`` (``requirements.yaml`` for
``apiVersion: v1`` charts) and expects each one in ``charts/``. One already there (vendored)
is used as it is; a ``file://`` one is packaged from the repository by ``helm dependency
build``, offline, and must stay inside the repository; one from a chart repository or an OCI
registry is fetched only where the application may reach the network.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tether.errors import RenderError
from tether.render.base import RepoView
from tether.render.helm_paths import check_links_inside, confined, repo_relative
from tether.render.parse import load_mapping

FILE_SCHEME = "file://"
LOCAL = "local"
REMOTE = "remote"
MISSING = "missing"
MAX_DEPTH = 20
"""Nested ``file://`` dependencies followed at most (a chain this deep is a mistake)."""


@dataclass(frozen=True)
class Dependency:
    name: str
    version: str = ""
    repository: str = ""

    @property
    def kind(self) -> str:
        """``local`` (file://), ``remote`` (a chart repository, OCI registry or repo alias), or
        ``missing`` (no repository: it must be vendored in charts/)."""
        if self.repository.startswith(FILE_SCHEME):
            return LOCAL
        return REMOTE if self.repository else MISSING

    @property
    def local_path(self) -> str:
        return self.repository[len(FILE_SCHEME) :]


def loopback_oci(repository: str) -> bool:
    """An ``oci://`` registry on this machine (127.0.0.1, ::1, localhost): it speaks plain
    HTTP, and no credential sent to it leaves the machine."""
    parts = urlsplit(repository)
    if parts.scheme != "oci":
        return False
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_dependencies(
    chart_yaml: bytes, file: str, requirements: bytes | None
) -> list[Dependency]:
    """The dependencies a chart declares (``requirements`` is ``requirements.yaml``'s bytes)."""
    chart = load_chart(chart_yaml, file)
    entries = chart.get("dependencies")
    source = file
    if not entries and str(chart.get("apiVersion", "")) == "v1" and requirements is not None:
        source = posixpath.join(posixpath.dirname(file), "requirements.yaml")
        entries = load_chart(requirements, source).get("dependencies")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise RenderError(
            "dependencies is not a list", file=source, hint="list each dependency as a mapping"
        )
    return [_dependency(entry, source) for entry in entries]


def load_chart(data: bytes, file: str) -> dict[str, object]:
    """A chart file (Chart.yaml, requirements.yaml) as a mapping; bad YAML names the file."""
    return load_mapping(data, file, what="a chart file")


def _dependency(entry: object, file: str) -> Dependency:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
        raise RenderError(
            "a dependency has no name",
            file=file,
            hint="every entry of dependencies needs name, version and repository",
        )
    return Dependency(
        name=entry["name"],
        version=str(entry.get("version") or ""),
        repository=str(entry.get("repository") or ""),
    )


def is_vendored(dependency: Dependency, names_in_charts: Iterable[str]) -> bool:
    """Whether ``charts/`` already holds the dependency, unpacked or as ``<name>-<ver>.tgz``."""
    archive = re.compile(re.escape(dependency.name) + r"-v?\d[^/]*\.tgz")
    return any(n == dependency.name or archive.fullmatch(n) for n in names_in_charts)


def _charts_listing(chart_dir: Path) -> list[str]:
    charts = chart_dir / "charts"
    return sorted(p.name for p in charts.iterdir()) if charts.is_dir() else []


def _read_dependencies(chart_dir: Path, shown: str) -> list[Dependency]:
    chart_file = chart_dir / "Chart.yaml"
    requirements = chart_dir / "requirements.yaml"
    return parse_dependencies(
        chart_file.read_bytes(),
        posixpath.join(shown, "Chart.yaml") if shown else "Chart.yaml",
        requirements.read_bytes() if requirements.is_file() else None,
    )


@dataclass(frozen=True)
class Build:
    """One ``helm dependency build``: a chart whose ``charts/`` lacks some dependencies."""

    chart_dir: Path
    shown: str
    """The chart's repository path, for messages."""
    repositories: tuple[str, ...] = ()
    """Remote repositories it fetches from (none: offline)."""

    @property
    def remote(self) -> bool:
        return bool(self.repositories)


@dataclass
class DependencyPlan:
    """What preparing a chart's dependencies needs, found before anything runs."""

    root: Path
    allow_remote: bool
    builds: list[Build]
    """Charts to build, innermost first."""


def plan_dependencies(
    chart_dir: Path, shown: str, root: Path, allow_remote: bool
) -> DependencyPlan:
    """Every ``helm dependency build`` a chart needs, its ``file://`` dependencies first.

    Refuses a ``file://`` path out of the repository, a cycle, and a remote dependency
    where the network is not allowed, naming Chart.yaml and the dependency."""
    plan = DependencyPlan(root, allow_remote, [])
    _plan(plan, chart_dir, shown, [])
    return plan


def _plan(plan: DependencyPlan, chart_dir: Path, shown: str, stack: list[str]) -> None:
    chart_file = posixpath.join(shown, "Chart.yaml") if shown else "Chart.yaml"
    if shown in stack or len(stack) > MAX_DEPTH:
        chain = " -> ".join([*stack, shown])
        raise RenderError(
            f"file:// dependencies form a cycle: {chain}",
            file=chart_file,
            hint="a chart cannot depend on itself; remove one of the dependencies",
        )
    vendored = _charts_listing(chart_dir)
    missing = [d for d in _read_dependencies(chart_dir, shown) if not is_vendored(d, vendored)]
    remote: list[str] = []
    for dep in missing:
        if dep.kind == LOCAL:
            dep_dir, dep_shown = _local_dependency(plan.root, shown, dep, chart_file)
            _plan(plan, dep_dir, dep_shown, [*stack, shown])
        elif dep.kind == REMOTE:
            _check_remote_allowed(dep, chart_file, plan.allow_remote)
            remote.append(dep.repository)
        else:
            raise RenderError(
                f"dependency {dep.name!r} has no repository and is not in charts/",
                file=chart_file,
                hint=f"set its repository (file://, https:// or oci://) or commit it under "
                f"{posixpath.join(shown, 'charts')}/",
            )
    if missing:
        plan.builds.append(Build(chart_dir, shown, tuple(remote)))


def _local_dependency(root: Path, shown: str, dep: Dependency, chart_file: str) -> tuple[Path, str]:
    written = dep.repository
    try:
        rel = repo_relative(
            posixpath.join(shown, dep.local_path),
            what=f"dependency {dep.name!r} at",
            field=f"dependencies in {chart_file}",
            written=written,
        )
        dep_dir = confined(root, rel, shown=written, what=f"dependency {dep.name!r}")
    except RenderError as e:
        raise RenderError(e.message, file=chart_file, hint=e.hint) from e
    if not (dep_dir / "Chart.yaml").is_file():
        raise RenderError(
            f"dependency {dep.name!r} points to {written}, which holds no Chart.yaml",
            file=chart_file,
            hint="check the path: it is relative to the directory of this Chart.yaml",
        )
    check_links_inside(dep_dir, root, rel)
    return dep_dir, rel


def _check_remote_allowed(dep: Dependency, chart_file: str, allow_remote: bool) -> None:
    if allow_remote:
        return
    raise RenderError(
        f"dependency {dep.name!r} comes from {dep.repository}, and the controller does not "
        "fetch charts from the network",
        file=chart_file,
        hint="vendor it under charts/ (helm dependency build, then commit the archive), use a "
        "file:// dependency, or start the controller with --allow-remote-sources",
    )


# --- what a render reads, from git objects alone ------------------------------------------------


def remote_repositories(view: RepoView, chart_path: str) -> list[str]:
    """The chart repositories and OCI registries a render of the chart at ``chart_path``
    fetches dependencies from (those not vendored in ``charts/``), nested ``file://``
    dependencies included: what a repository configuration with credentials must cover."""
    remote: list[str] = []
    _walk(view, chart_path, [], remote, 0)
    return sorted(remote)


def dependency_inputs(view: RepoView, chart_path: str) -> list[str] | None:
    """Repository directories of every ``file://`` dependency the chart at ``chart_path`` needs
    built (nested ones too); None when a dependency must come from the network."""
    found: list[str] = []
    remote: list[str] = []
    _walk(view, chart_path, found, remote, 0)
    return None if remote else found


def _walk(view: RepoView, chart_path: str, found: list[str], remote: list[str], depth: int) -> None:
    """Collect the ``file://`` dependency directories (``found``) and remote repositories
    (``remote``) of the chart at ``chart_path``, following local dependencies."""
    if depth > MAX_DEPTH:
        return  # a cycle: the render refuses it, naming the charts
    chart_file = posixpath.join(chart_path, "Chart.yaml")
    data = view.read(chart_file)
    if data is None:
        return
    requirements = view.read(posixpath.join(chart_path, "requirements.yaml"))
    try:
        deps = parse_dependencies(data, chart_file, requirements)
    except RenderError:
        return  # the render reports it; the chart directory is already an input
    charts = posixpath.join(chart_path, "charts")
    vendored = view.listdir(charts) if view.is_dir(charts) else []
    for dep in deps:
        if is_vendored(dep, vendored) or dep.kind == MISSING:
            continue
        if dep.kind == REMOTE:
            if dep.repository not in remote:
                remote.append(dep.repository)
            continue
        dep_path = posixpath.normpath(posixpath.join(chart_path, dep.local_path))
        if dep_path.startswith(("../", "/")) or dep_path == "..":
            continue  # refused by the render
        dep_path = "" if dep_path == "." else dep_path
        if dep_path not in found:
            found.append(dep_path)
            _walk(view, dep_path, found, remote, depth + 1)
