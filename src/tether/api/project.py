"""The Project resource: typed view of its spec, validation, glob matching, and its CRD.

A Project (cluster-scoped, ``projects.tether.dev``) says what the Applications that name it
may deploy: from which repositories, into which namespaces, which kinds, when, and which
namespaces' Applications may name it at all. Field names are Argo CD's AppProject's. The
rules themselves, as pure functions returning violations, are in ``tether.project.rules``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from importlib import resources
from typing import Any

import yaml

from tether.api.names import DEFAULT_PROJECT, GROUP, VERSION
from tether.controller.windows import SyncWindow, parse_windows
from tether.errors import InvalidSpec
from tether.model import Obj
from tether.source.credentials import normalize_url

PROJECT_API_VERSION = f"{GROUP}/{VERSION}"
PROJECT_KIND = "Project"
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
IN_CLUSTER_NAME = "in-cluster"
HINT = "see docs/projects.md for the Project spec"


# ---- globs -----------------------------------------------------------------------------------


def glob_match(value: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """``fnmatch`` globs (``*``, ``?``, ``[...]``) where ``!pattern`` denies, as in Argo CD:
    ``value`` matches when no deny pattern matches it and some allow pattern does."""
    allow = [p for p in patterns if not p.startswith("!")]
    deny = [p[1:] for p in patterns if p.startswith("!")]
    if any(fnmatchcase(value, p) for p in deny):
        return False
    return any(fnmatchcase(value, p) for p in allow)


def repo_pattern(pattern: str) -> str:
    """A ``sourceRepos`` entry spelt as a normalised URL (credentials, a trailing ``.git``
    and default ports dropped, scheme and host lowercased), its ``!`` kept. A pattern with
    glob characters is normalised by hand, so that a glob in the host or port survives."""
    deny = pattern.startswith("!")
    body = (pattern[1:] if deny else pattern).strip()
    normal = _glob_url(body) if any(c in body for c in "*?[") else normalize_url(body)
    return f"!{normal}" if deny else normal


_SCHEME_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<netloc>[^/]*)(?P<path>.*)$")
_SCP_GLOB = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:]+):(?P<path>[^/].*)$")
_DEFAULT_PORTS = {"http": ":80", "https": ":443", "ssh": ":22"}


def _glob_url(body: str) -> str:
    """``normalize_url``'s spelling for a URL holding globs: ``https://GIT.x/team-*.git``
    is ``https://git.x/team-*``; ``git@host:org/*`` is ``ssh://git@host/org/*``."""
    m = _SCHEME_URL.match(body)
    if m is None and (scp := _SCP_GLOB.match(body)) is not None:
        user = f"{scp['user']}@" if scp["user"] else ""
        m = _SCHEME_URL.match(f"ssh://{user}{scp['host']}/{scp['path'].lstrip('/')}")
    if m is None:
        return body  # "*", or a bare OCI reference
    scheme, netloc, path = m["scheme"].lower(), m["netloc"], m["path"]
    user, _, host = netloc.rpartition("@")
    host = host.lower()
    if default_port := _DEFAULT_PORTS.get(scheme):
        host = host.removesuffix(default_port)
    # Over SSH the user is part of the address; over HTTP it is a credential.
    if scheme == "ssh" and user:
        host = f"{user.split(':', 1)[0]}@{host}"
    path = path.rstrip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")].rstrip("/")
    return f"{scheme}://{host}{path}"


def repo_match(url: str, patterns: tuple[str, ...]) -> bool:
    """Whether repository ``url`` is among ``patterns`` (already ``repo_pattern``-ed),
    compared in its normalised spelling (``tether.source.credentials.normalize_url``)."""
    return glob_match(normalize_url(url), patterns)


# ---- the spec ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KindRule:
    """One entry of a resource white- or blacklist: ``group`` and ``kind`` globs."""

    group: str
    kind: str

    def matches(self, group: str, kind: str) -> bool:
        return fnmatchcase(group, self.group) and fnmatchcase(kind, self.kind)

    def __str__(self) -> str:
        return f"{self.group}/{self.kind}" if self.group else self.kind


@dataclass(frozen=True)
class DestinationRule:
    """One entry of ``destinations``: a namespace glob and, optionally, a server or cluster
    name glob (tether deploys in-cluster only, so those must match the cluster tether runs in)."""

    namespace: str
    server: str = ""
    name: str = ""

    def matches_cluster(self) -> bool:
        if self.server and not glob_match(IN_CLUSTER_SERVER, (self.server,)):
            return False
        return not self.name or glob_match(IN_CLUSTER_NAME, (self.name,))

    def __str__(self) -> str:
        return self.namespace


@dataclass(frozen=True)
class Project:
    name: str
    description: str = ""
    source_repos: tuple[str, ...] = ()
    """Normalised globs; ``!`` denies. Empty: no repository is allowed."""
    destinations: tuple[DestinationRule, ...] = ()
    """Empty: no namespace is allowed."""
    source_namespaces: tuple[str, ...] = ()
    """Namespaces (globs) whose Applications may name this project. Empty: none."""
    cluster_whitelist: tuple[KindRule, ...] = ()
    """Cluster-scoped kinds allowed. Empty: none."""
    cluster_blacklist: tuple[KindRule, ...] = ()
    namespace_whitelist: tuple[KindRule, ...] = ()
    """Namespaced kinds allowed. Empty: every namespaced kind."""
    namespace_blacklist: tuple[KindRule, ...] = ()
    sync_windows: tuple[SyncWindow, ...] = ()
    builtin: bool = False
    """The default project tether assumes when no Project named ``default`` exists."""
    raw_repos: tuple[str, ...] = field(default=(), compare=False)
    """``sourceRepos`` as written, for messages."""

    @property
    def label(self) -> str:
        """How messages name it: ``project team-a`` (the built-in default says so)."""
        return f"project {self.name}" + (" (built in)" if self.builtin else "")

    @classmethod
    def from_obj(cls, obj: Obj) -> Project:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name") or "")
        where = f"Project {name}"
        spec = obj.get("spec")
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise InvalidSpec(f"{where}: spec must be a mapping", hint=HINT)
        repos = _strings(spec, "sourceRepos", where)
        try:
            normal = tuple(repo_pattern(r) for r in repos)
        except ValueError as e:
            raise InvalidSpec(f"{where}: sourceRepos: {e}", hint=HINT) from e
        return cls(
            name=name,
            description=str(spec.get("description") or ""),
            source_repos=normal,
            raw_repos=tuple(repos),
            destinations=tuple(_destinations(spec.get("destinations"), where)),
            source_namespaces=tuple(_strings(spec, "sourceNamespaces", where)),
            cluster_whitelist=_kinds(spec, "clusterResourceWhitelist", where),
            cluster_blacklist=_kinds(spec, "clusterResourceBlacklist", where),
            namespace_whitelist=_kinds(spec, "namespaceResourceWhitelist", where),
            namespace_blacklist=_kinds(spec, "namespaceResourceBlacklist", where),
            sync_windows=tuple(
                parse_windows(spec.get("syncWindows"), where, scope=f"project {name}")
            ),
        )


def builtin_default() -> Project:
    """The default project when none named ``default`` exists: everything tether allowed
    before Projects (any repository, any namespace, every kind, Applications anywhere)."""
    every = (KindRule("*", "*"),)
    return Project(
        name=DEFAULT_PROJECT,
        description="built in: allows everything (no Project named default exists)",
        source_repos=("*",),
        raw_repos=("*",),
        destinations=(DestinationRule("*"),),
        source_namespaces=("*",),
        cluster_whitelist=every,
        builtin=True,
    )


def _strings(spec: dict[str, Any], key: str, where: str) -> list[str]:
    raw = spec.get(key)
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(s, str) and s.strip() for s in raw):
        raise InvalidSpec(f"{where}: {key} must be a list of non-empty strings", hint=HINT)
    return [s.strip() for s in raw]


def _destinations(raw: Any, where: str) -> list[DestinationRule]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidSpec(f"{where}: destinations must be a list", hint=HINT)
    out: list[DestinationRule] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not str(entry.get("namespace") or "").strip():
            raise InvalidSpec(
                f"{where}: destinations[{i}] must be a mapping with a namespace (a glob)",
                hint="e.g. {namespace: 'team-a-*'}; " + HINT,
            )
        out.append(
            DestinationRule(
                namespace=str(entry["namespace"]).strip(),
                server=str(entry.get("server") or "").strip(),
                name=str(entry.get("name") or "").strip(),
            )
        )
    return out


def _kinds(spec: dict[str, Any], key: str, where: str) -> tuple[KindRule, ...]:
    raw = spec.get(key)
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidSpec(f"{where}: {key} must be a list of {{group, kind}}", hint=HINT)
    out: list[KindRule] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not str(entry.get("kind") or "").strip():
            raise InvalidSpec(
                f"{where}: {key}[{i}] must be a mapping with a kind (and a group, '' for core)",
                hint="e.g. {group: '', kind: Namespace}; " + HINT,
            )
        out.append(KindRule(str(entry.get("group") or "").strip(), str(entry["kind"]).strip()))
    return tuple(out)


def project_crd_manifests() -> list[Obj]:
    """The Project CRD, as shipped in the package (and under deploy/crds/)."""
    text = resources.files("tether.manifests").joinpath("crd-project.yaml").read_text()
    return [d for d in yaml.safe_load_all(text) if d]
