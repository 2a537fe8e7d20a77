"""What a sync may delete: objects that left Git, still ours, not protected — and not too many."""

from __future__ import annotations

from dataclasses import dataclass, field

from tether.api.application import Application
from tether.errors import PruneBlocked
from tether.model import Obj, ResourceKey
from tether.sync.tracking import object_sync_options, owned_by, owner_of

GUARDED_KINDS = {("", "Namespace"), ("apiextensions.k8s.io", "CustomResourceDefinition")}


@dataclass
class PrunePlan:
    delete: list[tuple[ResourceKey, Obj]] = field(default_factory=list)
    keep: list[tuple[ResourceKey, str]] = field(default_factory=list)
    """Objects that left Git but stay, with the reason (shown per resource)."""


def plan_prune(
    app: Application,
    previous_inventory: set[ResourceKey],
    desired: set[ResourceKey],
    live: dict[ResourceKey, Obj],
) -> PrunePlan:
    plan = PrunePlan()
    for key in sorted(previous_inventory - desired):
        obj = live.get(key)
        if obj is None:
            continue  # already gone
        if not owned_by(app, obj):
            other = owner_of(obj) or "nobody"
            plan.keep.append((key, f"not pruned: now tracked by {other}, not this app"))
            continue
        if object_sync_options(obj).get("Prune", "").lower() == "false":
            plan.keep.append((key, "not pruned: annotation tether.dev/sync-options: Prune=false"))
            continue
        plan.delete.append((key, obj))
    return plan


def check_prune_safety(
    plan: PrunePlan, previous_inventory: set[ResourceKey], *, allow_mass_prune: bool
) -> None:
    """Raises PruneBlocked for a mass prune or a guarded kind unless explicitly allowed."""
    if allow_mass_prune or not plan.delete:
        return
    guarded = [k for k, _ in plan.delete if (k.group, k.kind) in GUARDED_KINDS]
    if guarded:
        names = ", ".join(str(k) for k in guarded)
        raise PruneBlocked(
            f"prune would delete {names}; deleting a Namespace or CRD deletes everything in it",
            hint="run the sync with --allow-mass-prune if this is intended",
        )
    total = len(previous_inventory)
    if total and len(plan.delete) * 2 > total:
        raise PruneBlocked(
            f"prune would delete {len(plan.delete)} of the {total} objects this app owns "
            "(more than half); a broken or empty render looks like this",
            hint="check the source path and revision, or sync with --allow-mass-prune",
        )
