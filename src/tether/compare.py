"""Comparing an app: its desired objects against the live ones, per object, with health.

Never writes. A comparison that cannot read Git still assesses the health of what the app
deployed, from the live objects alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from tether.api.application import (
    API_VERSION,
    KIND,
    MANIFEST_HASH_ANNOTATION,
    TRACKING_ANNOTATION,
    Application,
)
from tether.api.project import Project
from tether.controller.windows import SyncWindow
from tether.desired import Desired, DesiredSource
from tether.diff import IgnoreRule, diff_object, restrict_to
from tether.diff.normalize import normalize
from tether.errors import KubeError, TetherError
from tether.health import aggregate, assess, of_objects
from tether.kube import KubeClient
from tether.kube.client import split_api_version
from tether.live import APPLY_CONCURRENCY, Listed, LiveObjects, bounded
from tether.model import (
    Health,
    HealthStatus,
    Manifest,
    Obj,
    ResourceDiff,
    ResourceDiffStatus,
    ResourceKey,
    SyncStatus,
)
from tether.project import windows_in_force
from tether.schema import schema_check_of
from tether.status import Condition, _key_of_row, inventory_of
from tether.sync.options import (
    DRY_RUN_NEW,
    FAIL_ON_SHARED,
    FORCE,
    IGNORE_EXTRANEOUS,
    VALIDATE,
    SyncOptions,
    check_object_options,
    compare_options,
)
from tether.sync.tracking import other_owner, owned_by, without_bookkeeping
from tether.sync.write import FORCE_HINT, is_immutable_error
from tether.sync.write import apply as write_apply

log = logging.getLogger("tether.engine")

MATCHED_KEPT = 20_000
"""Fast-path verdicts a Comparer keeps (past it, it starts over)."""


@dataclass
class ResourceState:
    key: ResourceKey
    version: str
    diff: ResourceDiff
    health: Health | None = None
    message: str = ""

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.key.to_dict(),
            "version": self.version,
            "status": self.diff.status.value,
        }
        if self.health is not None:
            out["health"] = {"status": self.health.status.value, "message": self.health.message}
        if self.message:
            out["message"] = self.message
        return out


@dataclass
class Comparison:
    app: Application
    desired: Desired | None
    resources: dict[ResourceKey, ResourceState] = field(default_factory=dict)
    live: dict[ResourceKey, Obj] = field(default_factory=dict)
    desired_objects: dict[ResourceKey, Obj] = field(default_factory=dict)
    conditions: list[Condition] = field(default_factory=list)
    error: TetherError | None = None
    target_revision: str = ""
    """What was compared against, as asked (a branch, tag or commit): the app's
    ``targetRevision``, or the revision given instead (``--revision``)."""
    shared: dict[ResourceKey, str] = field(default_factory=dict)
    """Desired objects another existing Application tracks: key → ``namespace/name``."""
    ignored_extraneous: set[ResourceKey] = field(default_factory=set)
    """Objects that left Git but carry the compare option ``IgnoreExtraneous``: shown, and
    not counted against the app's sync status."""
    live_health: Health | None = None
    """When the comparison failed: the health of the inventory's live objects, assessed
    without Git (None when nothing could be read)."""
    project: Project | None = None
    """The app's Project, as read for this comparison (None when it could not be)."""

    @property
    def sync_windows(self) -> list[SyncWindow]:
        """The windows in force: the app's own, then its Project's (both must allow)."""
        return windows_in_force(self.app, self.project)

    @property
    def revision(self) -> str:
        return self.desired.revision if self.desired else ""

    @property
    def sync_status(self) -> SyncStatus:
        if self.error is not None:
            return SyncStatus.UNKNOWN
        if any(
            r.diff.status != ResourceDiffStatus.SYNCED and r.key not in self.ignored_extraneous
            for r in self.resources.values()
        ):
            return SyncStatus.OUT_OF_SYNC
        return SyncStatus.SYNCED

    @property
    def health(self) -> Health:
        if self.error is not None and not self.resources:
            # Nothing was compared, but the objects are still there and still working or
            # failing: a Degraded app must stay Degraded while Git is unreachable.
            if self.live_health is not None:
                return self.live_health
            return Health(HealthStatus.UNKNOWN, str(self.error))
        return aggregate(r.health for r in self.resources.values() if r.health is not None)

    def diffs(self) -> list[ResourceDiff]:
        """Each object's diff, but those ``IgnoreExtraneous`` leaves out of the sync status."""
        return [
            self.resources[k].diff
            for k in sorted(self.resources)
            if k not in self.ignored_extraneous
        ]


@dataclass
class Comparer:
    kube: KubeClient
    desired: DesiredSource
    live: LiveObjects
    _matched: dict[tuple[str, str, str, str], bool] = field(
        default_factory=dict, init=False, repr=False
    )
    """``_fast_path_synced``'s verdicts by (live uid, live resourceVersion, manifest hash,
    app): a live object that did not change, against the same manifest of the same app, gets
    the same verdict (``_fast_path_synced`` reads nothing else)."""

    def _provably_synced(self, app: Application, desired: Obj, live: Obj) -> bool:
        """``_fast_path_synced``, remembered per unchanged live object and manifest."""
        meta = live.get("metadata") or {}
        uid, rv = meta.get("uid"), meta.get("resourceVersion")
        want = ((desired.get("metadata") or {}).get("annotations") or {}).get(
            MANIFEST_HASH_ANNOTATION
        )
        if not (uid and rv and want):
            return _fast_path_synced(app, desired, live)
        key = (str(uid), str(rv), str(want), app.tracking_owner)
        verdict = self._matched.get(key)
        if verdict is None:
            verdict = _fast_path_synced(app, desired, live)
            if len(self._matched) >= MATCHED_KEPT:
                self._matched.clear()
            self._matched[key] = verdict
        return verdict

    async def compare(
        self, app: Application, revision: str | None = None, *, validate: bool = False
    ) -> Comparison:
        """Desired (Git) against live (cluster), per object, with health. Never writes.

        ``validate`` dry-runs objects that do not exist yet too, so that a sync learns of an
        invalid manifest before it applies anything.
        """
        target = revision or app.source.target_revision
        project: Project | None = None
        # The objects the app deployed are listed while Git is read (the lists a no-op sync
        # cannot do without, side by side with the resolve it cannot either).
        inventory = inventory_of(app)
        listing = asyncio.ensure_future(self.live.list_labelled(app, inventory.items()))
        try:
            project = await self.desired.projects.project_of(app)
            desired = await self.desired.fetch_desired(app, revision, project=project)
        except TetherError as e:
            await _drop(listing)
            cmp = Comparison(app, None, error=e, target_revision=target, project=project)
            ctype = "ComparisonError" if isinstance(e, KubeError) else e.condition_type
            cmp.conditions.append(Condition(ctype, str(e), reason=e.reason))
            await self._assess_inventory(cmp)
            return cmp
        except BaseException:
            await _drop(listing)
            raise
        cmp = Comparison(app, desired, target_revision=target, project=project)
        try:
            await self._compare_objects(cmp, desired, validate, inventory, await listing)
        except TetherError as e:
            cmp.error = e
            cmp.conditions.append(Condition("ComparisonError", str(e), reason=e.reason))
            await self._assess_inventory(cmp)
        return cmp

    async def _assess_inventory(self, cmp: Comparison) -> None:
        """Health from the live objects alone, for a comparison that failed: the objects the
        app deployed (its inventory, less those that had already left Git)."""
        app = cmp.app
        left_git = {
            _key_of_row(row)
            for row in app.status.get("resources") or []
            if row.get("status") == ResourceDiffStatus.EXTRANEOUS.value
        }
        inventory = {k: v for k, v in inventory_of(app).items() if k not in left_git}
        if not inventory:
            return  # nothing deployed yet: the health is not known
        try:
            live = await self.live.read(app, inventory.items())
        except KubeError as e:
            log.warning("cannot read the objects of %s/%s: %s", app.namespace, app.name, e)
            return
        cmp.live_health = of_objects(inventory, live)

    async def _compare_objects(
        self,
        cmp: Comparison,
        desired: Desired,
        validate: bool,
        inventory: dict[ResourceKey, str],
        listed: Listed,
    ) -> None:
        app = cmp.app
        rules = [IgnoreRule.from_spec(r) for r in app.ignore_differences]
        options = SyncOptions(app.sync_policy.sync_options)
        if not desired.options_checked:
            check_object_options(desired.manifests, desired.sources)
        wanted: dict[ResourceKey, str] = {}
        for m in desired.manifests:
            wanted[m.key] = str(m.obj["apiVersion"])
            cmp.desired_objects[m.key] = m.obj
        for key, version in inventory.items():
            if key not in wanted:
                wanted[key] = version
        # A type the app deployed nothing of is listed once, as not yet labelled (below).
        owned = {(version, key.kind) for key, version in inventory.items()}
        types = frozenset((wanted[m.key], m.key.kind) for m in desired.manifests)
        live = await self.live.read(app, wanted.items(), listed, unowned=types - owned)
        cmp.live = live
        predicted: dict[ResourceKey, Obj | None] = {}
        # Objects that provably match without asking the server (``_fast_path_synced``).
        synced: set[ResourceKey] = set()

        async def dry_run(m: Manifest) -> None:
            current = live.get(m.key)
            if current is None:
                # A read-only diff shows a missing object as its manifest; a sync first checks
                # it (schema, else a server dry-run) so a bad manifest fails before anything
                # is applied.
                if await self._server_must_judge(m, desired, options):
                    predicted[m.key] = await self._predict(m, None, desired, options)
                return
            predicted[m.key] = await self._predict(m, current, desired, options)

        # Settled here without a task each (most objects of a synced app): an object that
        # provably matches, or one not in the cluster that needs no check.
        asked: list[Manifest] = []
        for m in desired.manifests:
            predicted[m.key] = None
            current = live.get(m.key)
            if current is not None and self._provably_synced(app, m.obj, current):
                synced.add(m.key)
            elif current is not None or validate:
                asked.append(m)
        if asked:
            await bounded(APPLY_CONCURRENCY, (dry_run(m) for m in asked))
        for m in desired.manifests:
            key = m.key
            cur = live.get(key)
            pred = predicted.get(key)
            if key in synced:
                d = ResourceDiff(key, ResourceDiffStatus.SYNCED)
            else:
                d = diff_object(key, without_bookkeeping(app, m.obj, cur), pred, cur, rules)
            health = (
                assess(cur)
                if cur is not None
                else Health(HealthStatus.MISSING, "not in the cluster")
            )
            cmp.resources[key] = ResourceState(key, split_api_version(wanted[key])[1], d, health)
        for key in wanted:
            if key in cmp.resources:
                continue
            cur = live.get(key)
            if cur is None or not owned_by(app, cur):
                continue  # left Git and already gone, or now another app's
            d = diff_object(key, None, None, cur, rules)
            message = "in the cluster but no longer in Git"
            if compare_options(cur).get(IGNORE_EXTRANEOUS) == "true":
                cmp.ignored_extraneous.add(key)
                message += f"; not counted (compare option {IGNORE_EXTRANEOUS})"
            cmp.resources[key] = ResourceState(
                key, split_api_version(wanted[key])[1], d, None, message=message
            )
        await self._find_shared(cmp)

    async def _find_shared(self, cmp: Comparison) -> None:
        """Desired objects that another existing Application tracks: reported with a
        ``SharedResourceWarning`` naming both apps. A sync applies them anyway, as Argo CD
        does, unless ``FailOnSharedResource=true`` (then it refuses before applying anything).

        An object whose tracking id names an app that no longer exists (deleted with
        ``--orphan``) is not shared: this app may adopt it.
        """
        app = cmp.app
        assert cmp.desired is not None
        claimed: dict[tuple[str, str], list[ResourceKey]] = {}
        for m in cmp.desired.manifests:
            cur = cmp.live.get(m.key)
            owner = other_owner(app, cur) if cur is not None else None
            if owner is not None:
                claimed.setdefault(owner, []).append(m.key)
        this = f"{app.namespace}/{app.name}"
        for (namespace, name), keys in sorted(claimed.items()):
            try:
                exists = await self.kube.get(API_VERSION, KIND, name, namespace) is not None
            except KubeError as e:
                if e.status not in (401, 403):
                    raise
                exists = True  # cannot tell: never take over what may be another app's
            if not exists:
                continue
            other = f"{namespace}/{name}"
            for key in keys:
                cmp.shared[key] = other
                cmp.resources[key].message = f"tracked by application {other}, not this app"
            fail = SyncOptions(app.sync_policy.sync_options).enabled(FAIL_ON_SHARED)
            cmp.conditions.append(
                Condition("SharedResourceWarning", shared_message(this, other, keys, fail=fail))
            )

    async def _predict(
        self, m: Manifest, current: Obj | None, desired: Desired, options: SyncOptions
    ) -> Obj | None:
        """The server-side-apply dry-run of ``m``: what the server would store."""
        try:
            validate = not options.disabled(VALIDATE, m.obj)
            return await write_apply(self.kube, m.obj, validate=validate, dry_run=True)
        except KubeError as e:
            if e.status == 404 and current is None:
                # The namespace or CRD it needs comes in this same sync, or (with
                # SkipDryRunOnMissingResource) from something in the cluster: the render
                # refused any other kind the cluster does not serve.
                return None
            hint = e.hint
            if current is not None and is_immutable_error(e):
                if options.enabled(FORCE, m.obj):
                    return None  # the sync deletes and re-creates it; Git's manifest shows
                hint = FORCE_HINT
            src = desired.sources.get(m.key)
            where = f"{src.source_file}:{src.line}: " if src else ""
            raise KubeError(
                f"{where}{m.key}: server-side dry-run failed: {e.message}",
                status=e.status,
                hint=hint,
            ) from e

    async def _server_must_judge(self, m: Manifest, desired: Desired, options: SyncOptions) -> bool:
        """Whether a new object needs a server-side dry-run before anything is applied.

        The client-side schema check (``tether.schema``) answers first: an object it finds
        invalid fails here, as a failed dry-run would (naming file, line and object); one it
        vouches for needs no dry-run (the apply itself is then the only request). Anything
        else, or every new object with ``DryRunNewObjects=true``, is dry-run on the server.
        """
        if options.enabled(DRY_RUN_NEW, m.obj):
            return True
        strict = not options.disabled(VALIDATE, m.obj)
        verdict = await schema_check_of(self.kube).check(m.obj, strict=strict)
        if verdict.problems:
            src = desired.sources.get(m.key)
            where = f"{src.source_file}:{src.line}: " if src else ""
            raise KubeError(
                f"{where}{m.key}: invalid manifest: {'; '.join(verdict.problems)}",
                status=422,
                hint="fix the manifest in Git; nothing was applied",
            )
        return not verdict.vouched

    async def validate_missing(self, cmp: Comparison) -> None:
        """Checks the objects a read-only comparison left unasked (those not yet in the
        cluster), so a bad manifest still fails before anything is applied: the schema check,
        else a server-side dry-run."""
        assert cmp.desired is not None
        desired = cmp.desired
        missing = [m for m in desired.manifests if m.key not in cmp.live]
        options = SyncOptions(cmp.app.sync_policy.sync_options)

        async def check(m: Manifest) -> None:
            if await self._server_must_judge(m, desired, options):
                await self._predict(m, None, desired, options)

        await bounded(APPLY_CONCURRENCY, (check(m) for m in missing))


def shared_message(this: str, other: str, keys: list[ResourceKey], *, fail: bool = False) -> str:
    """The SharedResourceWarning text: both apps, the objects, what a sync of ``this`` does
    about them (``fail``: ``FailOnSharedResource=true``), and how to resolve it."""
    shown = ", ".join(str(k) for k in keys[:5])
    if len(keys) > 5:
        shown += f" and {len(keys) - 5} more"
    it, are = ("it", "is") if len(keys) == 1 else ("them", "are")
    if fail:
        does = f"so {this} does not apply {it} ({FAIL_ON_SHARED}=true)"
    else:
        does = (
            f"a sync of {this} applies {it} anyway and takes {it} over (set "
            f"{FAIL_ON_SHARED}=true to refuse instead)"
        )
    return (
        f"{shown} {are} part of applications {other} and {this}: tracked by {other}; {does}. "
        f"Remove {it} from one of the two apps; to move {it} to {this}, remove {it} from "
        f"{other}'s source, then delete the annotation {TRACKING_ANNOTATION}"
    )


async def _drop(listing: asyncio.Future[Listed]) -> None:
    """Cancels a list made ahead that will not be used, and waits for it to end."""
    listing.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await listing


def _fast_path_synced(app: Application, desired: Obj, live: Obj) -> bool:
    """True when the live object provably matches without asking the server.

    The live object must carry the hash of exactly this manifest (so no field was dropped
    from Git since it was applied) and hold every value the manifest sets.
    """
    ann = (live.get("metadata") or {}).get("annotations") or {}
    want = ((desired.get("metadata") or {}).get("annotations") or {}).get(MANIFEST_HASH_ANNOTATION)
    if not want or ann.get(MANIFEST_HASH_ANNOTATION) != want:
        return False
    template = normalize(without_bookkeeping(app, desired, live))
    return bool(restrict_to(live, template) == template)
