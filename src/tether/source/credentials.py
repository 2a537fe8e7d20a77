"""Repository credentials (Git, Helm, OCI): parsed from Kubernetes Secrets, matched to URLs
by type and longest prefix, never printed."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# Git's scp-like syntax, "user@host:path", has no scheme; a Windows drive ("C:\\x") is not it.
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:]{2,}):(?P<path>(?!//).*)$")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "git": 9418}
# Both patterns start at the literal "://" and look back for the scheme: the regex engine
# then skips straight to each "://", which keeps masking a whole status document cheap.
_URL_PASSWORD = re.compile(r"://(?<=[A-Za-z0-9+.-]://)(?P<user>[^/@\s:]*):[^/@\s]*@")
# Over HTTP the user part alone may be the secret ("https://<token>@host/...").
_HTTP_USERINFO = re.compile(r"://(?:(?<=http://)|(?<=https://))[^/@\s]+@", re.IGNORECASE)
_TRUE = {"true", "yes", "1", "on"}
# "host[:port]/path" without scheme or user: an OCI registry, never scp-like git ("h:path").
_OCI_BARE = re.compile(r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d+)?(?:/|$)")

SECRET_TYPE_LABEL = "tether.dev/secret-type"
SECRET_TYPE_REPOSITORY = "repository"
"""A Secret for one repository (its ``url`` also covers the paths under it)."""
SECRET_TYPE_TEMPLATE = "repo-creds"
"""A credential template: its ``url`` is a prefix for many repositories."""
REPO_SECRET_SELECTOR = f"{SECRET_TYPE_LABEL} in ({SECRET_TYPE_REPOSITORY},{SECRET_TYPE_TEMPLATE})"
"""The label selector that lists both kinds of repository Secrets."""
SECRET_TYPE_WRITE = "repository-write"
"""A Secret holding only a push credential: used to write (``tether app rollback``), never
to read."""
WRITE_SECRET_SELECTOR = (
    f"{SECRET_TYPE_LABEL} in ({SECRET_TYPE_REPOSITORY},{SECRET_TYPE_TEMPLATE},{SECRET_TYPE_WRITE})"
)
"""The label selector that lists every Secret that may grant write access."""

REPO_TYPE_GIT = "git"
REPO_TYPE_HELM = "helm"
REPO_TYPE_OCI = "oci"
REPO_TYPES = (REPO_TYPE_GIT, REPO_TYPE_HELM, REPO_TYPE_OCI)


@dataclass
class RepoCredentials:
    """How to authenticate to one repository: HTTP Basic, or an SSH key and known hosts."""

    username: str = ""
    password: str = ""
    ssh_private_key: str = ""
    known_hosts: str = ""
    insecure_ignore_host_key: bool = False
    origin: str = ""
    """Where these came from (``Secret ns/name``), so an authentication failure names it."""
    repo_type: str = REPO_TYPE_GIT
    """What kind of repository they are for: ``git``, ``helm`` or ``oci``."""
    template: bool = False
    """From a ``repo-creds`` Secret (a credential template) rather than a ``repository`` one."""
    enable_oci: bool = False
    """Argo CD's ``enableOCI`` on a ``helm`` Secret: the repository is an OCI registry."""
    insecure: bool = False
    """``insecure``: do not verify the server's TLS certificate (Helm and OCI only)."""
    force_http: bool = False
    """``insecureOCIForceHttp``: talk plain HTTP to the OCI registry."""
    write: bool = False
    """``write: "true"`` (or a ``repository-write`` Secret): tether may push with these."""

    def __repr__(self) -> str:
        def mask(value: str) -> str:
            return "'***'" if value else "''"

        hosts = len(self.known_hosts.splitlines())
        return (
            f"RepoCredentials(username={self.username!r}, password={mask(self.password)}, "
            f"ssh_private_key={mask(self.ssh_private_key)}, known_hosts=<{hosts} lines>, "
            f"insecure_ignore_host_key={self.insecure_ignore_host_key!r}, "
            f"repo_type={self.repo_type!r}, template={self.template!r})"
        )

    __str__ = __repr__

    @property
    def secrets(self) -> list[str]:
        """Every string that must not reach a log: the password and each line of the key."""
        out = [self.password] if self.password else []
        for line in self.ssh_private_key.splitlines():
            line = line.strip()
            if len(line) >= 8 and not line.startswith("-----"):
                out.append(line)
        return out


def from_secret_data(
    data: Mapping[str, str], origin: str = "", *, template: bool = False
) -> RepoCredentials:
    """Credentials from a repository Secret's decoded ``data`` (Argo CD's key names).

    ``token`` is accepted in place of ``password``; with a token and no username the
    username is ``x-access-token``, which GitHub, GitLab and Gitea all accept for tokens.
    ``type`` is ``git`` (the default), ``helm`` or ``oci``; any other value leaves the
    credentials matching nothing (see ``secret_type_problem``).
    """
    password = data.get("password") or data.get("token") or ""
    username = data.get("username") or ("x-access-token" if password else "")
    key = data.get("sshPrivateKey", "").replace("\r\n", "\n").strip()
    return RepoCredentials(
        username=username,
        password=password,
        # ssh refuses a key file without its final newline ("invalid format").
        ssh_private_key=key + "\n" if key else "",
        known_hosts=data.get("knownHosts", "").strip(),
        insecure_ignore_host_key=_flag(data, "insecureIgnoreHostKey"),
        origin=origin,
        repo_type=(data.get("type") or REPO_TYPE_GIT).strip().lower(),
        template=template,
        enable_oci=_flag(data, "enableOCI"),
        insecure=_flag(data, "insecure"),
        force_http=_flag(data, "insecureOCIForceHttp"),
        write=_flag(data, "write"),
    )


def _flag(data: Mapping[str, str], key: str) -> bool:
    return data.get(key, "").strip().lower() in _TRUE


def secret_type_problem(data: Mapping[str, str]) -> str:
    """Why a repository Secret's ``type`` can never match, or ``""`` when it is fine."""
    kind = (data.get("type") or REPO_TYPE_GIT).strip().lower()
    if kind in REPO_TYPES:
        return ""
    return f"type {kind!r} is not one of {', '.join(REPO_TYPES)}; the Secret is not used"


def entries_from_secrets(
    secrets: Iterable[tuple[Mapping[str, Any], Mapping[str, str]]],
) -> list[tuple[str, RepoCredentials]]:
    """``(url prefix, credentials)`` for each repository Secret with a ``url``.

    Takes ``(secret object, its decoded data)`` pairs; the object's label
    ``tether.dev/secret-type`` (``repository`` or ``repo-creds``) says whether it is a
    template, and its namespace/name become the credentials' ``origin``.
    """
    out: list[tuple[str, RepoCredentials]] = []
    for obj, data in secrets:
        url = data.get("url", "").strip()
        if not url:
            continue
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        origin = f"Secret {meta.get('namespace')}/{meta.get('name')}"
        template = labels.get(SECRET_TYPE_LABEL) == SECRET_TYPE_TEMPLATE
        creds = from_secret_data(data, origin, template=template)
        if labels.get(SECRET_TYPE_LABEL) == SECRET_TYPE_WRITE:
            creds.write = True
        out.append((url, creds))
    return out


def match_write_credentials(
    repo_url: str, secrets: Iterable[tuple[str, RepoCredentials]]
) -> RepoCredentials | None:
    """The credentials tether may push to the Git repository ``repo_url`` with: among the
    Secrets that say so explicitly (``write: "true"``, or a ``repository-write`` Secret),
    the longest URL prefix, as for reading. None: tether has no write access."""
    return match_credentials(repo_url, [(u, c) for u, c in secrets if c.write])


def secret_entry(data: Mapping[str, str]) -> tuple[str, RepoCredentials]:
    """``(url prefix, credentials)`` of a repository Secret, the shape match_credentials takes."""
    return data.get("url", "").strip(), from_secret_data(data)


@functools.lru_cache(maxsize=4096)
def normalize_url(url: str) -> str:
    """A canonical spelling of a repository URL, for matching and as the cache key.

    Lowercases scheme and host, drops credentials, default ports, query and fragment,
    a trailing ``/`` and ``.git``, and rewrites ``user@host:path`` as ``ssh://user@host/path``.
    """
    url = url.strip()
    if "://" not in url and (m := _SCP_LIKE.match(url)):
        user = f"{m['user']}@" if m["user"] else ""
        url = f"ssh://{user}{m['host']}/{m['path'].lstrip('/')}"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    # Over SSH the user is part of the address (git@ vs deploy@); over HTTP it is a credential.
    if scheme == "ssh" and parts.username:
        netloc = f"{parts.username}@{netloc}"
    path = parts.path.rstrip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")].rstrip("/")
    return urlunsplit((scheme, netloc, path, "", ""))


def is_oci_url(url: str) -> bool:
    """An OCI registry address: ``oci://host/path``, or ``host[:port]/path`` with no scheme
    (Argo CD's spelling for Helm OCI repositories)."""
    url = url.strip()
    if url.lower().startswith("oci://"):
        return True
    return "://" not in url and bool(_OCI_BARE.match(url))


def normalize_oci_url(url: str) -> str:
    """``oci://host[:port]/path`` for an OCI address written with or without ``oci://``:
    host lowercased, no credentials, no tag, no trailing ``/``."""
    url = url.strip()
    if url.lower().startswith("oci://"):
        url = url[len("oci://") :]
    elif "://" in url:
        url = url.split("://", 1)[1]
    return normalize_url("oci://" + url)


def _accepts(creds: RepoCredentials, repo_type: str) -> bool:
    """Whether credentials of a Secret may be used for a repository of ``repo_type``.

    A ``helm`` Secret with ``enableOCI`` (Argo CD's way to say "OCI registry") serves OCI
    chart sources as an ``oci`` Secret does."""
    if repo_type == REPO_TYPE_OCI:
        return creds.repo_type == REPO_TYPE_OCI or (
            creds.repo_type == REPO_TYPE_HELM and creds.enable_oci
        )
    return creds.repo_type == repo_type


def match_credentials(
    repo_url: str,
    secrets: Iterable[tuple[str, RepoCredentials]],
    *,
    repo_type: str = REPO_TYPE_GIT,
) -> RepoCredentials | None:
    """The credentials for ``repo_url`` among those of ``repo_type``, or None.

    The Secret whose URL is the longest prefix of ``repo_url`` wins; a prefix matches only
    at a path boundary, so ``https://host/org`` covers ``https://host/org/app`` but never
    ``https://host/organisation/app``. On a tie (the same URL) a ``repository`` Secret wins
    over a ``repo-creds`` template. Credentials of another type never match: a Helm
    repository's password is not offered to a Git server on the same host.
    """
    oci = repo_type == REPO_TYPE_OCI
    norm_of = normalize_oci_url if oci else normalize_url
    target = norm_of(repo_url)
    best: tuple[int, bool, RepoCredentials] | None = None
    for prefix, creds in secrets:
        if not _accepts(creds, repo_type):
            continue
        norm = norm_of(prefix)
        if not norm or norm == "oci:":
            continue
        if not (target == norm or target.startswith(norm + "/")):
            continue
        rank = (len(norm), not creds.template)
        if best is None or rank > best[:2]:
            best = (rank[0], rank[1], creds)
    return best[2] if best else None


def match_chart_credentials(
    repo_url: str, secrets: Iterable[tuple[str, RepoCredentials]]
) -> RepoCredentials | None:
    """The credentials for a Helm chart repository: ``oci`` (or ``helm`` with ``enableOCI``)
    Secrets for an OCI registry, ``helm`` Secrets for an HTTP(S) one."""
    kind = REPO_TYPE_OCI if is_oci_url(repo_url) else REPO_TYPE_HELM
    return match_credentials(repo_url, secrets, repo_type=kind)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` safe to write anywhere: the user info of every URL in it, and each of
    ``secrets``, replaced by ``***``.

    The one helper for every repository URL and every message that may quote one (status,
    history, Events, audit records, notifications, logs, cache markers). Over HTTP(S) the
    whole user info goes, since the user part alone may be the token
    (``https://<token>@host/x.git``); over SSH and other schemes the user is part of the
    address (``ssh://git@host/x``) and only a password is masked.
    """
    text = _HTTP_USERINFO.sub("://***@", text)
    text = _URL_PASSWORD.sub(r"://\g<user>:***@", text)
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
