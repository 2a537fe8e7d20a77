"""Helm repository sources (``repoURL`` + ``chart``): which exact chart version a
``targetRevision`` names, the chart unpacked on disk, and Helm repository settings for a
chart's remote dependencies.

Two kinds of repository, told apart by ``repoURL``:

* HTTP(S) chart repositories (``https://host/charts``): ``index.yaml`` is fetched directly,
  cached for INDEX_TTL seconds, and the archive it lists is downloaded, its sha256 checked
  against the index and unpacked by tether itself (no links, nothing outside the chart).
* OCI registries (``oci://host/path`` or ``host/path``): the real ``helm`` binary runs in the
  sandbox with network access and a private home holding only this registry's credentials;
  the pulled archive is unpacked the same safe way.

Credentials go only to the host they belong to: an archive URL on another scheme, host or
port gets none unless the source sets ``helm.passCredentials``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from tether.api.source import Source
from tether.errors import InvalidSpec
from tether.sandbox import Runner
from tether.source import helm_http
from tether.source.chart_archive import unpack_chart
from tether.source.chart_version import Version, highest_match, is_exact
from tether.source.credentials import (
    RepoCredentials,
    is_oci_url,
    normalize_oci_url,
    redact,
)
from tether.source.failures import source_error
from tether.source.helm_http import (
    INDEX_TTL,
    ChartEntry,
    download_archive,
    fetch_index,
    split_userinfo,
)
from tether.source.helm_oci import (
    REASON_CHART_NOT_FOUND,
    REASON_VERSION_NOT_FOUND,
    clear_resolved,
    pull_oci,
    registry_host,
    resolve_oci,
)

__all__ = [
    "INDEX_TTL",
    "REASON_CHART_NOT_FOUND",
    "REASON_VERSION_NOT_FOUND",
    "chart_digest",
    "clear_index_cache",
    "pull_chart",
    "repository_env",
    "resolve_chart",
]

_SHOWN_VERSIONS = 8


async def resolve_chart(source: Source, creds: RepoCredentials | None, runner: Runner) -> str:
    """The exact chart version ``source.target_revision`` names.

    An exact version must exist; a constraint (``1.2.*``, ``~1.2``, ``>=1.0 <2.0``) or
    ``*``/``HEAD``/``""`` picks the highest matching release. Raises SourceError (reason
    ChartNotFound, ChartVersionNotFound, AuthenticationFailed, ...) naming the repository
    and the chart; InvalidSpec for a constraint that does not parse.
    """
    _check(source)
    if is_oci_url(source.repo_url):
        return await resolve_oci(source, creds, runner)
    entry = await _entry(source, creds, source.target_revision)
    return entry.version


async def pull_chart(
    source: Source, version: str, creds: RepoCredentials | None, dest: Path, runner: Runner
) -> Path:
    """Downloads ``version`` of the chart, unpacks it into ``dest`` and returns the chart's
    directory (the one holding ``Chart.yaml``)."""
    _check(source)
    if is_oci_url(source.repo_url):
        archive, origin = await pull_oci(source, version, creds, runner)
    else:
        entry = await _entry(source, creds, version, exact=True)
        pass_creds = bool(source.helm and source.helm.pass_credentials)
        archive, origin = await download_archive(entry, source.repo_url, creds, pass_creds)
    return await asyncio.to_thread(unpack_chart, archive, dest, origin=redact(origin))


async def chart_digest(source: Source, version: str, creds: RepoCredentials | None) -> str:
    """The archive digest the repository's index gives for ``version`` (``""`` for an OCI
    registry, or an index without digests), so a version re-published with new content is
    rendered anew rather than served from the render cache."""
    if is_oci_url(source.repo_url):
        return ""
    return (await _entry(source, creds, version, exact=True)).digest


def clear_index_cache() -> None:
    """Forget every cached index and OCI version resolution: the next resolve asks the
    repository again (for tests, or a refresh that must not wait for INDEX_TTL)."""
    helm_http.clear_index_cache()
    clear_resolved()


def repository_env(
    home: Path,
    repositories: Iterable[tuple[str, RepoCredentials | None]],
    *,
    pass_credentials: bool = False,
) -> dict[str, str]:
    """Helm settings under ``home`` for a chart's remote dependencies, as environment.

    ``repositories`` pairs each dependency repository URL (``https://...`` or ``oci://...``)
    with the credentials matched for it (``match_chart_credentials``), or None. Writes a
    ``repositories.yaml`` (HTTP repositories, named ``dep-0``, ``dep-1``, ...) and a registry
    config (OCI registries), each holding only the credentials given for that repository,
    with 0600 permissions. Helm then sends each repository's credentials to its own host
    only, unless ``pass_credentials`` (the source's ``helm.passCredentials``). Returns the
    three variables that point helm at them (HELM_REPOSITORY_CONFIG, HELM_REPOSITORY_CACHE,
    HELM_REGISTRY_CONFIG), to add to the render's environment (``RenderRequest.env``);
    ``home`` must live as long as the render.
    """
    home.mkdir(parents=True, exist_ok=True)
    repos: list[dict[str, object]] = []
    auths: dict[str, dict[str, str]] = {}
    for i, (url, creds) in enumerate(repositories):
        if is_oci_url(url):
            host = registry_host(normalize_oci_url(url))
            if creds is not None and creds.password:
                token = f"{creds.username}:{creds.password}".encode()
                auths[host] = {"auth": base64.b64encode(token).decode()}
            continue
        clean, creds = split_userinfo(url.strip(), creds)
        entry: dict[str, object] = {"name": f"dep-{i}", "url": clean.rstrip("/")}
        if creds is not None and creds.password:
            entry |= {"username": creds.username, "password": creds.password}
        if creds is not None and creds.insecure:
            entry["insecure_skip_tls_verify"] = True
        if pass_credentials:
            entry["pass_credentials_all"] = True
        repos.append(entry)
    config = home / "config"
    config.mkdir(exist_ok=True)
    _write_private(
        config / "repositories.yaml", yaml.safe_dump({"apiVersion": "", "repositories": repos})
    )
    _write_private(home / "registry.json", json.dumps({"auths": auths}))
    return {
        "HELM_REPOSITORY_CONFIG": str(config / "repositories.yaml"),
        "HELM_REPOSITORY_CACHE": str(home / "repository-cache"),
        "HELM_REGISTRY_CONFIG": str(home / "registry.json"),
    }


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _check(source: Source) -> None:
    if not source.chart.strip():
        raise InvalidSpec(
            f"source {redact(source.repo_url)} is not a Helm repository source: it has no chart",
            hint="set chart: <name> with the Helm repository as repoURL, or a path for Git",
        )


async def _entry(
    source: Source, creds: RepoCredentials | None, revision: str, *, exact: bool = False
) -> ChartEntry:
    index = await fetch_index(source.repo_url, creds)
    repo = redact(source.repo_url)
    versions = index.get(source.chart)
    if not versions:
        raise source_error(
            REASON_CHART_NOT_FOUND,
            f"chart {source.chart!r} not found in {repo}",
            hint=f"the repository has {_sample(sorted(index))}; check the chart name",
        )
    spelled = [e.version for e in versions]
    pick = highest_match(revision, spelled) if not exact else _exact(revision, spelled)
    if pick is None:
        kind = "version" if is_exact(revision) or exact else "version matching"
        raise source_error(
            REASON_VERSION_NOT_FOUND,
            f"chart {source.chart!r} in {repo} has no {kind} {revision!r}",
            hint=f"it has {_sample(_newest_first(spelled))}; check targetRevision",
        )
    return next(e for e in versions if e.version == pick)


def _exact(version: str, spelled: Sequence[str]) -> str | None:
    return version if version in spelled else highest_match(version, spelled)


def _newest_first(spelled: Sequence[str]) -> list[str]:
    parsed = [(v, s) for s in spelled if (v := Version.parse(s)) is not None]
    return [s for _, s in sorted(parsed, key=lambda p: p[0], reverse=True)]


def _sample(names: Sequence[str]) -> str:
    if not names:
        return "no charts"
    shown = ", ".join(names[:_SHOWN_VERSIONS])
    more = f" and {len(names) - _SHOWN_VERSIONS} more" if len(names) > _SHOWN_VERSIONS else ""
    return shown + more
