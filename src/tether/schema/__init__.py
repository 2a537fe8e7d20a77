"""Client-side validation of objects against the API server's published OpenAPI schema.

``schema_check_of(kube)`` gives the one :class:`SchemaCheck` of a client; ``await
check.check(obj, strict=True)`` answers a :class:`Verdict`: vouched for (no server dry-run
needed), invalid (the problems the server would refuse it for), or neither (``why_not``: the
server must judge it).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable
from typing import Any

from tether.errors import KubeError
from tether.kube.client import ApiResource, KubeClient, split_api_version
from tether.kube.server_info import kube_version
from tether.schema.admission import Admission, Judges
from tether.schema.check import Walk, walk
from tether.schema.kinds import builtin_judgement, never_vouched
from tether.schema.names import (
    SURE_NAMES,
    annotation_problems,
    label_problems,
    name_problems,
    namespace_problems,
)
from tether.schema.nodes import Node
from tether.schema.openapi import OpenAPI, SchemaUnavailable, is_custom
from tether.schema.verdict import Verdict, defer, refuse, vouch

log = logging.getLogger(__name__)

_CLUSTER_WIDE = "a cluster-scoped object that names a namespace is judged by the server"
_PLAIN_METADATA = frozenset({"name", "namespace", "labels", "annotations"})
CONTAINER_PORT_DEFAULTS: dict[tuple[str, ...], dict[str, Any]] = {
    ("containerPort", "protocol"): {"protocol": "TCP"}
}
"""A container port without a protocol: Kubernetes 1.20 on default it to TCP when applying
(earlier servers refuse the apply; a Service port's protocol is left to the server)."""
KEY_DEFAULTS_MINOR = 20


class SchemaCheck:
    """Checks objects of one cluster against the schemas its API server publishes."""

    def __init__(self, kube: KubeClient) -> None:
        self._kube = weakref.ref(kube)
        self.openapi = OpenAPI()
        self.admission = Admission()
        self._warm = False
        self._minor: int | None = None
        """The server's minor version (1.20: 20), read once."""
        self._minor_lock = asyncio.Lock()

    async def check(self, obj: dict[str, Any], *, strict: bool = True) -> Verdict:
        """The verdict on ``obj``; never raises for an unreadable schema (the server judges).

        ``strict``: unknown fields are problems (the server's ``fieldValidation=Strict``);
        otherwise an unknown field sends the object to the server.
        """
        try:
            return await self._check(obj, strict)
        except SchemaUnavailable as e:
            return defer(str(e))
        except KubeError as e:
            return defer(f"the server's schema or admission setup cannot be read: {e}")
        except Exception as e:  # a fault of the check must cost a dry-run, not a sync
            log.warning("schema check of %s failed: %r", _label(obj), e, exc_info=True)
            return defer(f"the client-side check failed ({e!r})")

    async def _check(self, obj: dict[str, Any], strict: bool) -> Verdict:
        api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
        if not api_version or not kind:
            return defer("apiVersion or kind is missing")
        group, version = split_api_version(api_version)
        kube = self._kube()
        if kube is None:
            return defer("the client is closed")
        found, resource, judges = await self._reads(kube, obj, group, version, kind)
        definition, node = found
        custom = is_custom(definition)
        w = Walk(strict=strict, custom=custom, prunes=not self.openapi.strict_fields)
        if not custom and (self._minor or 0) >= KEY_DEFAULTS_MINOR:
            w.key_defaults = CONTAINER_PORT_DEFAULTS
        walk(obj, node, "", w)
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        names = name_problems(group, kind, meta.get("name"))
        unsure_name = bool(names) and not custom and (group, kind) not in SURE_NAMES
        problems = w.problems + (names if not unsure_name else []) + _metadata_problems(meta)
        builtin_why = ""
        if not custom:
            extra, builtin_why = builtin_judgement(group, kind, obj)
            problems += extra
        namespace = str(meta.get("namespace") or "") if resource.namespaced else ""
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
        uncertain = _uncertain(judges, resource.plural, namespace, labels or {})
        if problems and not uncertain:
            return refuse(_unique(problems))
        reasons = [
            uncertain,
            never_vouched(group, kind),
            builtin_why,
            *w.deferred[:1],
            _metadata_defer(meta),
            "" if resource.namespaced or not meta.get("namespace") else _CLUSTER_WIDE,
            f"the server's name rule for {kind}: {names[0]}" if unsure_name else "",
            judges.why_not(resource.plural, namespace, labels or {}),
        ]
        why = next((r for r in reasons if r), "")
        return defer(why) if why else vouch()

    async def _reads(
        self, kube: KubeClient, obj: dict[str, Any], group: str, version: str, kind: str
    ) -> tuple[tuple[str, Node], ApiResource, Judges]:
        """The kind's schema, its resource and the cluster's other judges: cached reads,
        awaited in turn once warm (they return at once); on a cold cache they go out together."""
        api_version = f"{group}/{version}" if group else version
        if self._minor is None:
            async with self._minor_lock:  # many checks at once: one read
                if self._minor is None:
                    self._minor = await self._server_minor(kube)
        if self._warm:
            found = await self.openapi.schema(kube, group, version, kind)
            resource = await kube.resource_for(api_version, kind)
            judges = await self.admission.judges(kube, _namespace_of(obj, resource))
            return found, resource, judges
        out = await _together(
            self.openapi.schema(kube, group, version, kind),
            kube.resource_for(api_version, kind),
            self.admission.judges(kube, _namespace_of(obj, None)),
        )
        self._warm = True
        return out

    @staticmethod
    async def _server_minor(kube: KubeClient) -> int:
        """1.20.2: 20; 0 (the older behaviour, not asked again) when ``/version`` cannot be
        read."""
        try:
            version = await kube_version(kube)
        except KubeError:
            return 0
        parts = version.split(".")
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


async def _together(
    schema: Awaitable[tuple[str, Node]],
    resource: Awaitable[ApiResource],
    judges: Awaitable[Judges],
) -> tuple[tuple[str, Node], ApiResource, Judges]:
    """The three awaited at once; the first failure raised once all are done."""
    out = await asyncio.gather(schema, resource, judges, return_exceptions=True)
    for item in out:
        if isinstance(item, BaseException):
            raise item
    return out[0], out[1], out[2]  # type: ignore[return-value]


def _namespace_of(obj: dict[str, Any], resource: ApiResource | None) -> str:
    """The object's namespace (None ``resource``: not known yet whether it is namespaced)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or (resource is not None and not resource.namespaced):
        return ""
    return str(meta.get("namespace") or "")


def _uncertain(judges: Judges, plural: str, namespace: str, labels: dict[str, Any]) -> str:
    """Why problems found before admission are not certain (a webhook may mutate first)."""
    if judges.blind:
        return judges.blind
    mutator = judges.mutated_by(plural, namespace, labels)
    return f"{mutator} may change the object before the server validates it" if mutator else ""


def _metadata_problems(meta: dict[str, Any]) -> list[str]:
    """Namespace, label and annotation problems: the same rules for every kind."""
    out: list[str] = []
    if meta.get("namespace"):
        out += namespace_problems(meta.get("namespace"))
    return out + label_problems(meta.get("labels")) + annotation_problems(meta.get("annotations"))


def _metadata_defer(meta: dict[str, Any]) -> str:
    other = sorted(k for k, v in meta.items() if k not in _PLAIN_METADATA and v is not None)
    return f"metadata.{other[0]} is judged by the server" if other else ""


def _unique(problems: list[str]) -> list[str]:
    return list(dict.fromkeys(problems))


def _label(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return f"{obj.get('kind')} {(meta or {}).get('name')}"


_checks: weakref.WeakKeyDictionary[KubeClient, SchemaCheck] = weakref.WeakKeyDictionary()


def schema_check_of(kube: KubeClient) -> SchemaCheck:
    """The one :class:`SchemaCheck` of ``kube`` (its schema cache lives as long as the client)."""
    check = _checks.get(kube)
    if check is None:
        check = _checks[kube] = SchemaCheck(kube)
    return check


__all__ = ["SchemaCheck", "Verdict", "schema_check_of"]
