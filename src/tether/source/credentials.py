"""Repository credentials: parsed from Kubernetes Secrets, matched to URLs, never printed."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
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

    def __repr__(self) -> str:
        def mask(value: str) -> str:
            return "'***'" if value else "''"

        hosts = len(self.known_hosts.splitlines())
        return (
            f"RepoCredentials(username={self.username!r}, password={mask(self.password)}, "
            f"ssh_private_key={mask(self.ssh_private_key)}, known_hosts=<{hosts} lines>, "
            f"insecure_ignore_host_key={self.insecure_ignore_host_key!r})"
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


def from_secret_data(data: dict[str, str], origin: str = "") -> RepoCredentials:
    """Credentials from a repository Secret's decoded ``data`` (Argo CD's key names).

    ``token`` is accepted in place of ``password``; with a token and no username the
    username is ``x-access-token``, which GitHub, GitLab and Gitea all accept for tokens.
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
        insecure_ignore_host_key=data.get("insecureIgnoreHostKey", "").strip().lower() in _TRUE,
        origin=origin,
    )


def secret_entry(data: dict[str, str]) -> tuple[str, RepoCredentials]:
    """``(url prefix, credentials)`` of a repository Secret, the shape match_credentials takes."""
    return data.get("url", "").strip(), from_secret_data(data)


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


def match_credentials(
    repo_url: str, secrets: Iterable[tuple[str, RepoCredentials]]
) -> RepoCredentials | None:
    """The credentials whose URL prefix is the longest match for ``repo_url``, or None.

    A prefix matches only at a path boundary, so ``https://host/org`` covers
    ``https://host/org/app`` but never ``https://host/organisation/app``.
    """
    target = normalize_url(repo_url)
    best: tuple[int, RepoCredentials] | None = None
    for prefix, creds in secrets:
        norm = normalize_url(prefix)
        if not norm:
            continue
        if (target == norm or target.startswith(norm + "/")) and (
            best is None or len(norm) > best[0]
        ):
            best = (len(norm), creds)
    return best[1] if best else None


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
