"""What else in the cluster judges a new object: admission webhooks, admission policies,
resource quotas and the namespace's own state, read in a few lists and kept ~30 s.

Anything that can refuse an object besides its schema makes the check send it to the server.
Matching is coarse on purpose (by resource name, any group or version, selectors ignored): a
webhook matched too widely costs a dry-run, one matched too narrowly would cost a half-applied
sync.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from tether.errors import KubeError
from tether.kube.client import KubeClient

ADMISSION_TTL = 30.0
"""Seconds the lists of webhooks, policies, quotas and namespaces are reused."""
_KIND_OF = {
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations": (
        "ValidatingWebhookConfiguration"
    ),
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations": (
        "MutatingWebhookConfiguration"
    ),
}
_WEBHOOKS = tuple(_KIND_OF)
MISSING_RECHECK = 1.0
"""Seconds before a namespace found missing is asked for again."""
LOOKUPS_BEFORE_REREAD = 8
"""Namespaces read one by one since the last reading before the next other one it does not
hold makes everything be read again (at most every :data:`REREAD_AGE` seconds): many new
namespaces at once (a sync of many apps, each into a namespace of its own) cost one round of
lists, not two requests each; many objects into one new namespace still cost one look-up."""
REREAD_AGE = 1.0
_POLICY_VERSIONS = ("v1", "v1beta1", "v1alpha1")
_WRITES = frozenset({"*", "CREATE", "UPDATE"})


@dataclass(frozen=True)
class Rule:
    """One admission rule, coarsely: the resources (plural, ``*`` for any) it intercepts,
    and the webhook's namespace and object selectors (None: every one)."""

    source: str
    resources: frozenset[str]
    namespace_selector: dict[str, Any] | None = None
    object_selector: dict[str, Any] | None = None

    def intercepts(self, plural: str, namespace: Namespace | None, labels: dict[str, Any]) -> bool:
        """Whether the rule may see an object; ``namespace`` None: cluster-scoped, or a
        namespace not known (every selector then counts as matching)."""
        if "*" not in self.resources and plural not in self.resources:
            return False
        if not selects(self.object_selector, labels):
            return False
        return namespace is None or selects(self.namespace_selector, namespace.labels)


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: dict[str, Any]


def selects(selector: dict[str, Any] | None, labels: dict[str, Any]) -> bool:
    """A label selector's verdict (``matchLabels`` and ``matchExpressions``); None or empty
    selects everything. An operator it does not know selects (the safe side here)."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or ():
        key, op = str(expr.get("key")), str(expr.get("operator"))
        values = [str(v) for v in expr.get("values") or ()]
        present = key in labels
        if op == "In" and not (present and str(labels[key]) in values):
            return False
        if op == "NotIn" and present and str(labels[key]) in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


@dataclass
class Judges:
    """One reading of the cluster's other judges. ``blind``: why nothing can be vouched for
    (a list was refused); ``namespaces``: the Active ones, None when they cannot be listed."""

    rules: list[Rule] = field(default_factory=list)
    quota_namespaces: frozenset[str] | None = frozenset()
    namespaces: dict[str, Namespace] | None = field(default_factory=dict)
    blind: str = ""
    read_at: float = 0.0

    def mutated_by(self, plural: str, namespace: str, labels: dict[str, Any]) -> str:
        """The mutating webhook that may change an object of resource ``plural`` before it is
        validated (empty: none), so no problem found beforehand is certain."""
        for rule in self.rules:
            if rule.source.startswith("Mutating") and rule.intercepts(
                plural, self._namespace(namespace), labels
            ):
                return rule.source
        return ""

    def _namespace(self, name: str) -> Namespace | None:
        return (self.namespaces or {}).get(name) if name else None

    def why_not(self, plural: str, namespace: str, labels: dict[str, Any]) -> str:
        """Why an object of resource ``plural`` in ``namespace`` ('' when cluster-scoped) with
        ``labels`` is left to the server (empty: nothing else judges it)."""
        if self.blind:
            return self.blind
        for rule in self.rules:
            if rule.intercepts(plural, self._namespace(namespace), labels):
                return f"{rule.source} intercepts {plural}"
        if not namespace:
            return ""
        if self.quota_namespaces is None:
            return "resource quotas cannot be listed: quota admission may refuse it"
        if namespace in self.quota_namespaces:
            return f"namespace {namespace} has a ResourceQuota, whose admission may refuse it"
        if self.namespaces is None:
            return "namespaces cannot be listed: the namespace may not accept objects"
        if namespace not in self.namespaces:
            return f"namespace {namespace} does not exist yet or is terminating"
        return ""


class Admission:
    """The other judges of one cluster, read at most every :data:`ADMISSION_TTL` seconds."""

    def __init__(self, ttl: float = ADMISSION_TTL, reread_age: float = REREAD_AGE) -> None:
        self._ttl = ttl
        self._reread_age = reread_age
        self._judges: Judges | None = None
        self._lock = asyncio.Lock()
        self._missing: dict[str, float] = {}
        self._namespace_locks: dict[str, asyncio.Lock] = {}
        self._unknown: set[str] = set()
        """Namespaces the current reading does not hold that were asked about since it."""

    async def judges(self, kube: KubeClient, namespace: str = "") -> Judges:
        """The judges, read again when older than the TTL. A ``namespace`` the last reading
        did not hold (one created since, often by the sync itself) is read on its own; after
        :data:`LOOKUPS_BEFORE_REREAD` of them, everything is read again instead."""
        judges = await self._current(kube, self._ttl)
        if namespace and judges.namespaces is not None and namespace not in judges.namespaces:
            self._unknown.add(namespace)
            if len(self._unknown) > LOOKUPS_BEFORE_REREAD:
                judges = await self._current(kube, self._reread_age)
            if judges.namespaces is not None and namespace not in judges.namespaces:
                await self._look_up(kube, namespace, judges)
        return judges

    async def _current(self, kube: KubeClient, max_age: float) -> Judges:
        """The judges, read again when older than ``max_age`` (once for all who ask at once)."""
        seen = self._judges
        if seen is not None and time.monotonic() - seen.read_at < max_age:
            return seen
        async with self._lock:
            judges = self._judges
            if judges is None or judges is seen:  # not read again while this waited
                judges = self._judges = await self._read(kube)
                self._missing.clear()
                self._unknown.clear()
            return judges

    def forget(self) -> None:
        self._judges = None

    async def _look_up(self, kube: KubeClient, name: str, judges: Judges) -> None:
        """Adds one namespace (and whether it has a quota) to ``judges``; a namespace still
        missing is asked again at most every :data:`MISSING_RECHECK` seconds."""
        lock = self._namespace_locks.setdefault(name, asyncio.Lock())
        async with lock:
            if judges.namespaces is None or name in judges.namespaces:
                return
            if time.monotonic() - self._missing.get(name, -1e9) < MISSING_RECHECK:
                return
            raw = await kube.request("GET", f"/api/v1/namespaces/{name}", ok_missing=True)
            found = _active(raw) if raw else None
            if found is None:
                self._missing[name] = time.monotonic()
                return
            quotas = await self._list_or_none(kube, f"/api/v1/namespaces/{name}/resourcequotas")
            if judges.quota_namespaces is not None and (quotas is None or quotas):
                judges.quota_namespaces = judges.quota_namespaces | {name}
            judges.namespaces[name] = found
            self._missing.pop(name, None)

    async def _read(self, kube: KubeClient) -> Judges:
        judges = Judges(read_at=time.monotonic())
        try:
            webhooks, policies, quotas, namespaces = await asyncio.gather(
                self._webhook_rules(kube),
                self._policy_rules(kube),
                self._list_or_none(kube, "/api/v1/resourcequotas"),
                self._list_or_none(kube, "/api/v1/namespaces"),
            )
        except KubeError as e:
            judges.blind = f"admission configuration cannot be read ({e.status or e}): " + (
                "the server judges every object"
            )
            return judges
        judges.rules = webhooks + policies
        if quotas is not None:
            judges.quota_namespaces = frozenset(
                str((q.get("metadata") or {}).get("namespace") or "") for q in quotas
            )
        else:
            judges.quota_namespaces = None
        if namespaces is not None:
            judges.namespaces = {
                ns.name: ns for ns in (_active(n) for n in namespaces) if ns is not None
            }
        else:
            judges.namespaces = None
        return judges

    async def _webhook_rules(self, kube: KubeClient) -> list[Rule]:
        rules: list[Rule] = []
        for path in _WEBHOOKS:
            body = await kube.request("GET", path)  # 403 makes the check blind
            for config in (body or {}).get("items") or ():
                name = str((config.get("metadata") or {}).get("name") or "")
                what = _KIND_OF[path]
                for hook in config.get("webhooks") or ():
                    rules += _rules(
                        f"{what} {name}",
                        hook.get("rules") or (),
                        hook.get("namespaceSelector"),
                        hook.get("objectSelector"),
                    )
        return rules

    async def _policy_rules(self, kube: KubeClient) -> list[Rule]:
        for version in _POLICY_VERSIONS:
            path = f"/apis/admissionregistration.k8s.io/{version}/validatingadmissionpolicies"
            body = await kube.request("GET", path, ok_missing=True)
            if body is None:
                continue  # not served in this version
            rules: list[Rule] = []
            for policy in body.get("items") or ():
                name = str((policy.get("metadata") or {}).get("name") or "")
                constraints = (policy.get("spec") or {}).get("matchConstraints") or {}
                rules += _rules(
                    f"ValidatingAdmissionPolicy {name}",
                    constraints.get("resourceRules") or (),
                    constraints.get("namespaceSelector"),
                    constraints.get("objectSelector"),
                )
            return rules
        return []

    async def _list_or_none(self, kube: KubeClient, path: str) -> list[dict[str, Any]] | None:
        try:
            body = await kube.request("GET", path)
        except KubeError as e:
            if e.status in (401, 403):
                return None
            raise
        return list((body or {}).get("items") or ())


def _active(raw: dict[str, Any]) -> Namespace | None:
    meta = raw.get("metadata") or {}
    if meta.get("deletionTimestamp") or (raw.get("status") or {}).get("phase", "Active") != (
        "Active"
    ):
        return None
    return Namespace(str(meta.get("name") or ""), dict(meta.get("labels") or {}))


def _rules(source: str, raw: Any, namespaces: Any = None, objects: Any = None) -> list[Rule]:
    out: list[Rule] = []
    for rule in raw:
        operations = set(rule.get("operations") or ())
        if not operations & _WRITES:
            continue
        resources = frozenset(
            str(r).split("/")[0] if str(r) != "*/*" else "*" for r in rule.get("resources") or ()
        )
        out.append(Rule(source, resources, _selector(namespaces), _selector(objects)))
    return out


def _selector(raw: Any) -> dict[str, Any] | None:
    return dict(raw) if isinstance(raw, dict) and raw else None
