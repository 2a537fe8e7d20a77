"""A link to a commit on its repository's web host, pure: only ever ``http(s)://``."""

from __future__ import annotations

import re
import urllib.parse

_SCP = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>[^/][^:]*)$")
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
_PATH = re.compile(r"^[\w.~-]+(?:/[\w.~-]+)*$")


def commit_url(repo_url: str, sha: str) -> str:
    """``https://host/owner/repo/commit/<sha>`` for a repository on a web host
    (``https://host/owner/repo(.git)``, ``git@host:owner/repo.git``,
    ``ssh://git@host/owner/repo.git``), else "". Nothing but a hex commit id and a plain
    host and path ever make it into the link, so it cannot carry a script or credentials."""
    if not _SHA.match(sha or ""):
        return ""
    found = _host_and_path(repo_url.strip())
    if found is None:
        return ""
    scheme, host, path = found
    path = path.strip("/")
    path = path.removesuffix(".git")
    if not _PATH.match(path) or not re.match(r"^[\w.-]+(?::\d+)?$", host):
        return ""
    return f"{scheme}://{host}/{path}/commit/{sha}"


def _host_and_path(url: str) -> tuple[str, str, str] | None:
    scp = _SCP.match(url)
    if scp and "://" not in url:
        return "https", scp["host"], scp["path"]
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("http", "https"):
        scheme = parts.scheme
    elif parts.scheme == "ssh":
        scheme = "https"
    else:
        return None
    host = parts.hostname or ""
    if parts.scheme != "ssh" and parts.port:
        host = f"{host}:{parts.port}"
    if not host:
        return None
    return scheme, host, parts.path
