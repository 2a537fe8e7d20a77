"""Applying and pruning objects as a sync does (the applier), and the result of one sync.

``Applier`` applies a list of objects and returns a change set (per object: created,
configured or failed, with a message and the object the server stored), prunes one object,
and makes the checks a sync makes before it applies anything. ``Syncer.sync`` runs a whole
sync operation (``tether.sync.operation``) to its end and returns its ``SyncResult``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tether.api.application import Application
from tether.compare import Comparer, Comparison
from tether.diff import IgnoreRule
from tether.diff.respect import keep_ignored_fields
from tether.errors import KubeError
from tether.kube import KubeClient
from tether.live import APPLY_CONCURRENCY, LiveObjects, bounded
from tether.model import Manifest, Obj, ResourceKey
from tether.status import Condition
from tether.sync.namespace_metadata import FIELD_MANAGER as NAMESPACE_MANAGER
from tether.sync.namespaces import (
    CREATE_NAMESPACE,
    missing_namespace_message,
    namespaces_to_check,
)
from tether.sync.options import (
    FORCE,
    REPLACE,
    RESPECT_IGNORE,
    SKIP_DRY_RUN,
    VALIDATE,
    SyncOptions,
)
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
        timeout: float | None = None,
    ) -> SyncResult:
        """Runs a sync operation to its end (``tether.sync.operation``): compare, apply what
        differs wave by wave (waiting for a wave's health when something follows it), prune
        if asked, run the hooks.

        ``skip`` names objects not to touch this time (self-heal gave up on them).
        ``comparison`` is a read-only comparison just made (the controller's): it is used
        for the first step instead of comparing again. ``write_status``: the operation's
        progress and its end are written to the Application's status.
        """
        from tether.sync.operation import SyncOperation
        from tether.sync.record import run_to_end
        from tether.sync.state import DEFAULT_TIMEOUT, RUN_BY_CLI, OperationRequest

        writes_before = self.kube.write_requests
        request = OperationRequest(
            trigger=trigger,
            initiated_by=RUN_BY_CLI,
            revision=revision or "",
            prune=prune,
            allow_mass_prune=allow_mass_prune,
            skip=sorted(skip or set()),
        )
        op = SyncOperation.start(
            self.kube,
            self.comparer,
            self.live,
            app,
            request,
            run_by=RUN_BY_CLI,
            dry_run=dry_run,
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        )
        step = await run_to_end(
            op, self.kube, app, record=write_status and not dry_run, comparison=comparison
        )
        assert step.result is not None
        step.result.writes = self.kube.write_requests - writes_before
        return step.result


@dataclass
class Applier:
    """Applies objects the way a sync does (sync options, ignored fields kept, takeover
    notes) and says, per object, what happened: a change set."""

    kube: KubeClient
    live: LiveObjects

    async def apply_all(
        self,
        manifests: list[Manifest],
        cmp: Comparison,
        options: SyncOptions,
        *,
        dry_run: bool = False,
    ) -> list[ResourceResult]:
        """Applies ``manifests`` concurrently; one result per object, in order (created,
        configured or failed, with a message and the object as the server stored it)."""
        rules = [IgnoreRule.from_spec(r) for r in cmp.app.ignore_differences]
        outcomes = await bounded(
            APPLY_CONCURRENCY,
            (self.apply_one(m, cmp, dry_run, options, rules) for m in manifests),
        )
        if not dry_run:
            _adopt_shared(cmp, outcomes)
        return outcomes

    async def wait_for_kinds(self, crds: list[Manifest]) -> None:
        """After applying CRDs: waits until the API server serves their kinds."""
        for m in crds:
            if m.key.kind != "CustomResourceDefinition":
                continue
            spec = m.obj.get("spec") or {}
            group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind")
            for v in spec.get("versions") or []:
                if kind and v.get("served", True):
                    await self.kube.wait_for_resource(f"{group}/{v['name']}", kind)

    async def prune_one(
        self, key: ResourceKey, obj: Obj, options: SyncOptions, *, dry_run: bool = False
    ) -> ResourceResult:
        """Deletes an object that left Git, with the propagation the options ask for, only
        if it is still the object planned for deletion (same uid)."""
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
        except KubeError as e:
            return ResourceResult(key, "failed", f"prune failed: {e}")
        return ResourceResult(key, "pruned")

    async def refuse_missing_namespaces(
        self, app: Application, cmp: Comparison
    ) -> list[ResourceResult]:
        """Failed results, before anything is applied, for objects that would go into a
        namespace that does not exist and that this sync does not create (empty: none).
        A dry run cannot learn it from the server (its 404 looks like "namespace created
        earlier in this sync")."""
        assert cmp.desired is not None
        needed = namespaces_to_check(app, cmp.desired.manifests, cmp.live)
        seen = await self.live.namespaces_seen(needed) if needed else set()
        missing: list[str] = []
        for ns in sorted(set(needed) - seen):
            try:
                if await self.kube.get("v1", "Namespace", ns) is None:
                    missing.append(ns)
            except KubeError as e:
                if e.status != 403:
                    raise
                # Not allowed to read Namespaces (a namespace-scoped install): the apply
                # itself reports a missing one.
        out: list[ResourceResult] = []
        for ns in missing:
            why = missing_namespace_message(app, ns)
            out.extend(ResourceResult(k, "failed", why) for k in needed[ns])
        if missing:
            first = missing_namespace_message(app, missing[0])
            cmp.conditions.append(Condition("SyncError", first, reason="NamespaceNotFound"))
        return out

    async def create_namespace(self, app: Application, dry_run: bool) -> ResourceResult | None:
        """``CreateNamespace=true``: creates ``destination.namespace`` when missing, and keeps
        ``managedNamespaceMetadata`` on it."""
        name = app.destination.namespace
        metadata = app.sync_policy.managed_namespace_metadata
        live = await self.kube.get("v1", "Namespace", name)
        if live is not None and (metadata is None or metadata.held_by(live)):
            return None
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
        return ResourceResult(
            ResourceKey("", "Namespace", "", name),
            "created" if live is None else "configured",
            why,
        )

    async def apply_one(
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


def refuse_shared(cmp: Comparison) -> tuple[list[ResourceResult], str]:
    """``FailOnSharedResource=true``: the failed results and the message of a sync that
    would take objects over from another app, before applying anything."""
    out = [
        ResourceResult(key, "failed", f"tracked by application {other}; not taken over")
        for key, other in sorted(cmp.shared.items())
    ]
    first = next(c for c in cmp.conditions if c.type == "SharedResourceWarning")
    return out, first.message
