"""What a sync may delete: objects that left Git, still ours, not protected — and not too many."""

from __future__ import annotations

from dataclasses import dataclass, field

from tether.api.application import Application
from tether.errors import PruneBlocked
from tether.model import Manifest, Obj, ResourceKey
from tether.sync.annotations import SYNC_OPTIONS, annotation_with_key
from tether.sync.options import PRUNE, PRUNE_LAST, SyncOptions, object_options
from tether.sync.plan import wave_of
from tether.sync.tracking import owned_by, owner_of

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
    options = SyncOptions(app.sync_policy.sync_options)
    for key in sorted(previous_inventory - desired):
        obj = live.get(key)
        if obj is None:
            continue  # already gone
        if not owned_by(app, obj):
            other = owner_of(obj) or "nobody"
            plan.keep.append((key, f"not pruned: now tracked by {other}, not this app"))
            continue
        if options.disabled(PRUNE, obj):
            plan.keep.append((key, f"not pruned: {_prune_false_source(obj)}"))
            continue
        plan.delete.append((key, obj))
    plan.delete.sort(key=lambda item: _prune_order(options, item[1]))
    return plan


def _prune_false_source(obj: Obj) -> str:
    """Where ``Prune=false`` came from: the object's annotation, or the app's options."""
    found = annotation_with_key(obj, SYNC_OPTIONS)
    if found is not None and object_options(obj).get(PRUNE) == "false":
        return f"annotation {found[0]}: Prune=false"
    return "spec.syncPolicy.syncOptions: Prune=false"


def _prune_order(options: SyncOptions, obj: Obj) -> tuple[bool, int]:
    """Objects marked ``PruneLast=true`` after the others; each group in reverse sync-wave
    order (the last applied is the first deleted)."""
    manifest = Manifest(obj, "", 0)
    return (options.enabled(PRUNE_LAST, obj), -wave_of(manifest))


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
