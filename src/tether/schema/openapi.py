"""The API server's published schemas, fetched once per client and kept compiled.

OpenAPI v3 (``/openapi/v3``: an index, then one document per group-version, each named with
its hash) is read where the server serves it: the index is checked again at most every
:data:`INDEX_TTL` seconds, a group-version document fetched again only when its hash changes.
Older servers (Kubernetes before 1.24, or with OpenAPI v3 turned off) publish only OpenAPI v2
(``/openapi/v2``: one document of several MB). Only new CRDs change that document, and a
custom resource is checked against its CRD (read again at most every :data:`INDEX_TTL`
seconds), so the v2 document is read again only for a kind it lacks (at most every
:data:`INDEX_TTL` seconds) or after :data:`V2_MAX_AGE`. Descriptions are dropped on arrival and
only the kinds asked for are compiled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from tether.errors import KubeError
from tether.kube.client import KubeClient
from tether.kube.server_info import kube_version
from tether.schema.nodes import Compiler, Node, strip_descriptions

INDEX_TTL = 60.0
"""Seconds between two checks of the published v3 index; the age past which a CRD's schema is
read again, and a kind missing from the v2 document makes it be read again."""
V2_MAX_AGE = 600.0
"""Seconds the whole v2 document (several MB, and only CRDs change it, whose schemas are read
from the CRDs themselves) is kept before it is read again."""
FIELD_VALIDATION_MINOR = 25
"""The first Kubernetes 1.x to honor ``fieldValidation`` (beta, on by default)."""
V2_REF = "#/definitions/"
V3_REF = "#/components/schemas/"

log = logging.getLogger(__name__)


@dataclass
class Document:
    """One published document: its definitions (descriptions dropped), where each kind is
    defined, and the kinds compiled so far."""

    tag: str
    definitions: dict[str, Any]
    kinds: dict[tuple[str, str, str], str]
    compiler: Compiler
    compiled: dict[tuple[str, str, str], Node] = field(default_factory=dict)

    @classmethod
    def parse(cls, tag: str, raw: dict[str, Any], v3: bool) -> Document:
        defs = (raw.get("components") or {}).get("schemas") if v3 else raw.get("definitions")
        definitions: dict[str, Any] = strip_descriptions(defs or {})
        kinds: dict[tuple[str, str, str], str] = {}
        for name, schema in definitions.items():
            for gvk in schema.get("x-kubernetes-group-version-kind") or ():
                key = (str(gvk.get("group") or ""), str(gvk.get("version")), str(gvk.get("kind")))
                kinds.setdefault(key, name)
        return cls(tag, definitions, kinds, Compiler(definitions, V3_REF if v3 else V2_REF))

    def node(self, group: str, version: str, kind: str) -> tuple[str, Node] | None:
        """The definition's name and compiled schema of a kind, None when not published."""
        key = (group, version, kind)
        name = self.kinds.get(key)
        if name is None:
            return None
        node = self.compiled.get(key)
        if node is None:
            node = self.compiled[key] = self.compiler.definition(name)
        return name, node


BUILTIN_DEFINITIONS = (
    "io.k8s.api.",
    "io.k8s.apimachinery.pkg.",
    "io.k8s.apiextensions-apiserver.pkg.",
    "io.k8s.kube-aggregator.pkg.",
)
"""Where the server's own kinds are defined; any other definition is a custom resource's."""


class SchemaUnavailable(Exception):
    """The schema of a kind cannot be had; the message says why (for ``why_not``)."""


class OpenAPI:
    """The published schemas of one cluster (the client is passed in: this cache must not keep
    it alive)."""

    def __init__(self, ttl: float = INDEX_TTL) -> None:
        self._ttl = ttl
        self._version = 0  # 0: not known yet; 2 or 3: what the server publishes
        self._index: dict[str, str] = {}
        self._index_at = -1e9
        self._docs: dict[str, Document] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._crds: dict[tuple[str, str, str], tuple[float, Node]] = {}
        self._v2_at = -1e9
        self.strict_fields: bool | None = None
        """Whether the server refuses a custom resource's unknown fields under
        ``fieldValidation=Strict`` (Kubernetes 1.25 on); older ones prune them. None: unknown."""
        self.fetches = 0
        """Documents and indexes fetched: what tests and benchmarks read."""

    async def schema(
        self, kube: KubeClient, group: str, version: str, kind: str
    ) -> tuple[str, Node]:
        """The definition name and compiled schema of a kind.

        Raises :class:`SchemaUnavailable` with the reason."""
        try:
            doc = await self._document(kube, group, version)
            found = doc.node(group, version, kind) if doc is not None else None
            if found is None and self._version == 2 and self._age(self._v2_at) >= self._ttl:
                doc = await self._refresh_v2(kube, self._v2_at)  # a kind new since: a CRD
                found = doc.node(group, version, kind)
            if found is not None and self._version == 2 and is_custom(found[0]):
                # v2 cannot say nullable, oneOf or validation rules: a custom resource's v2
                # schema is looser than the one the server enforces, which its CRD holds.
                return found[0], await self._crd_schema(kube, group, version, kind)
        except KubeError as e:
            raise SchemaUnavailable(f"the published schema cannot be read: {e}") from e
        if found is None:
            gv = f"{group}/{version}" if group else version
            raise SchemaUnavailable(f"the server publishes no schema for {kind} ({gv})")
        return found

    def forget(self) -> None:
        """Drops every document: the next check fetches again."""
        self._index, self._docs, self._index_at, self._version = {}, {}, -1e9, 0
        self._v2_at = -1e9
        self._crds = {}

    @staticmethod
    def _age(at: float) -> float:
        return time.monotonic() - at

    async def _crd_schema(self, kube: KubeClient, group: str, version: str, kind: str) -> Node:
        """A custom resource's schema from its CustomResourceDefinition, read again when older
        than the TTL (a CRD's schema may change at any time)."""
        key = (group, version, kind)
        hit = self._crds.get(key)
        if hit is not None and self._age(hit[0]) < self._ttl:
            return hit[1]
        async with self._lock(f"crd {group}/{version}/{kind}"):
            hit = self._crds.get(key)
            if hit is None or self._age(hit[0]) >= self._ttl:
                node = await _read_crd_schema(kube, group, version, kind)
                self.fetches += 1
                hit = self._crds[key] = (time.monotonic(), node)
            return hit[1]

    async def _document(self, kube: KubeClient, group: str, version: str) -> Document | None:
        if self._version != 2 and self._age(self._index_at) >= self._ttl:
            async with self._lock("index"):
                if self._version != 2 and self._age(self._index_at) >= self._ttl:
                    await self._refresh_index(kube)
        if self._version == 2:
            if self._age(self._v2_at) >= V2_MAX_AGE:
                return await self._refresh_v2(kube, self._v2_at)
            return self._docs.get("v2")
        key = f"apis/{group}/{version}" if group else f"api/{version}"
        url = self._index.get(key)
        if url is None:
            return None
        doc = self._docs.get(key)
        if doc is not None and doc.tag == url:
            return doc
        async with self._lock(key):
            doc = self._docs.get(key)
            if doc is None or doc.tag != url:
                raw = await kube.request("GET", url)
                self.fetches += 1
                doc = self._docs[key] = Document.parse(url, raw or {}, v3=True)
            return doc

    async def _refresh_index(self, kube: KubeClient) -> None:
        """Reads the v3 index; learns that the server publishes only v2 when it has none."""
        if self.strict_fields is None:
            self.strict_fields = _minor(await kube_version(kube)) >= FIELD_VALIDATION_MINOR
        index = await kube.request("GET", "/openapi/v3", ok_missing=True)
        self.fetches += 1
        self._index_at = time.monotonic()
        if index is None:
            self._version = 2
            return
        self._version = 3
        paths = index.get("paths") or {}
        self._index = {str(k): str(v.get("serverRelativeURL") or "") for k, v in paths.items()}
        self._docs = {k: d for k, d in self._docs.items() if self._index.get(k) == d.tag}

    async def _refresh_v2(self, kube: KubeClient, seen_at: float) -> Document:
        """Reads the v2 document again, unless another check did since ``seen_at``."""
        async with self._lock("v2"):
            doc = self._docs.get("v2")
            if doc is None or self._v2_at == seen_at:
                raw = await kube.request("GET", "/openapi/v2")
                self.fetches += 1
                doc = Document.parse("", raw or {}, v3=False)
                old = self._docs.get("v2")
                if old is not None and old.definitions == doc.definitions:
                    doc = old  # unchanged: keep the kinds compiled so far
                self._docs["v2"] = doc
                self._v2_at = time.monotonic()
            return doc

    @property
    def compiled_kinds(self) -> int:
        return sum(len(d.compiled) for d in self._docs.values()) + len(self._crds)

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock


def is_custom(definition: str) -> bool:
    """Whether a definition is a custom resource's (any not of the server's own packages)."""
    return not definition.startswith(BUILTIN_DEFINITIONS)


async def _read_crd_schema(kube: KubeClient, group: str, version: str, kind: str) -> Node:
    resource = await kube.resource_for(f"{group}/{version}", kind)
    crd = await kube.request(
        "GET",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{resource.plural}.{group}",
        ok_missing=True,
    )
    spec = (crd or {}).get("spec") or {}
    for served in spec.get("versions") or ():
        if served.get("name") == version:
            raw = (served.get("schema") or {}).get("openAPIV3Schema")
            if isinstance(raw, dict):
                return crd_root(strip_descriptions(raw))
    raise SchemaUnavailable(
        f"the CustomResourceDefinition of {kind} ({group}/{version}) has no schema"
    )


def crd_root(raw: dict[str, Any]) -> Node:
    """The compiled schema of a CRD's ``openAPIV3Schema``: ``apiVersion`` and ``kind`` are
    implied strings, ``metadata`` is the server's (checked apart, by the name rules)."""
    node = Compiler({}, V3_REF).schema(raw)
    props = dict(node.properties or {})
    for name in ("apiVersion", "kind"):
        if name not in props:
            props[name] = Compiler({}, V3_REF).schema({"type": "string"})
    meta = (raw.get("properties") or {}).get("metadata") or {}
    props["metadata"] = Compiler({}, V3_REF).schema(
        {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    )
    if set(meta) - {"type"}:
        props["metadata"].opaque = "the CustomResourceDefinition constrains metadata"
    node.properties = props
    return node


def _minor(version: str) -> int:
    """The minor number of ``1.20.2`` (0 when the server does not say: the older behaviour)."""
    parts = version.split(".")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
