"""Who is asking, as a Git identity: the kubeconfig's current user (the client certificate's
common name, else the kubeconfig user entry's name) or an explicit ``Name <email>``.

The email of a kubeconfig identity is ``<name>@<context>.tether`` (both reduced to the
characters an address allows), unless the name already is an email address (OIDC users often
are), which is then kept as it is. It is an identity for Git history, not a mailbox.
"""

from __future__ import annotations

import base64
import getpass
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tether.errors import TetherError

_AUTHOR = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<email>[^<>\s]+)>\s*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CN_OID = bytes([0x06, 0x03, 0x55, 0x04, 0x03])


@dataclass(frozen=True)
class Identity:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


@dataclass(frozen=True)
class KubeUser:
    """The kubeconfig's user for one context: the name Git history will show, and where."""

    name: str
    context: str


def requester(kubeconfig_user: str | None, author: str | None, *, context: str = "") -> Identity:
    """The author of a commit tether writes for someone: ``author`` (``Name <email>``) when
    given, else the kubeconfig user (``name`` in ``context``), else the local ``user@host``."""
    if author:
        m = _AUTHOR.match(author)
        if m is None or not m["name"]:
            raise TetherError(
                f"--author {author!r} is not 'Name <email>'",
                hint='write it as git does, e.g. --author "Ada Lovelace <ada@example.com>"',
            )
        return Identity(m["name"], m["email"])
    if kubeconfig_user:
        if _EMAIL.match(kubeconfig_user):
            return Identity(kubeconfig_user.split("@", 1)[0], kubeconfig_user)
        domain = _slug(context) or "kubernetes"
        return Identity(kubeconfig_user, f"{_slug(kubeconfig_user) or 'user'}@{domain}.tether")
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Identity(user, f"{_slug(user) or 'user'}@{_slug(socket.gethostname()) or 'host'}")


def kube_user(kubeconfig: str | None, context: str | None = None) -> KubeUser | None:
    """The user of ``context`` (default: the current one) in the kubeconfig at ``kubeconfig``
    (default: $KUBECONFIG's first file, else ~/.kube/config). None when there is no
    kubeconfig (in a Pod) or it names no user."""
    path = kubeconfig or (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    file = Path(path) if path else Path.home() / ".kube" / "config"
    try:
        config = yaml.safe_load(file.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(config, dict):
        return None
    ctx_name = context or str(config.get("current-context") or "")
    ctx = _named(config.get("contexts"), ctx_name).get("context") or {}
    user_name = str(ctx.get("user") or "")
    if not user_name:
        return None
    entry = _named(config.get("users"), user_name).get("user") or {}
    cn = _certificate_cn(entry, file.parent)
    return KubeUser(cn or user_name, ctx_name)


def _named(items: Any, name: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return {}


def _certificate_cn(user: dict[str, Any], base: Path) -> str:
    """The subject CN of the user's client certificate, or ``""``."""
    pem = b""
    try:
        if user.get("client-certificate-data"):
            pem = base64.b64decode(str(user["client-certificate-data"]))
        elif user.get("client-certificate"):
            pem = (base / str(user["client-certificate"])).read_bytes()
    except (OSError, ValueError):
        return ""
    return subject_cn(pem)


def subject_cn(pem: bytes) -> str:
    """The subject common name of a PEM (or DER) certificate, or ``""``."""
    der = pem
    if b"-----BEGIN" in pem:
        body = b"".join(
            line for line in pem.splitlines() if line.strip() and not line.startswith(b"-----")
        )
        try:
            der = base64.b64decode(body)
        except ValueError:
            return ""
    try:
        tbs = _children(_children(der)[0][1])[0][1]
        fields = _children(tbs)
        # TBSCertificate: [0] version (optional), serial, signature, issuer, validity, subject
        start = 1 if fields and fields[0][0] == 0xA0 else 0
        subject = fields[start + 4][1]
    except (IndexError, ValueError):
        return ""
    cn = ""
    for _, rdn in _children(subject):
        for _, attr in _children(rdn):
            parts = _children(attr)
            if len(parts) == 2 and attr.startswith(_CN_OID):
                cn = parts[1][1].decode(errors="replace")
    return cn


def _children(der: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) of each DER element in ``der``, one level deep."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(der):
        tag = der[i]
        length = der[i + 1]
        i += 2
        if length & 0x80:
            n = length & 0x7F
            if n == 0 or n > 4:
                raise ValueError("unsupported DER length")
            length = int.from_bytes(der[i : i + n], "big")
            i += n
        if i + length > len(der):
            raise ValueError("truncated DER")
        out.append((tag, der[i : i + length]))
        i += length
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.").lower()


__all__ = ["Identity", "KubeUser", "kube_user", "requester", "subject_cn"]
