"""Syncing an app: apply what differs, step by step, then prune; the result of one sync.

A sync compares first (or takes the comparison just made), refuses before applying anything
when objects are another app's or their namespace is missing, applies in order, prunes if
asked, and records what it did in the app's status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tether.api.application import Application
from tether.compare import Comparer, Comparison
from tether.diff import IgnoreRule
from tether.diff.respect import keep_ignored_fields
from tether.errors import KubeError, PruneBlocked, TetherError
from tether.kube import KubeClient
from tether.live import APPLY_CONCURRENCY, LiveObjects, bounded
from tether.model import Manifest, Obj, ResourceDiffStatus, ResourceKey
from tether.status import Condition, _record_outcome, inventory_of, now
from tether.status import write_status as write_app_status
from tether.sync.namespace_metadata import FIELD_MANAGER as NAMESPACE_MANAGER
from tether.sync.namespaces import (
    CREATE_NAMESPACE,
    creates_destination,
    missing_namespace_message,
    namespaces_to_check,
)
from tether.sync.options import (
    FAIL_ON_SHARED,
    FORCE,
    REPLACE,
    RESPECT_IGNORE,
    SKIP_DRY_RUN,
    VALIDATE,
    SyncOptions,
)
from tether.sync.plan import plan_steps
from tether.sync.prune import PrunePlan, check_prune_safety, plan_prune
from tether.sync.takeover import fields_taken_from
from tether.sync.write import WriteMode, Written, write

MISSING_KIND_WAIT = 60.0
"""``SkipDryRunOnMissingResource=true``: how long an object whose kind is not served yet
waits for it (something in the cluster may be creating its CRD) before it fails."""


@dataclass
class ResourceResult:
    key: ResourceKey
    action: str  # created, configured, pruned, unchanged, skipped, failed, kept
    message: str = ""
    applied: Obj | None = field(default=None, repr=False)
    """The object as the server stored it (the apply response)."""

    def to_dict(self) -> dict[str, Any]:
        return {**self.key.to_dict(), "action": self.action, "message": self.message}


@dataclass
class SyncResult:
    phase: str  # Succeeded, Failed, Error
    message: str
    revision: str
    started_at: str
    finished_at: str = ""
    target_revision: str = ""
    """The revision the sync was asked for (a branch, tag or commit): ``--revision`` when
    given, else the app's ``targetRevision``. ``revision`` is the commit it resolved to."""
    results: list[ResourceResult] = field(default_factory=list)
    comparison: Comparison | None = None
    dry_run: bool = False
    writes: int = 0

    @property
    def ok(self) -> bool:
        return self.phase == "Succeeded"

    def changed(self) -> list[ResourceResult]:
        return [r for r in self.results if r.action in ("created", "configured", "pruned")]


@dataclass
class Syncer:
    kube: KubeClient
    comparer: Comparer
    live: LiveObjects

    async def sync(
        self,
        app: Application,
        *,
        revision: str | None = None,
        prune: bool | None = None,
        dry_run: bool = False,
        allow_mass_prune: bool = False,
        trigger: str = "manual",
        write_status: bool = True,
        skip: set[ResourceKey] | None = None,
        comparison: Comparison | None = None,
    ) -> SyncResult:
        """Compare, then apply what differs (in order) and prune if asked.

        ``skip`` names objects not to touch this time (self-heal gave up on them).
        ``comparison`` is a read-only comparison just made (the controller's): it is used
        instead of comparing again, and only its missing objects are still dry-run.
        """
        started = now()
        writes_before = self.kube.write_requests
        if comparison is None:
            cmp = await self.comparer.compare(app, revision, validate=True)
            validated = True
        else:
            cmp, validated = comparison, False
        result = SyncResult(
            "Running",
            "",
            cmp.revision,
            started,
            target_revision=cmp.target_revision or app.source.target_revision,
            comparison=cmp,
            dry_run=dry_run,
        )
        do_prune = app.sync_policy.prune if prune is None else prune
        try:
            if cmp.error is not None:
                raise cmp.error
            assert cmp.desired is not None
            if not validated:
                await self.comparer.validate_missing(cmp)
            await self._sync(app, cmp, result, do_prune, dry_run, allow_mass_prune, skip or set())
        except PruneBlocked as e:
            result.phase, result.message = "Failed", str(e)
            cmp.conditions.append(Condition("PruneBlocked", str(e)))
        except TetherError as e:
            result.phase, result.message = "Failed", str(e)
            if not any(c.message == str(e) for c in cmp.conditions):
                cmp.conditions.append(Condition("SyncError", str(e), reason=e.reason))
        result.finished_at = now()
        if result.phase == "Failed" and not cmp.conditions:
            cmp.conditions.append(Condition("SyncError", result.message, reason="ApplyFailed"))
        if result.phase == "Running":
            result.phase = "Succeeded"
            n = len(result.changed())
            result.message = (
                f"{'dry run: would change' if dry_run else 'changed'} {n} object(s)"
                if n
                else "already in sync"
            )
        if not dry_run:
            _record_outcome(cmp, result)
            if write_status:
                await write_app_status(self.kube, app, cmp, result, trigger=trigger)
        result.writes = self.kube.write_requests - writes_before
        return result

    async def _sync(
        self,
        app: Application,
        cmp: Comparison,
        result: SyncResult,
        do_prune: bool,
        dry_run: bool,
        allow_mass_prune: bool,
        skip: set[ResourceKey],
    ) -> None:
        assert cmp.desired is not None
        desired_keys = {m.key for m in cmp.desired.manifests}
        inventory = set(inventory_of(app))
        if (
            not cmp.desired.manifests
            and inventory
            and not app.sync_policy.allow_empty
            and (not allow_mass_prune)
        ):
            raise PruneBlocked(
                f"the render of {app.source.path} at {cmp.revision[:10]} is empty while the "
                f"app owns {len(inventory)} object(s); refusing to treat that as 'delete all'",
                hint="check spec.source.path, or sync with --allow-mass-prune",
            )
        prune_plan = plan_prune(app, inventory, desired_keys, cmp.live)
        if do_prune:
            check_prune_safety(prune_plan, inventory, allow_mass_prune=allow_mass_prune)
        options = SyncOptions(app.sync_policy.sync_options)
        if cmp.shared and options.enabled(FAIL_ON_SHARED):
            _refuse_shared(cmp, result)
            return
        if await self._refuse_missing_namespaces(app, cmp, result):
            return
        if creates_destination(app):
            await self._create_namespace(app, dry_run, result)
        rules = [IgnoreRule.from_spec(r) for r in app.ignore_differences]
        failed = False
        for step in plan_steps(cmp.desired.manifests):
            todo = []
            for m in step.manifests:
                st = cmp.resources.get(m.key)
                if st is not None and st.diff.status == ResourceDiffStatus.SYNCED:
                    result.results.append(ResourceResult(m.key, "unchanged"))
                elif m.key in skip:
                    result.results.append(
                        ResourceResult(m.key, "skipped", "self-heal stopped for this object")
                    )
                else:
                    todo.append(m)
            if not todo:
                continue
            outcomes = await bounded(
                APPLY_CONCURRENCY,
                (self._apply_one(m, cmp, dry_run, options, rules) for m in todo),
            )
            result.results.extend(outcomes)
            if not dry_run:
                _adopt_shared(cmp, outcomes)
            failures = [r for r in outcomes if r.action == "failed"]
            if failures:
                failed = True
                first = failures[0]
                result.phase = "Failed"
                result.message = f"{first.key}: {first.message}"
                break
            if not dry_run and step.tier == 1:
                await self._wait_for_kinds(todo)
        if failed:
            return
        await self._prune(prune_plan, result, do_prune, dry_run, options)

    async def _prune(
        self,
        plan: PrunePlan,
        result: SyncResult,
        do_prune: bool,
        dry_run: bool,
        options: SyncOptions,
    ) -> None:
        """Deletes what left Git, after every apply succeeded, in the plan's order (reverse
        waves, ``PruneLast`` objects last), with the propagation the options ask for."""
        for key, why in plan.keep:
            result.results.append(ResourceResult(key, "kept", why))
        if not plan.delete:
            return
        if not do_prune:
            for key, _ in plan.delete:
                result.results.append(
                    ResourceResult(key, "skipped", "left Git; sync with prune to delete it")
                )
            return
        for key, obj in plan.delete:
            try:
                await self.kube.delete(
                    str(obj["apiVersion"]),
                    key.kind,
                    key.name,
                    key.namespace,
                    propagation=options.propagation,
                    dry_run=dry_run,
                    preconditions_uid=str(obj["metadata"].get("uid", "")),
                )
                result.results.append(ResourceResult(key, "pruned"))
            except KubeError as e:
                result.results.append(ResourceResult(key, "failed", f"prune failed: {e}"))
                result.phase, result.message = "Failed", f"{key}: prune failed: {e}"
                return

    async def _wait_for_kinds(self, crds: list[Manifest]) -> None:
        """After applying CRDs: waits until the API server serves their kinds."""
        for m in crds:
            spec = m.obj.get("spec") or {}
            group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind")
            for v in spec.get("versions") or []:
                if kind and v.get("served", True):
                    await self.kube.wait_for_resource(f"{group}/{v['name']}", kind)

    async def _refuse_missing_namespaces(
        self, app: Application, cmp: Comparison, result: SyncResult
    ) -> bool:
        """Fails the sync, before anything is applied, when objects would go into a namespace
        that does not exist and that this sync does not create. A dry run cannot learn it
        from the server (its 404 looks like "namespace created earlier in this sync")."""
        assert cmp.desired is not None
        needed = namespaces_to_check(app, cmp.desired.manifests, cmp.live)
        missing: list[str] = []
        for ns in sorted(needed):
            try:
                if await self.kube.get("v1", "Namespace", ns) is None:
                    missing.append(ns)
            except KubeError as e:
                if e.status != 403:
                    raise
                # Not allowed to read Namespaces (a namespace-scoped install): the apply
                # itself reports a missing one.
        if not missing:
            return False
        for ns in missing:
            why = missing_namespace_message(app, ns)
            result.results.extend(ResourceResult(k, "failed", why) for k in needed[ns])
        first = missing_namespace_message(app, missing[0])
        result.phase, result.message = "Failed", first
        cmp.conditions.append(Condition("SyncError", first, reason="NamespaceNotFound"))
        return True

    async def _create_namespace(self, app: Application, dry_run: bool, result: SyncResult) -> None:
        """``CreateNamespace=true``: creates ``destination.namespace`` when missing, and keeps
        ``managedNamespaceMetadata`` on it."""
        name = app.destination.namespace
        metadata = app.sync_policy.managed_namespace_metadata
        live = await self.kube.get("v1", "Namespace", name)
        if live is not None and (metadata is None or metadata.held_by(live)):
            return
        if metadata is None:
            ns: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            await self.kube.apply(ns, dry_run=dry_run)
        else:
            await self.kube.apply(
                metadata.object(name), field_manager=NAMESPACE_MANAGER, dry_run=dry_run
            )
        why = f"{CREATE_NAMESPACE}=true"
        if metadata is not None:
            why += " with managedNamespaceMetadata"
        result.results.append(
            ResourceResult(
                ResourceKey("", "Namespace", "", name),
                "created" if live is None else "configured",
                why,
            )
        )

    async def _apply_one(
        self,
        m: Manifest,
        cmp: Comparison,
        dry_run: bool,
        options: SyncOptions,
        rules: list[IgnoreRule],
    ) -> ResourceResult:
        key = m.key
        live = cmp.live.get(key)
        existed = live is not None
        obj = m.obj
        if existed and options.enabled(RESPECT_IGNORE, obj):
            obj = keep_ignored_fields(key, obj, live, rules)
        mode = WriteMode(
            replace=options.enabled(REPLACE, obj),
            force=options.enabled(FORCE, obj),
            validate=not options.disabled(VALIDATE, obj),
        )
        try:
            if not existed and not dry_run and options.enabled(SKIP_DRY_RUN, obj):
                await self.kube.wait_for_resource(
                    str(obj["apiVersion"]), key.kind, timeout=MISSING_KIND_WAIT
                )
            written = await write(self.kube, obj, existed, mode, dry_run=dry_run)
        except KubeError as e:
            if dry_run and e.status == 404 and not existed:
                # Its namespace or kind is created by this very sync; a dry run cannot see it.
                return ResourceResult(key, "created", "after its namespace or CRD is created")
            src = cmp.desired.sources.get(key) if cmp.desired else None
            where = f" (from {src.source_file}:{src.line})" if src and src.source_file else ""
            return ResourceResult(key, "failed", f"{e}{where}")
        if not dry_run:
            self.live.remember(key, written.obj)
        action = "configured" if existed and not written.recreated else "created"
        message = "; ".join(_notes(live, written, mode, cmp.shared.get(key)))
        return ResourceResult(key, action, message, applied=written.obj)


def _notes(
    live: Obj | None, written: Written, mode: WriteMode, shared_with: str | None
) -> list[str]:
    """What the result of one written object says beyond its action: how it was written and
    whose it, or its fields, were before."""
    notes: list[str] = []
    if written.recreated:
        notes.append(written.recreated)
    elif mode.replace:
        notes.append("replaced (Replace=true)" if live is not None else "created (Replace=true)")
    if shared_with is not None:
        notes.append(f"taken over from application {shared_with} (SharedResourceWarning)")
    if live is not None and not mode.replace and not written.recreated:
        managers = fields_taken_from(live, written.obj)
        if managers:
            notes.append(f"took over fields from field manager(s) {', '.join(managers)}")
    return notes


def _adopt_shared(cmp: Comparison, outcomes: list[ResourceResult]) -> None:
    """Objects of another app this sync applied (``FailOnSharedResource`` unset, as in Argo
    CD): they now carry this app's tracking id, so they join its inventory. The
    ``SharedResourceWarning`` of this comparison stays, saying what happened."""
    for r in outcomes:
        if r.action in ("created", "configured") and r.key in cmp.shared:
            del cmp.shared[r.key]
            state = cmp.resources.get(r.key)
            if state is not None:
                state.message = ""


def _refuse_shared(cmp: Comparison, result: SyncResult) -> None:
    """``FailOnSharedResource=true``: fails a sync that would take objects over from another
    app, before applying anything."""
    for key, other in sorted(cmp.shared.items()):
        result.results.append(
            ResourceResult(key, "failed", f"tracked by application {other}; not taken over")
        )
    first = next(c for c in cmp.conditions if c.type == "SharedResourceWarning")
    result.phase, result.message = "Failed", first.message
