"""One source of an Application: where its files come from and how they become manifests.

The shape follows Argo CD's ``spec.source`` (and ``spec.sources[]``) so a manifest ports by
changing its apiVersion: a Git repository with a ``path``, or a Helm repository with a
``chart``; ``directory`` (with ``jsonnet``), ``kustomize`` or ``helm`` say how to render it;
``ref`` names a source whose files other sources read as ``$<ref>/...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Render types, as `tether render` and the status report them.
TYPE_DIRECTORY = "Directory"
TYPE_KUSTOMIZE = "Kustomize"
TYPE_HELM = "Helm"
TYPE_JSONNET = "Jsonnet"


@dataclass
class JsonnetVar:
    """An ``extVars`` or ``tlas`` entry; ``code: true`` means the value is Jsonnet code."""

    name: str
    value: str
    code: bool = False


@dataclass
class JsonnetOptions:
    ext_vars: list[JsonnetVar] = field(default_factory=list)
    tlas: list[JsonnetVar] = field(default_factory=list)
    libs: list[str] = field(default_factory=list)
    """Library directories, relative to the repository root (must stay inside it)."""


@dataclass
class DirectorySource:
    recurse: bool = False
    include: str = ""
    exclude: str = ""
    jsonnet: JsonnetOptions = field(default_factory=JsonnetOptions)


@dataclass
class KustomizeReplica:
    name: str
    count: int


@dataclass
class KustomizeSource:
    """Argo CD's ``spec.source.kustomize`` overrides, applied on top of the kustomization."""

    images: list[str] = field(default_factory=list)
    name_prefix: str = ""
    name_suffix: str = ""
    common_labels: dict[str, str] = field(default_factory=dict)
    common_annotations: dict[str, str] = field(default_factory=dict)
    namespace: str = ""
    replicas: list[KustomizeReplica] = field(default_factory=list)
    patches: list[dict[str, Any]] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    enable_helm: bool = False
    """Render the kustomization's ``helmCharts`` (Argo CD's ``--enable-helm``)."""


@dataclass
class HelmParameter:
    name: str
    value: str
    force_string: bool = False


@dataclass
class HelmSource:
    """Argo CD's ``spec.source.helm``."""

    value_files: list[str] = field(default_factory=list)
    values: str = ""
    """Inline values as a YAML string (Argo CD's ``values``)."""
    values_object: dict[str, Any] = field(default_factory=dict)
    parameters: list[HelmParameter] = field(default_factory=list)
    release_name: str = ""
    namespace: str = ""
    skip_crds: bool = False
    pass_credentials: bool = False
    ignore_missing_value_files: bool = False


@dataclass
class VerifySource:
    """Commit signature policy: the commit to deploy must be signed by a listed key.

    ``mode`` is ``gpg`` or ``ssh``; keys come from a Secret or ConfigMap in the
    Application's namespace (``*.asc``/``*.gpg`` armored GPG public keys, or an
    ``allowed_signers`` file / ``*.pub`` SSH keys; ``revoked`` entries list revoked keys).
    """

    mode: str = ""
    secret_name: str = ""
    config_map_name: str = ""


@dataclass
class Source:
    repo_url: str
    target_revision: str = "HEAD"
    path: str = "."
    """Relative to the repository root; ``""`` on a ``ref`` source that gives no path."""
    chart: str = ""
    """A Helm repository source: the chart's name (``repo_url`` is the chart repository)."""
    ref: str = ""
    """Other sources of the same app read this one's files as ``$<ref>/<path>``."""
    name: str = ""
    directory: DirectorySource = field(default_factory=DirectorySource)
    kustomize: KustomizeSource | None = None
    helm: HelmSource | None = None
    verify: VerifySource | None = None
    explicit_type: str = ""
    """The render type the spec asks for (a ``helm``/``kustomize``/``directory`` block), or
    ``""`` to detect it from the files."""

    @property
    def is_helm_repository(self) -> bool:
        return bool(self.chart)

    @property
    def renders(self) -> bool:
        """A source with only ``ref`` (no path, no chart) just lends its files to others."""
        return bool(self.chart) or bool(self.path) or not self.ref
