"""The order of a cascade delete: which of an app's objects go, which stay and why, in which
steps (pure logic; ``tether.deletion.cascade`` does the requests).

Objects go in the reverse of the order a sync applies them: the highest sync wave first and,
within a wave, the kinds applied last first (workloads before the ConfigMaps, Secrets, RBAC
and ServiceAccounts they use). Each step must be gone before the next starts.
CustomResourceDefinitions and then Namespaces come after every wave: deleting either deletes
everything in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tether.model import Obj, ResourceKey
from tether.sync.annotations import SYNC_OPTIONS, SYNC_WAVE, annotation
from tether.sync.plan import tier_of

APP_GROUP = "tether.dev"
HELM_POLICY_ANNOTATION = "helm.sh/resource-policy"
TRACKING_ANNOTATION = "tether.dev/tracking-id"
_LAST_KINDS = {
    ("apiextensions.k8s.io", "CustomResourceDefinition"): 1,
    ("", "Namespace"): 2,
}


@dataclass(frozen=True)
class Target:
    key: ResourceKey
    api_version: str
    live: Obj

    @property
    def deleting(self) -> bool:
        return bool((self.live.get("metadata") or {}).get("deletionTimestamp"))

    @property
    def uid(self) -> str:
        return str((self.live.get("metadata") or {}).get("uid") or "")

    def blockers(self) -> list[str]:
        """The finalizers that keep it while it is being deleted."""
        return [str(f) for f in (self.live.get("metadata") or {}).get("finalizers") or []]


@dataclass
class Step:
    label: str
    """``wave 2, Deployment`` or ``CustomResourceDefinitions`` (for messages)."""
    targets: list[Target]


@dataclass
class CascadePlan:
    steps: list[Step] = field(default_factory=list)
    kept: list[tuple[ResourceKey, str]] = field(default_factory=list)
    """Live objects of the inventory that stay, with the reason."""
    gone: list[ResourceKey] = field(default_factory=list)
    """Inventory entries no longer in the cluster."""

    @property
    def targets(self) -> list[Target]:
        return [t for s in self.steps for t in s.targets]


def wave_of(obj: Obj) -> int:
    """The object's sync wave (``tether.dev/sync-wave``, or Argo CD's); 0 when unset or not
    an integer, as when syncing."""
    try:
        return int(annotation(obj, SYNC_WAVE) or 0)
    except ValueError:
        return 0


def keep_reason(obj: Obj, app_namespace: str, app_name: str) -> str:
    """Why a live object of the inventory is not deleted with the app ("" to delete it)."""
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    key = ResourceKey.of(obj)
    if str(annotations.get(TRACKING_ANNOTATION) or "") != key.tracking_id(app_namespace, app_name):
        return "tracked by another application, or no longer tracked: not this app's to delete"
    options = {
        k.strip(): v.strip()
        for k, _, v in (p.partition("=") for p in (annotation(obj, SYNC_OPTIONS) or "").split(","))
    }
    if options.get("Delete", "").lower() == "false":
        return "annotated Delete=false (sync-options)"
    if str(annotations.get(HELM_POLICY_ANNOTATION) or "").strip() == "keep":
        return f"annotated {HELM_POLICY_ANNOTATION}: keep"
    if key == ResourceKey(APP_GROUP, "Application", app_namespace, app_name):
        return "the Application itself"
    return ""


def plan_cascade(
    app_namespace: str,
    app_name: str,
    inventory: dict[ResourceKey, str],
    live: dict[ResourceKey, Obj],
) -> CascadePlan:
    """Steps over the live objects of ``inventory`` (key → apiVersion) that are still this
    app's, first step first; what stays; what is gone already."""
    plan = CascadePlan()
    groups: dict[tuple[int, int, int], list[Target]] = {}
    for key in sorted(inventory, key=str):
        obj = live.get(key)
        if obj is None:
            plan.gone.append(key)
            continue
        why = keep_reason(obj, app_namespace, app_name)
        if why:
            plan.kept.append((key, why))
            continue
        last = _LAST_KINDS.get((key.group, key.kind), 0)
        # Sorted ascending below, so what goes first sorts first: the highest wave, and the
        # tier a sync applies last.
        order = (last, 0, 0) if last else (0, -wave_of(obj), -tier_of(key.kind))
        groups.setdefault(order, []).append(Target(key, inventory[key], obj))
    for order in sorted(groups):
        targets = groups[order]
        if order[0] == 1:
            label = "CustomResourceDefinitions"
        elif order[0] == 2:
            label = "Namespaces"
        else:
            kinds = ", ".join(sorted({t.key.kind for t in targets}))
            label = f"wave {-order[1]} ({kinds})"
        plan.steps.append(Step(label, targets))
    return plan
