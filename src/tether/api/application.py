"""The Application resource: typed view of its spec, validation, and the CRD that serves it."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tether.api.depends_on import DependencyRef, parse_depends_on

# The API's names live in tether.api.names (a command that needs only those loads no more).
from tether.api.names import API_VERSION as API_VERSION
from tether.api.names import DEFAULT_NAMESPACE as DEFAULT_NAMESPACE
from tether.api.names import GROUP as GROUP
from tether.api.names import KIND as KIND
from tether.api.names import VERSION as VERSION
from tether.api.source import Source

# check_repo_url and check_source_path live with the source parsing; importable here too.
from tether.api.source_spec import check_repo_url as check_repo_url
from tether.api.source_spec import check_source_path as check_source_path
from tether.api.source_spec import parse_sources
from tether.backoff import Backoff
from tether.errors import InvalidSpec
from tether.model import Obj
from tether.sync.namespace_metadata import NamespaceMetadata, parse_namespace_metadata
from tether.sync.options import parse_app_options

if TYPE_CHECKING:
    from tether.controller.windows import SyncWindow

IN_CLUSTER_SERVERS = ("", "https://kubernetes.default.svc", "in-cluster")

TRACKING_ANNOTATION = "tether.dev/tracking-id"
APP_LABEL = "tether.dev/app"
SYNC_OPTIONS_ANNOTATION = "tether.dev/sync-options"
SYNC_WAVE_ANNOTATION = "tether.dev/sync-wave"
MANIFEST_HASH_ANNOTATION = "tether.dev/manifest-hash"
REFRESH_ANNOTATION = "tether.dev/refresh"
REPO_SECRET_LABEL = "tether.dev/secret-type"
UNPINNED_BY_ANNOTATION = "tether.dev/unpinned-by"
"""Stamped by ``tether app unpin`` as it removes ``spec.pin``: who the unpin audit names."""
LABEL_VALUE_MAX = 63

_DURATION = re.compile(r"^(\d+)(ms|s|m|h)$")
_PROJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def parse_duration(text: str) -> float:
    """'5s' → 5.0; '3m' → 180.0; '250ms' → 0.25."""
    m = _DURATION.match(text.strip())
    if not m:
        raise InvalidSpec(f"invalid duration {text!r}", hint="use a number and ms, s, m or h")
    n, unit = int(m.group(1)), m.group(2)
    return n * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


@dataclass
class Destination:
    namespace: str = ""
    server: str = ""


@dataclass
class Retry:
    limit: int = 5
    duration: float = 5.0
    factor: int = 2
    max_duration: float = 180.0

    def delay(self, attempt: int) -> float:
        """Backoff before retry number ``attempt`` (1-based)."""
        # The CRD holds factor >= 1; an object read from a file has not been through it.
        factor = max(self.factor, 1)
        return Backoff(self.duration, cap=self.max_duration, factor=factor).delay(attempt)


@dataclass
class SyncPolicy:
    automated: bool = False
    prune: bool = False
    self_heal: bool = False
    allow_empty: bool = False
    sync_options: dict[str, str] = field(default_factory=dict)
    managed_namespace_metadata: NamespaceMetadata | None = None
    """``managedNamespaceMetadata``: set on the namespace ``CreateNamespace=true`` creates."""
    retry: Retry = field(default_factory=Retry)

    def option(self, name: str) -> str:
        return self.sync_options.get(name, "")


@dataclass(frozen=True)
class Pin:
    """``spec.pin``: ``tether app pin`` holds the app at these revisions, one per source in
    spec order (a full commit SHA for a Git source, a chart version for a Helm repository),
    until ``tether app unpin``. Git is not written; the controller says how far behind
    the branch the pin is."""

    revisions: tuple[str, ...]
    by: str = ""
    at: str = ""
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "revisions": list(self.revisions),
            "by": self.by,
            "at": self.at,
            "reason": self.reason,
        }


def parse_pin(raw: Any, n_sources: int, where: str) -> Pin | None:
    """``spec.pin`` checked: a mapping whose ``revisions`` hold one non-empty revision per
    source (None when the app is not pinned)."""
    if raw is None:
        return None
    hint = "pin with 'tether app pin NAME REVISION', or remove spec.pin with 'tether app unpin'"
    if not isinstance(raw, dict):
        raise InvalidSpec(f"{where}: spec.pin must be a mapping", hint=hint)
    revs = raw.get("revisions")
    if not isinstance(revs, list) or not revs:
        raise InvalidSpec(f"{where}: spec.pin.revisions is empty", hint=hint)
    if any(not isinstance(r, str) or not r.strip() for r in revs):
        raise InvalidSpec(f"{where}: spec.pin.revisions holds an empty revision", hint=hint)
    if len(revs) != n_sources:
        raise InvalidSpec(
            f"{where}: spec.pin.revisions has {len(revs)} revision(s) but the app has "
            f"{n_sources} source(s)",
            hint="one revision per source, in spec order; " + hint,
        )
    return Pin(
        revisions=tuple(str(r).strip() for r in revs),
        by=str(raw.get("by") or ""),
        at=str(raw.get("at") or ""),
        reason=str(raw.get("reason") or ""),
    )


@dataclass
class Application:
    name: str
    namespace: str
    sources: list[Source]
    """Every source in spec order (``spec.source`` is a list of one)."""
    destination: Destination
    sync_policy: SyncPolicy
    ignore_differences: list[dict[str, Any]]
    obj: Obj
    """The whole object as read from the cluster (status included)."""
    depends_on: list[DependencyRef] = field(default_factory=list)
    """``spec.dependsOn``: Applications that must be Synced and Healthy before this one syncs."""
    sync_windows: list[SyncWindow] = field(default_factory=list)
    """``spec.syncWindows``: when syncs are allowed (see tether.controller.windows)."""
    pin: Pin | None = None
    """``spec.pin``: the revisions the app is held at instead of its targetRevisions."""
    project: str = "default"
    """``spec.project``: the Project whose rules the app follows (``tether.project``)."""

    @property
    def source(self) -> Source:
        """The first source that renders: the one single-source code paths speak of."""
        return next(s for s in self.sources if s.renders)

    @property
    def repo_urls(self) -> list[str]:
        """Each repository the app reads (Git or Helm), once, in spec order."""
        return list(dict.fromkeys(s.repo_url for s in self.sources))

    @property
    def status(self) -> dict[str, Any]:
        st: dict[str, Any] = self.obj.get("status") or {}
        return st

    @property
    def generation(self) -> int:
        return int((self.obj.get("metadata") or {}).get("generation") or 0)

    @property
    def annotations(self) -> dict[str, str]:
        ann: dict[str, str] = (self.obj.get("metadata") or {}).get("annotations") or {}
        return ann

    @property
    def tracking_owner(self) -> str:
        """``<namespace>_<name>``: this app in its tracking ids and labels. A namespace
        cannot hold ``_``, so the two parts split apart again without ambiguity."""
        return f"{self.namespace}_{self.name}"

    @property
    def label_value(self) -> str:
        """Value of the ``tether.dev/app`` label on every object this app applies.

        ``tracking_owner``, so two apps of the same name in two namespaces never share it.
        A label value holds at most 63 characters: a longer one keeps its first 52 and ends
        with ``-`` and 10 hex digits of a hash of the whole, which stays unique.
        """
        full = self.tracking_owner
        if len(full) <= LABEL_VALUE_MAX:
            return full
        digest = hashlib.sha256(full.encode()).hexdigest()[:10]
        return f"{full[: LABEL_VALUE_MAX - 11]}-{digest}"

    @property
    def label_values(self) -> tuple[str, ...]:
        """Every ``tether.dev/app`` value that marks this app's objects: the current one,
        then the older form (the name alone, cut to 63), still on objects applied before
        the label carried the namespace."""
        return tuple(dict.fromkeys((self.label_value, self.name[:LABEL_VALUE_MAX])))

    @classmethod
    def from_obj(cls, obj: Obj) -> Application:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name") or "")
        where = f"Application {meta.get('namespace', '')}/{name}"
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            raise InvalidSpec(f"{where}: spec is missing")
        sources = parse_sources(spec, where)
        dest = spec.get("destination") or {}
        server = str(dest.get("server") or "")
        if server not in IN_CLUSTER_SERVERS:
            raise InvalidSpec(
                f"{where}: destination.server {server!r} is not supported",
                hint="only the cluster tether runs in is supported: leave server empty",
            )
        pol = spec.get("syncPolicy") or {}
        auto = pol.get("automated")
        options = parse_app_options(pol.get("syncOptions") or [], where)
        ns_metadata = parse_namespace_metadata(pol.get("managedNamespaceMetadata"), where)
        r = pol.get("retry") or {}
        b = r.get("backoff") or {}
        retry = Retry(
            limit=int(r.get("limit", 5)),
            duration=parse_duration(str(b.get("duration", "5s"))),
            factor=int(b.get("factor", 2)),
            max_duration=parse_duration(str(b.get("maxDuration", "3m"))),
        )
        return cls(
            name=name,
            namespace=str(meta.get("namespace") or DEFAULT_NAMESPACE),
            sources=sources,
            destination=Destination(namespace=str(dest.get("namespace") or ""), server=server),
            sync_policy=SyncPolicy(
                automated=isinstance(auto, dict),
                prune=bool((auto or {}).get("prune", False)),
                self_heal=bool((auto or {}).get("selfHeal", False)),
                allow_empty=bool((auto or {}).get("allowEmpty", False)),
                sync_options=options,
                managed_namespace_metadata=ns_metadata,
                retry=retry,
            ),
            ignore_differences=list(spec.get("ignoreDifferences") or []),
            obj=obj,
            depends_on=parse_depends_on(
                spec.get("dependsOn"), str(meta.get("namespace") or DEFAULT_NAMESPACE), where
            ),
            sync_windows=_windows(spec.get("syncWindows"), where),
            pin=parse_pin(spec.get("pin"), len(sources), where),
            project=parse_project(spec.get("project"), where),
        )


def parse_project(raw: Any, where: str) -> str:
    """``spec.project``: a Project's name; empty or absent is ``default``."""
    if raw is None or raw == "":
        return "default"
    if not isinstance(raw, str) or not _PROJECT_NAME.match(raw):
        raise InvalidSpec(
            f"{where}: spec.project {raw!r} is not a Project name",
            hint="lowercase letters, digits, '-' and '.'; or leave it out for the default project",
        )
    return raw


def new_application(
    name: str,
    namespace: str,
    *,
    repo_url: str,
    path: str,
    revision: str = "HEAD",
    dest_namespace: str = "",
    auto_sync: bool = False,
    prune: bool = False,
    self_heal: bool = False,
    sync_options: list[str] | None = None,
    project: str = "",
) -> Obj:
    """The manifest `tether app create` writes (``project``: "" leaves it to ``default``)."""
    spec: dict[str, Any] = {
        "source": {"repoURL": repo_url, "targetRevision": revision, "path": path},
        "destination": {"namespace": dest_namespace} if dest_namespace else {},
    }
    if project:
        spec["project"] = project
    policy: dict[str, Any] = {}
    if auto_sync or self_heal:
        policy["automated"] = {"prune": prune, "selfHeal": self_heal}
    if sync_options:
        policy["syncOptions"] = list(sync_options)
    if policy:
        spec["syncPolicy"] = policy
    obj: Obj = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    Application.from_obj(obj)  # validate before it reaches the server
    return obj


def _windows(raw: Any, where: str) -> list[SyncWindow]:
    """``spec.syncWindows`` parsed; their module (cron, time zones) loads only for an app that
    has some."""
    if raw is None:
        return []
    from tether.controller.windows import parse_windows

    return parse_windows(raw, where)


def crd_manifests() -> list[Obj]:
    """The CRDs tether serves (Application, Project), as shipped in the package (and
    under deploy/crds/)."""
    from importlib import resources  # only here: reading an Application needs neither

    import yaml

    out: list[Obj] = []
    for name in ("crd-application.yaml", "crd-project.yaml"):
        text = resources.files("tether.manifests").joinpath(name).read_text()
        out += [d for d in yaml.safe_load_all(text) if d]
    return out
