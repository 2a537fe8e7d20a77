"""Charts in OCI registries, through the real ``helm`` binary in the sandbox: resolve a version
(exact tag or constraint) and pull the archive, with a private Helm home that holds only the
matched registry's credentials."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from tether.api.source import Source
from tether.errors import SourceError
from tether.sandbox import Runner, ToolError
from tether.source.credentials import RepoCredentials, normalize_oci_url, redact
from tether.source.failures import (
    REASON_NOT_FOUND,
    REASON_TIMEOUT,
    REASON_UNREACHABLE,
    source_error,
)
from tether.source.helm_http import auth_error
from tether.tools import tool_path

REASON_CHART_NOT_FOUND = "ChartNotFound"
REASON_VERSION_NOT_FOUND = "ChartVersionNotFound"
# Status codes as words: a digest ("sha256:...a401...") must not read as one.
_AUTH = re.compile(r"\b(?:401|403)\b|unauthorized|denied|credential not found")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def helm_binary() -> str:
    return tool_path("helm")


def chart_reference(source: Source) -> str:
    """``oci://host[:port]/path/chart`` for a source whose repoURL is an OCI registry."""
    base = normalize_oci_url(source.repo_url)
    return f"{base}/{source.chart.strip('/')}"


def registry_host(reference: str) -> str:
    """``host[:port]`` of an ``oci://`` reference: the key of a registry config entry."""
    return urlsplit(reference).netloc


def plain_http(reference: str, creds: RepoCredentials | None) -> bool:
    """Whether to talk HTTP rather than HTTPS: a Secret's ``insecureOCIForceHttp``, or a
    registry on a loopback address (which never leaves the machine)."""
    if creds is not None and creds.force_http:
        return True
    host = (urlsplit(reference).hostname or "").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def helm_home(
    registries: Mapping[str, RepoCredentials | None],
) -> Iterator[tuple[Path, dict[str, str]]]:
    """A fresh private Helm home (config, cache, data, registry config) and the environment
    that points helm at it; the registry config holds only ``registries``' credentials.
    Removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tether-helm-") as tmp:
        home = Path(tmp)
        auths = {
            host: {"auth": base64.b64encode(f"{c.username}:{c.password}".encode()).decode()}
            for host, c in registries.items()
            if c is not None and c.password
        }
        config = home / "registry.json"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"auths": auths}, f)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_DATA_HOME": str(home / "data"),
            "HELM_REGISTRY_CONFIG": str(config),
            "HELM_REPOSITORY_CONFIG": str(home / "config" / "repositories.yaml"),
            "HELM_REPOSITORY_CACHE": str(home / "cache" / "repository"),
            "DOCKER_CONFIG": str(home / "docker"),
        }
        yield home, env


def _flags(reference: str, creds: RepoCredentials | None) -> list[str]:
    flags = ["--plain-http"] if plain_http(reference, creds) else []
    if creds is not None and creds.insecure:
        flags.append("--insecure-skip-tls-verify")
    return flags


RESOLVE_TTL = 60.0
"""Seconds a resolved version is reused for the same reference, revision and credentials."""
_resolved: dict[tuple[str, str, str, bool, bool], tuple[float, str]] = {}


def clear_resolved() -> None:
    """Forget every cached OCI version resolution."""
    _resolved.clear()


async def resolve_oci(source: Source, creds: RepoCredentials | None, runner: Runner) -> str:
    """The exact version ``targetRevision`` names in the registry: helm lists the tags and
    applies the constraint, then reads the chart's own ``Chart.yaml``. An answer is reused
    for RESOLVE_TTL seconds, so frequent comparisons do not each ask the registry."""
    ref = chart_reference(source)
    wanted = _wanted(source)
    key = (ref, wanted, _fingerprint(creds), plain_http(ref, creds), bool(creds and creds.insecure))
    hit = _resolved.get(key)
    if hit is not None and time.monotonic() - hit[0] < RESOLVE_TTL:
        return hit[1]
    version = await _show_version(source, creds, runner, ref, wanted)
    _resolved[key] = (time.monotonic(), version)
    if len(_resolved) > 1024:
        _resolved.pop(next(iter(_resolved)))
    return version


async def _show_version(
    source: Source, creds: RepoCredentials | None, runner: Runner, ref: str, wanted: str
) -> str:
    argv = [helm_binary(), "show", "chart", ref, *_flags(ref, creds)]
    if wanted:
        argv += ["--version", wanted]
    with helm_home({registry_host(ref): creds}) as (home, env):
        result = await _run(runner, argv, home, env, ref, source, creds)
    try:
        chart = yaml.safe_load(result)
    except yaml.YAMLError:
        chart = None
    version = str(chart.get("version", "")) if isinstance(chart, dict) else ""
    if not version:
        raise SourceError(
            f"{redact(ref)}: helm show chart gave no version",
            hint="the artifact may not be a Helm chart",
        )
    return version


async def pull_oci(
    source: Source, version: str, creds: RepoCredentials | None, runner: Runner
) -> tuple[bytes, str]:
    """The archive of ``version`` of the chart, and the reference it came from."""
    ref = chart_reference(source)
    with helm_home({registry_host(ref): creds}) as (home, env):
        out = home / "pulled"
        out.mkdir()
        argv = [helm_binary(), "pull", ref, "--version", version, "--destination", str(out)]
        await _run(runner, [*argv, *_flags(ref, creds)], home, env, ref, source, creds)
        archives = sorted(out.glob("*.tgz"))
        if len(archives) != 1:
            raise SourceError(
                f"helm pull {redact(ref)} {version} gave {len(archives)} archives, not one",
                hint="the artifact may not be a Helm chart",
            )
        return archives[0].read_bytes(), f"{ref}:{version}"


def _fingerprint(creds: RepoCredentials | None) -> str:
    if creds is None or not creds.password:
        return ""
    return hashlib.sha256(f"{creds.username}\0{creds.password}".encode()).hexdigest()


def _wanted(source: Source) -> str:
    rev = source.target_revision.strip()
    return "" if rev.upper() in ("", "HEAD", "*") else rev


async def _run(
    runner: Runner,
    argv: list[str],
    home: Path,
    env: dict[str, str],
    ref: str,
    source: Source,
    creds: RepoCredentials | None,
) -> str:
    limits = replace(runner.limits, network=True, output_bytes=64 * 1024 * 1024)
    try:
        result = await runner.run(argv, tool="helm", cwd=home, env=env, limits=limits)
    except ToolError as e:
        raise _classify(e, ref, source, creds) from None
    return result.stdout.decode(errors="replace")


def _classify(e: ToolError, ref: str, source: Source, creds: RepoCredentials | None) -> SourceError:
    """A SourceError for what helm said, naming the registry and chart (never a password)."""
    secrets = creds.secrets if creds else []
    said = redact(e.stderr.strip() or e.message, secrets)
    low = said.lower()
    safe = redact(ref)
    repo = normalize_oci_url(source.repo_url)
    rev = source.target_revision
    if "timed out" in e.message:
        return source_error(REASON_TIMEOUT, f"helm timed out on {safe}", hint=e.hint)
    if _AUTH.search(low):
        sent = bool(creds is not None and creds.password)
        return auth_error(repo, creds, f"helm said: {said}", sent=sent)
    if "could not locate a version" in low:
        return source_error(
            REASON_VERSION_NOT_FOUND,
            f"chart {source.chart} in {repo} has no version matching {rev!r}",
            hint=f"check targetRevision against the chart's tags; helm said: {said}",
        )
    if "not found" in low or "name unknown" in low or "manifest unknown" in low:
        reason = REASON_VERSION_NOT_FOUND if rev.strip() else REASON_CHART_NOT_FOUND
        return source_error(
            reason,
            f"chart {source.chart} version {rev!r} not found in {repo}",
            hint=f"check the chart name, the repoURL and targetRevision; helm said: {said}",
        )
    if "connection refused" in low or "no such host" in low or "dial tcp" in low:
        return source_error(
            REASON_UNREACHABLE,
            f"cannot reach the registry of {safe}",
            hint=f"check the repoURL and the network; helm said: {said}",
        )
    if "http response to https client" in low:
        return source_error(
            REASON_UNREACHABLE,
            f"the registry of {safe} speaks plain HTTP, not HTTPS",
            hint='set insecureOCIForceHttp: "true" in its repository Secret if that is intended',
        )
    return source_error(
        REASON_NOT_FOUND if re.search(r"\b404\b", low) else REASON_UNREACHABLE,
        f"helm could not read chart {source.chart} from {repo}",
        hint=f"helm said: {said}",
    )
