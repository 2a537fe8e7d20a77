"""HTTP(S) chart repositories: fetch and cache ``index.yaml``, download chart archives, and
send credentials only to the host they belong to."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import yaml

from tether.errors import SourceError
from tether.source.chart_archive import MAX_ARCHIVE_BYTES
from tether.source.credentials import RepoCredentials, normalize_url, redact

if TYPE_CHECKING:
    import aiohttp

from tether.source.failures import (
    REASON_AUTH,
    REASON_NOT_FOUND,
    REASON_TIMEOUT,
    REASON_UNREACHABLE,
    source_error,
)

INDEX_TTL = 60.0
"""Seconds a fetched ``index.yaml`` is reused for the same repository and credentials."""
MAX_INDEX_BYTES = 64 * 1024 * 1024
"""Most bytes an ``index.yaml`` may have (the largest public indexes are about 20 MiB)."""
HTTP_TIMEOUT = 60.0
MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class ChartEntry:
    """One version of a chart as ``index.yaml`` lists it."""

    name: str
    version: str
    urls: tuple[str, ...]
    digest: str
    """sha256 of the archive, hex; ``""`` when the index gives none."""


ChartIndex = dict[str, list[ChartEntry]]

_IndexKey = tuple[str, str, bool]
_cache: dict[_IndexKey, tuple[float, ChartIndex]] = {}
_inflight: dict[_IndexKey, asyncio.Task[ChartIndex]] = {}


def clear_index_cache() -> None:
    """Forget every cached ``index.yaml`` (the next resolve fetches again)."""
    _cache.clear()
    _inflight.clear()


def split_userinfo(url: str, creds: RepoCredentials | None) -> tuple[str, RepoCredentials | None]:
    """``url`` without user info; a user and password written into it fill in what the
    matched Secret does not give."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, creds
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = (unquote(p) for p in userinfo.partition(":"))
    base = creds or RepoCredentials()
    merged = replace(base, username=base.username or user, password=base.password or password)
    return urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment)), merged


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port): where a credential may be sent."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme, 0)


async def fetch_index(repo_url: str, creds: RepoCredentials | None) -> ChartIndex:
    """The repository's charts, from a cache younger than INDEX_TTL or fetched now."""
    url, creds = split_userinfo(repo_url.strip(), creds)
    key = (normalize_url(url), _fingerprint(creds), bool(creds and creds.insecure))
    hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < INDEX_TTL:
        return hit[1]
    # Apps on one repository compared at once share one fetch.
    loop = asyncio.get_running_loop()
    running = _inflight.get(key)
    if running is not None and running.get_loop() is loop:
        return await asyncio.shield(running)
    task = loop.create_task(_fetch_index(url, creds))
    _inflight[key] = task
    try:
        index = await asyncio.shield(task)
    finally:
        if _inflight.get(key) is task:
            del _inflight[key]
    _cache[key] = (time.monotonic(), index)
    if len(_cache) > 256:
        _cache.pop(next(iter(_cache)))
    return index


async def _fetch_index(url: str, creds: RepoCredentials | None) -> ChartIndex:
    index_url = url.rstrip("/") + "/index.yaml"
    body = await http_get(index_url, creds, repo_url=url, cap=MAX_INDEX_BYTES, what="index.yaml")
    return await asyncio.to_thread(parse_index, body, redact(index_url))


def parse_index(body: bytes, where: str) -> ChartIndex:
    """The ``entries`` of an ``index.yaml``; raises SourceError naming ``where`` when it is
    not one."""
    try:
        doc = yaml.load(body, Loader=_Loader)
    except yaml.YAMLError as e:
        raise SourceError(
            f"{where} is not valid YAML: {e}", hint="check that the URL is a chart repository"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), dict):
        raise SourceError(
            f"{where} has no 'entries': it is not a Helm chart repository index",
            hint="repoURL must be the repository's base URL (the directory of index.yaml)",
        )
    out: ChartIndex = {}
    for name, versions in doc["entries"].items():
        if not isinstance(versions, list):
            continue
        out[str(name)] = [
            ChartEntry(
                name=str(name),
                version=str(v.get("version", "")),
                urls=tuple(str(u) for u in (v.get("urls") or []) if u),
                digest=str(v.get("digest") or "").strip().lower(),
            )
            for v in versions
            if isinstance(v, dict) and v.get("version") is not None
        ]
    return out


async def download_archive(
    entry: ChartEntry, repo_url: str, creds: RepoCredentials | None, pass_credentials: bool
) -> tuple[bytes, str]:
    """The archive of ``entry`` and the URL it came from, its digest checked.

    The archive URL may be relative to the repository or absolute; credentials go with it
    only when it is on the repository's own scheme, host and port, unless
    ``pass_credentials`` is set (Argo CD's ``passCredentials``)."""
    url, creds = split_userinfo(repo_url.strip(), creds)
    if not entry.urls:
        raise SourceError(
            f"chart {entry.name} {entry.version} in {redact(url)}/index.yaml lists no download URL",
            hint="the repository's index is broken; re-create it with 'helm repo index'",
        )
    archive_url = urljoin(url.rstrip("/") + "/", entry.urls[0])
    body = await http_get(
        archive_url,
        creds,
        repo_url=url,
        cap=MAX_ARCHIVE_BYTES,
        what=f"chart {entry.name} {entry.version}",
        anywhere=pass_credentials,
    )
    if entry.digest:
        actual = hashlib.sha256(body).hexdigest()
        if actual != entry.digest:
            err = source_error(
                "DigestMismatch",
                f"chart archive {redact(archive_url)} has sha256 {actual}, but "
                f"{redact(url)}/index.yaml says {entry.digest}; not used",
                hint="the archive changed after the index was made, or something between "
                "tether and the repository altered it; re-run 'helm repo index' if the "
                "chart was re-published",
            )
            raise err
    return body, archive_url


async def http_get(
    url: str,
    creds: RepoCredentials | None,
    *,
    repo_url: str,
    cap: int,
    what: str,
    anywhere: bool = False,
) -> bytes:
    """GET ``url`` following redirects, with HTTP Basic credentials only for requests to
    ``repo_url``'s origin (or to any host when ``anywhere``), at most ``cap`` bytes."""
    import aiohttp  # loaded by a chart repository's first fetch, not by every render

    home = origin_of(repo_url)
    ssl = not (creds is not None and creds.insecure)
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
    current = url
    try:
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
            for _ in range(MAX_REDIRECTS + 1):
                headers = {}
                if creds and creds.password and (anywhere or origin_of(current) == home):
                    headers["Authorization"] = basic_auth(creds)
                get = session.get(current, headers=headers, allow_redirects=False, ssl=ssl)
                async with get as r:
                    if r.status in (301, 302, 303, 307, 308) and "Location" in r.headers:
                        current = urljoin(current, r.headers["Location"])
                        continue
                    if r.status >= 400:
                        sent = bool(headers)
                        raise _status_error(r.status, current, repo_url, creds, what, sent)
                    return await _read_capped(r, cap, current)
    except TimeoutError:
        raise source_error(
            REASON_TIMEOUT,
            f"fetching {what} from {redact(current)} timed out after {HTTP_TIMEOUT:g}s",
            hint="check that the repository is reachable from the controller",
        ) from None
    except aiohttp.ClientError as e:
        raise source_error(
            REASON_UNREACHABLE,
            f"cannot reach {redact(current)} for {what}: {redact(str(e))}",
            hint="check the repoURL and the network",
        ) from None
    raise source_error(
        REASON_UNREACHABLE,
        f"{redact(url)} redirected more than {MAX_REDIRECTS} times fetching {what}",
        hint="check the repoURL",
    )


async def _read_capped(r: aiohttp.ClientResponse, cap: int, url: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in r.content.iter_chunked(1024 * 1024):
        size += len(chunk)
        if size > cap:
            raise SourceError(
                f"{redact(url)} is larger than {cap} bytes; not read",
                hint="check that the URL is a chart repository",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _status_error(
    status: int,
    url: str,
    repo_url: str,
    creds: RepoCredentials | None,
    what: str,
    sent: bool,
) -> SourceError:
    safe = redact(url)
    if status in (401, 403):
        return auth_error(redact(repo_url), creds, f"{safe} answered HTTP {status}", sent=sent)
    if status == 404:
        return source_error(
            REASON_NOT_FOUND,
            f"{what} not found: {safe} answered HTTP 404",
            hint="check repoURL (the directory holding index.yaml) and the chart name",
        )
    return source_error(
        REASON_UNREACHABLE,
        f"fetching {what} from {safe} failed: HTTP {status}",
        hint="the repository server is failing; try again later",
    )


def auth_error(repo: str, creds: RepoCredentials | None, detail: str, *, sent: bool) -> SourceError:
    """An authentication failure naming the Secret whose credentials were refused, or saying
    that none matched; never the password."""
    if sent and creds is not None and creds.origin:
        what = f"the credentials of {creds.origin} (its url matched) were refused"
        fix = f"check the username and password in {creds.origin}"
    elif sent:
        what = "the credentials sent were refused"
        fix = "check the user and password given for it"
    else:
        what = "no credentials were sent: no repository Secret of type helm or oci matched it"
        fix = (
            "create a Secret labelled tether.dev/secret-type=repository (or repo-creds) with "
            "type helm (oci for an OCI registry) whose url is this repository or a prefix "
            "of it, next to the Application"
        )
    return source_error(
        REASON_AUTH, f"authentication to {repo} failed: {what}", hint=f"{fix}; {detail}"
    )


def basic_auth(creds: RepoCredentials) -> str:
    """The HTTP Basic ``Authorization`` header value for ``creds``."""
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    return f"Basic {token}"


def _fingerprint(creds: RepoCredentials | None) -> str:
    if creds is None or not creds.password:
        return ""
    return hashlib.sha256(f"{creds.username}\0{creds.password}".encode()).hexdigest()
