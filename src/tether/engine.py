"""The one path: Application → source → render → diff → sync → health → status.

The one-shot CLI and the controller both call ``Engine.compare`` and ``Engine.sync``; the
controller only decides *when*.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tether.api.application import (
    API_VERSION,
    KIND,
    MANIFEST_HASH_ANNOTATION,
    REPO_SECRET_LABEL,
    TRACKING_ANNOTATION,
    Application,
)
from tether.diff import IgnoreRule, diff_object, restrict_to
from tether.diff.normalize import normalize
from tether.errors import InvalidSpec, KubeError, PruneBlocked, RenderError, TetherError
from tether.health import aggregate, assess, of_objects
from tether.kube import KubeClient, LiveCache
from tether.kube.client import split_api_version
from tether.kube.secrets import decode_secret_data
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
from tether.render import DirectoryOptions, Tree, render_directory
from tether.source import GitCache, RepoCredentials, from_secret_data, match_credentials, redact
from tether.sync.defaults import set_native_defaults
from tether.sync.namespaces import (
    CREATE_NAMESPACE,
    creates_destination,
    missing_namespace_message,
    namespaces_to_check,
)
from tether.sync.plan import plan_steps
from tether.sync.prune import check_prune_safety, plan_prune
from tether.sync.tracking import (
    label_selector,
    manifest_hash,
    mark,
    object_sync_options,
    other_owner,
    owned_by,
    without_bookkeeping,
)

log = logging.getLogger(__name__)

APPLY_CONCURRENCY = 32
HISTORY_LIMIT = 10


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- values ------------------------------------------------------------------------------


@dataclass
class CommitInfo:
    sha: str
    author: str = ""
    message: str = ""
    time: str = ""


@dataclass
class Desired:
    revision: str
    commit: CommitInfo
    manifests: list[Manifest]
    """Marked (tracking id, label, hash) and namespaced; ready to apply."""
    sources: dict[ResourceKey, Manifest]
    """The same objects as Git has them, with file and line, for messages."""


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
class Condition:
    type: str
    message: str
    reason: str = ""

    def to_dict(self, at: str) -> dict[str, str]:
        return {
            "type": self.type,
            "status": "True",
            "reason": self.reason or self.type,
            # Messages quote errors, and errors may quote a repository URL with a token in it.
            "message": redact(self.message),
            "lastTransitionTime": at,
        }


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
    live_health: Health | None = None
    """When the comparison failed: the health of the inventory's live objects, assessed
    without Git (None when nothing could be read)."""

    @property
    def revision(self) -> str:
        return self.desired.revision if self.desired else ""

    @property
    def sync_status(self) -> SyncStatus:
        if self.error is not None:
            return SyncStatus.UNKNOWN
        if any(r.diff.status != ResourceDiffStatus.SYNCED for r in self.resources.values()):
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
        return [self.resources[k].diff for k in sorted(self.resources)]


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


# ---- the engine --------------------------------------------------------------------------


class Engine:
    def __init__(
        self,
        kube: KubeClient,
        git: GitCache | None = None,
        *,
        cache: LiveCache | None = None,
        cache_dir: Path | None = None,
        credentials_ttl: float = 0.0,
        render_cache_size: int = 0,
        credentials_namespace: str = "",
    ) -> None:
        self.kube = kube
        self.git = git or GitCache(cache_dir or default_cache_dir())
        self.cache = cache
        self.credentials_ttl = credentials_ttl
        self.credentials_namespace = credentials_namespace
        """Where repository Secrets live (default: each Application's own namespace)."""
        """Seconds a namespace's repository Secrets are reused (0: read them every time)."""
        self._secrets: dict[str, tuple[float, list[Obj]]] = {}
        self._secrets_locks: dict[str, asyncio.Lock] = {}
        self.render_cache_size = render_cache_size
        self._desired_cache: dict[tuple[str, str, str, str], Desired] = {}
        self._applied: dict[ResourceKey, Obj] = {}
        """The newest object each of our applies returned: a watch cache may lag behind it."""
        if cache is not None:
            cache.add_listener(self._on_live_event)

    def _on_live_event(self, event: str, obj: Obj) -> None:
        # Once the cache has seen our write (or a deletion), it is the truth again.
        key = ResourceKey.of(obj)
        mine = self._applied.get(key)
        if mine is not None and (event == "DELETED" or _rv(obj) >= _rv(mine)):
            del self._applied[key]

    # ---- applications -----------------------------------------------------------------
    async def get_app(self, name: str, namespace: str) -> Application:
        obj = await self.kube.get(API_VERSION, "Application", name, namespace)
        if obj is None:
            raise TetherError(
                f"Application {namespace}/{name} not found",
                hint="list them with 'tether app list' or check -n/--namespace",
            )
        return Application.from_obj(obj)

    async def _repo_secrets(self, namespace: str) -> list[Obj]:
        lock = self._secrets_locks.setdefault(namespace, asyncio.Lock())
        async with lock:
            hit = self._secrets.get(namespace)
            if hit is not None and time.monotonic() - hit[0] < self.credentials_ttl:
                return hit[1]
            secrets, _ = await self.kube.list(
                "v1", "Secret", namespace, label_selector=f"{REPO_SECRET_LABEL}=repository"
            )
            self._secrets[namespace] = (time.monotonic(), secrets)
            return secrets

    async def credentials_for(self, app: Application) -> RepoCredentials | None:
        secrets = await self._repo_secrets(self.credentials_namespace or app.namespace)
        candidates = []
        for s in secrets:
            data = decode_secret_data(s)
            if data.get("url"):
                meta = s.get("metadata") or {}
                origin = f"Secret {meta.get('namespace')}/{meta.get('name')}"
                candidates.append((data["url"], from_secret_data(data, origin)))
        return match_credentials(app.source.repo_url, candidates)

    # ---- source + render --------------------------------------------------------------
    async def fetch_desired(self, app: Application, revision: str | None = None) -> Desired:
        creds = await self.credentials_for(app)
        url = app.source.repo_url
        rev = revision or app.source.target_revision
        commit = await self.git.resolve(url, rev, creds)
        # The same commit and spec always render the same: reuse it (the controller
        # compares on every live change, and rendering is most of a compare's work).
        cache_key = (app.namespace, app.name, commit, _spec_key(app))
        hit = self._desired_cache.get(cache_key)
        if hit is not None:
            return hit
        await self.git.fetch(url, creds, commit)
        content = await asyncio.to_thread(self.git.read_tree, url, commit, app.source.path)
        info = self.git.commit_info(url, commit)
        tree = Tree(files=content.files, symlinks=content.symlinks)
        d = app.source.directory
        opts = DirectoryOptions(recurse=d.recurse, include=d.include, exclude=d.exclude)
        manifests = await asyncio.to_thread(render_directory, tree, app.source.path, opts)
        marked, sources = await self.prepare(app, manifests)
        author = (
            f"{info.author_name} <{info.author_email}>" if info.author_email else (info.author_name)
        )
        desired = Desired(
            revision=commit,
            commit=CommitInfo(commit, author, info.message.strip(), str(info.time)),
            manifests=marked,
            sources=sources,
        )
        if self.render_cache_size:
            if len(self._desired_cache) >= self.render_cache_size:
                self._desired_cache.pop(next(iter(self._desired_cache)))
            self._desired_cache[cache_key] = desired
        return desired

    async def prepare(
        self, app: Application, manifests: list[Manifest]
    ) -> tuple[list[Manifest], dict[ResourceKey, Manifest]]:
        """Fills in the destination namespace and marks every object as this app's."""
        crd_scopes = _crd_scopes(manifests)
        out: list[Manifest] = []
        sources: dict[ResourceKey, Manifest] = {}
        for m in manifests:
            obj = dict(m.obj)
            api_version, kind = str(obj["apiVersion"]), str(obj["kind"])
            namespaced = await self._namespaced(api_version, kind, crd_scopes, m)
            meta = dict(obj.get("metadata") or {})
            if namespaced and not meta.get("namespace"):
                if not app.destination.namespace:
                    raise InvalidSpec(
                        f"{m.source_file}:{m.line}: {kind} {meta.get('name')} has no namespace "
                        "and the Application sets no destination.namespace",
                        hint="set spec.destination.namespace or metadata.namespace",
                    )
                meta["namespace"] = app.destination.namespace
            elif not namespaced:
                meta.pop("namespace", None)
            obj["metadata"] = meta
            marked = Manifest(set_native_defaults(mark(app, obj)), m.source_file, m.line)
            if marked.key in sources:
                first = sources[marked.key]
                raise RenderError(
                    f"{marked.key} is defined twice once the destination namespace is filled "
                    f"in: here and at {first.source_file}:{first.line}",
                    file=m.source_file,
                    line=m.line,
                    hint="remove one of the two definitions",
                )
            sources[marked.key] = m
            out.append(marked)
        return out, sources

    async def _namespaced(
        self, api_version: str, kind: str, crd_scopes: dict[tuple[str, str], bool], m: Manifest
    ) -> bool:
        group, _ = split_api_version(api_version)
        if (group, kind) in crd_scopes:
            return crd_scopes[(group, kind)]
        try:
            return (await self.kube.resource_for(api_version, kind)).namespaced
        except KubeError as e:
            raise KubeError(
                f"{m.source_file}:{m.line}: {e.message}", status=e.status, hint=e.hint
            ) from e

    # ---- live state -------------------------------------------------------------------
    async def live_objects(
        self, app: Application, wanted: Iterable[tuple[ResourceKey, str]]
    ) -> dict[ResourceKey, Obj]:
        """Live objects for these (key, apiVersion) pairs: one list per type, then GETs for
        objects not (yet) labelled as this app's."""
        wanted = list(wanted)
        live: dict[ResourceKey, Obj] = {}
        by_type: dict[tuple[str, str], list[ResourceKey]] = {}
        for key, api_version in wanted:
            by_type.setdefault((api_version, key.kind), []).append(key)
        if self.cache is not None:
            for (api_version, kind), keys in by_type.items():
                try:
                    await self.cache.ensure(api_version, kind)
                except KubeError as e:
                    if e.status in (401, 403):
                        continue  # not allowed to list this type: read each object below
                    if e.status == 404:
                        continue  # kind not served (yet): its objects are missing
                    raise
                for k in keys:
                    obj = _newer(self.cache.get(k), self._applied.get(k))
                    if obj is not None:
                        live[k] = obj
        else:

            async def list_type(api_version: str, kind: str) -> None:
                namespaces = {k.namespace for k in by_type[(api_version, kind)]}
                # One namespace: list only there (the server then reads far fewer objects).
                ns = namespaces.pop() if len(namespaces) == 1 else ""
                try:
                    items, _ = await self.kube.list(
                        api_version, kind, ns, label_selector=label_selector(app)
                    )
                except KubeError as e:
                    if e.status == 404:
                        return
                    raise
                for it in items:
                    live[ResourceKey.of(it)] = it

            await asyncio.gather(*(list_type(av, k) for (av, k) in by_type))
        missing = [(k, av) for k, av in wanted if k not in live]

        async def get_one(key: ResourceKey, api_version: str) -> None:
            try:
                obj = await self.kube.get(api_version, key.kind, key.name, key.namespace)
            except KubeError as e:
                if e.status == 404:
                    return
                raise
            if obj is not None:
                live[key] = obj

        await _bounded(APPLY_CONCURRENCY, (get_one(k, av) for k, av in missing))
        return live

    # ---- compare ----------------------------------------------------------------------
    async def compare(
        self, app: Application, revision: str | None = None, *, validate: bool = False
    ) -> Comparison:
        """Desired (Git) against live (cluster), per object, with health. Never writes.

        ``validate`` dry-runs objects that do not exist yet too, so that a sync learns of an
        invalid manifest before it applies anything.
        """
        target = revision or app.source.target_revision
        try:
            desired = await self.fetch_desired(app, revision)
        except TetherError as e:
            cmp = Comparison(app, None, error=e, target_revision=target)
            ctype = "ComparisonError" if isinstance(e, KubeError) else e.condition_type
            cmp.conditions.append(Condition(ctype, str(e), reason=e.reason))
            await self._assess_inventory(cmp)
            return cmp
        cmp = Comparison(app, desired, target_revision=target)
        try:
            await self._compare_objects(cmp, desired, validate)
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
            live = await self.live_objects(app, inventory.items())
        except KubeError as e:
            log.warning("cannot read the objects of %s/%s: %s", app.namespace, app.name, e)
            return
        cmp.live_health = of_objects(inventory, live)

    async def _compare_objects(self, cmp: Comparison, desired: Desired, validate: bool) -> None:
        app = cmp.app
        rules = [IgnoreRule.from_spec(r) for r in app.ignore_differences]
        inventory = inventory_of(app)
        wanted: dict[ResourceKey, str] = {}
        for m in desired.manifests:
            wanted[m.key] = str(m.obj["apiVersion"])
            cmp.desired_objects[m.key] = m.obj
        for key, version in inventory.items():
            if key not in wanted:
                wanted[key] = version
        live = await self.live_objects(app, wanted.items())
        cmp.live = live
        predicted: dict[ResourceKey, Obj | None] = {}

        async def dry_run(m: Manifest) -> None:
            current = live.get(m.key)
            if (current is None and not validate) or (
                current is not None and _fast_path_synced(app, m.obj, current)
            ):
                # A read-only diff shows a missing object as its manifest; a sync still asks
                # the server (dry-run) so a bad manifest fails before anything is applied.
                predicted[m.key] = None
                return
            predicted[m.key] = await self._predict(m, current, desired)

        await _bounded(APPLY_CONCURRENCY, (dry_run(m) for m in desired.manifests))
        for m in desired.manifests:
            key = m.key
            cur = live.get(key)
            pred = predicted.get(key)
            if cur is not None and pred is None and _fast_path_synced(app, m.obj, cur):
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
            cmp.resources[key] = ResourceState(
                key,
                split_api_version(wanted[key])[1],
                d,
                None,
                message="in the cluster but no longer in Git",
            )
        await self._find_shared(cmp)

    async def _find_shared(self, cmp: Comparison) -> None:
        """Desired objects that another existing Application tracks: reported with a
        ``SharedResourceWarning`` naming both apps, and left alone by a sync (no tug of war
        between two apps that both write as field manager ``tether``).

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
            cmp.conditions.append(
                Condition("SharedResourceWarning", shared_message(this, other, keys))
            )

    async def _predict(self, m: Manifest, current: Obj | None, desired: Desired) -> Obj | None:
        """The server-side-apply dry-run of ``m``: what the server would store."""
        try:
            return await self.kube.apply(m.obj, dry_run=True)
        except KubeError as e:
            if e.status == 404 and current is None:
                return None  # the namespace or CRD it needs comes in this same sync
            src = desired.sources.get(m.key)
            where = f"{src.source_file}:{src.line}: " if src else ""
            raise KubeError(
                f"{where}{m.key}: server-side dry-run failed: {e.message}",
                status=e.status,
                hint=e.hint,
            ) from e

    async def _validate_missing(self, cmp: Comparison) -> None:
        """Dry-runs the objects a read-only comparison left unasked (those not yet in the
        cluster), so a bad manifest still fails before anything is applied."""
        assert cmp.desired is not None
        desired = cmp.desired
        missing = [m for m in desired.manifests if m.key not in cmp.live]
        await _bounded(APPLY_CONCURRENCY, (self._predict(m, None, desired) for m in missing))

    # ---- sync -------------------------------------------------------------------------
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
            cmp = await self.compare(app, revision, validate=True)
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
                await self._validate_missing(cmp)
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
                await self.write_status(app, cmp, result, trigger=trigger)
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
        if cmp.shared:
            _refuse_shared(cmp, result)
            return
        if await self._refuse_missing_namespaces(app, cmp, result):
            return
        if creates_destination(app):
            await self._create_namespace(app.destination.namespace, dry_run, result)
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
            outcomes = await _bounded(
                APPLY_CONCURRENCY, (self._apply_one(m, cmp, dry_run) for m in todo)
            )
            result.results.extend(outcomes)
            failures = [r for r in outcomes if r.action == "failed"]
            if failures:
                failed = True
                first = failures[0]
                result.phase = "Failed"
                result.message = f"{first.key}: {first.message}"
                break
            if not dry_run and step.tier == 1:
                for m in todo:  # CRDs: wait until their kinds are served
                    spec = m.obj.get("spec") or {}
                    group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind")
                    for v in spec.get("versions") or []:
                        if kind and v.get("served", True):
                            await self.kube.wait_for_resource(f"{group}/{v['name']}", kind)
        if failed:
            return
        for key, why in prune_plan.keep:
            result.results.append(ResourceResult(key, "kept", why))
        if not prune_plan.delete:
            return
        if not do_prune:
            for key, _ in prune_plan.delete:
                result.results.append(
                    ResourceResult(key, "skipped", "left Git; sync with prune to delete it")
                )
            return
        for key, obj in prune_plan.delete:
            try:
                await self.kube.delete(
                    str(obj["apiVersion"]),
                    key.kind,
                    key.name,
                    key.namespace,
                    propagation="Foreground",
                    dry_run=dry_run,
                    preconditions_uid=str(obj["metadata"].get("uid", "")),
                )
                result.results.append(ResourceResult(key, "pruned"))
            except KubeError as e:
                result.results.append(ResourceResult(key, "failed", f"prune failed: {e}"))
                result.phase, result.message = "Failed", f"{key}: prune failed: {e}"
                return

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

    async def _create_namespace(self, name: str, dry_run: bool, result: SyncResult) -> None:
        if await self.kube.get("v1", "Namespace", name) is not None:
            return
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        await self.kube.apply(ns, dry_run=dry_run)
        result.results.append(
            ResourceResult(
                ResourceKey("", "Namespace", "", name), "created", f"{CREATE_NAMESPACE}=true"
            )
        )

    async def _apply_one(self, m: Manifest, cmp: Comparison, dry_run: bool) -> ResourceResult:
        key = m.key
        existed = key in cmp.live
        try:
            applied = await self.kube.apply(m.obj, dry_run=dry_run)
        except KubeError as e:
            if dry_run and e.status == 404 and not existed:
                # Its namespace is created by this very sync; a dry run cannot see it.
                return ResourceResult(key, "created", "after its namespace is created")
            src = cmp.desired.sources.get(key) if cmp.desired else None
            where = f" (from {src.source_file}:{src.line})" if src and src.source_file else ""
            return ResourceResult(key, "failed", f"{e}{where}")
        if not dry_run and self.cache is not None:
            cached = self.cache.get(key)
            # Remember it only while the cache lags behind; if the watch already delivered
            # this write, the cache is the truth and nothing needs keeping.
            if cached is None or _rv(cached) < _rv(applied):
                self._applied[key] = applied
        return ResourceResult(key, "configured" if existed else "created", applied=applied)

    async def delete_owned(self, app: Application) -> list[ResourceKey]:
        """Cascade delete: every object in the inventory that is still this app's.

        Only the inventory counts: ``live_objects`` may return more (everything carrying the
        app's label), such as a copy made by hand or an object an earlier app of the same
        name left behind, and those are not this app's to delete."""
        inventory = inventory_of(app)
        live = await self.live_objects(app, inventory.items())
        deleted: list[ResourceKey] = []
        for key in sorted(inventory, key=lambda k: (k.kind == "Namespace", k)):
            obj = live.get(key)
            if obj is None:
                continue
            if not owned_by(app, obj) or object_sync_options(obj).get("Delete") == "false":
                continue
            if await self.kube.delete(
                str(obj["apiVersion"]), key.kind, key.name, key.namespace, propagation="Foreground"
            ):
                deleted.append(key)
        return deleted

    # ---- health wait --------------------------------------------------------------------
    async def wait_healthy(
        self, app: Application, timeout: float, interval: float = 1.0, *, revision: str = ""
    ) -> Comparison:
        """Re-compares until the app is Healthy (or Suspended), Degraded, or time runs out.

        ``revision`` is the commit just synced: the app is judged against it, not against
        its ``targetRevision`` (which a sync with ``--revision`` did not deploy).
        """
        deadline = time.monotonic() + timeout
        while True:
            cmp = await self.compare(app, revision or None)
            h = cmp.health.status
            if h in (HealthStatus.HEALTHY, HealthStatus.SUSPENDED, HealthStatus.DEGRADED):
                return cmp
            if cmp.error is not None or time.monotonic() >= deadline:
                return cmp
            await asyncio.sleep(interval)

    # ---- status -------------------------------------------------------------------------
    async def write_status(
        self,
        app: Application,
        cmp: Comparison,
        result: SyncResult | None = None,
        *,
        trigger: str = "",
        only_if_changed: bool = False,
        operation_extra: dict[str, Any] | None = None,
    ) -> Obj | None:
        """Writes status; returns the updated Application (None when nothing changed and
        ``only_if_changed``: an idle engine then writes nothing)."""
        at = now()
        previous = {
            (c.get("type"), c.get("message")): c.get("lastTransitionTime", at)
            for c in app.status.get("conditions") or []
        }
        # When Git cannot be read, nothing was compared: keep the last revision known (what
        # is deployed), as inventory and resources are kept, rather than blank it.
        revision = cmp.revision
        if cmp.error is not None and not revision:
            revision = str((app.status.get("sync") or {}).get("revision") or "")
        status: dict[str, Any] = {
            "observedGeneration": app.generation,
            "reconciledAt": at,
            "sync": {"status": cmp.sync_status.value, "revision": revision},
            "health": {"status": cmp.health.status.value, "message": cmp.health.message},
            "conditions": [
                c.to_dict(str(previous.get((c.type, redact(c.message)), at)))
                for c in cmp.conditions
            ],
        }
        if cmp.error is None:
            status["resources"] = [cmp.resources[k].row() for k in sorted(cmp.resources)]
        inventory = new_inventory(app, cmp, result)
        if inventory is not None:
            status["inventory"] = inventory
        if result is not None and not result.dry_run:
            status["operationState"] = {
                "phase": result.phase,
                "message": result.message,
                "revision": result.revision,
                "trigger": trigger,
                "startedAt": result.started_at,
                "finishedAt": result.finished_at,
                "generation": app.generation,
                "syncResult": {
                    "resources": [r.to_dict() for r in result.results if r.action != "unchanged"]
                },
                **(operation_extra or {}),
            }
            history = list(app.status.get("history") or [])
            entry: dict[str, Any] = {
                "id": (history[0].get("id", 0) + 1) if history else 1,
                "revision": result.revision,
                "deployedAt": result.finished_at,
                "result": result.phase,
                "trigger": trigger,
                "source": {
                    "repoURL": app.source.repo_url,
                    "path": app.source.path,
                    "targetRevision": result.target_revision or app.source.target_revision,
                },
            }
            if cmp.desired is not None:
                entry["author"] = cmp.desired.commit.author
                entry["message"] = (
                    cmp.desired.commit.message.splitlines()[0][:200]
                    if (cmp.desired.commit.message)
                    else ""
                )
            status["history"] = [entry, *history][:HISTORY_LIMIT]
        status = _without_credentials(status)
        if only_if_changed and result is None and _same_status(app.status, status):
            return None
        return await self.kube.patch_status(app.obj, status)


# ---- helpers -----------------------------------------------------------------------------


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "tether" / "git"


def _key_of_row(item: dict[str, Any]) -> ResourceKey:
    """The key of a ``status.inventory`` or ``status.resources`` entry."""
    return ResourceKey(
        str(item.get("group", "")),
        str(item.get("kind", "")),
        str(item.get("namespace", "")),
        str(item.get("name", "")),
    )


def inventory_of(app: Application) -> dict[ResourceKey, str]:
    """The app's recorded inventory: key → apiVersion."""
    out: dict[ResourceKey, str] = {}
    for item in app.status.get("inventory") or []:
        key = _key_of_row(item)
        version = str(item.get("version") or "v1")
        out[key] = f"{key.group}/{version}" if key.group else version
    return out


def shared_message(this: str, other: str, keys: list[ResourceKey]) -> str:
    """The SharedResourceWarning text: both apps, the objects, and how to resolve it."""
    shown = ", ".join(str(k) for k in keys[:5])
    if len(keys) > 5:
        shown += f" and {len(keys) - 5} more"
    it, are = ("it", "is") if len(keys) == 1 else ("them", "are")
    return (
        f"{shown} {are} part of applications {other} and {this}: tracked by {other}, so "
        f"{this} does not apply {it}. Remove {it} from one of the two apps; to move {it} to "
        f"{this}, remove {it} from {other}'s source, then delete the annotation "
        f"{TRACKING_ANNOTATION}"
    )


def _refuse_shared(cmp: Comparison, result: SyncResult) -> None:
    """Fails a sync that would take objects over from another app, before applying anything."""
    for key, other in sorted(cmp.shared.items()):
        result.results.append(
            ResourceResult(key, "failed", f"tracked by application {other}; not taken over")
        )
    first = next(c for c in cmp.conditions if c.type == "SharedResourceWarning")
    result.phase, result.message = "Failed", first.message


def _record_outcome(cmp: Comparison, result: SyncResult) -> None:
    """Folds what the sync did into the comparison, so status shows the cluster after it.

    The apply responses are the live objects; no second read is needed.
    """
    for r in result.results:
        st = cmp.resources.get(r.key)
        if r.applied is not None:
            cmp.live[r.key] = r.applied
            if st is not None:
                st.diff = ResourceDiff(r.key, ResourceDiffStatus.SYNCED)
                st.health = assess(r.applied)
        elif r.action == "pruned":
            cmp.live.pop(r.key, None)
            cmp.resources.pop(r.key, None)


def new_inventory(
    app: Application, cmp: Comparison, result: SyncResult | None
) -> list[dict[str, str]] | None:
    """Inventory after this pass: what Git wants that exists, plus what is ours and not pruned.

    Without a successful comparison the previous inventory stands (None: leave it).
    """
    if cmp.error is not None or cmp.desired is None:
        return None
    pruned = {r.key for r in (result.results if result else []) if r.action == "pruned"}
    previous = inventory_of(app)
    keys: dict[ResourceKey, str] = {}
    for m in cmp.desired.manifests:
        if m.key in cmp.shared:
            continue  # another app's
        if m.key in cmp.live or (
            result
            and any(
                r.key == m.key and r.action in ("created", "configured") for r in result.results
            )
        ):
            keys[m.key] = split_api_version(str(m.obj["apiVersion"]))[1]
    for key, api_version in previous.items():
        if (
            key not in keys
            and key not in pruned
            and key in cmp.live
            and owned_by(app, cmp.live[key])
        ):
            keys[key] = split_api_version(api_version)[1]
    return [{**k.to_dict(), "version": v} for k, v in sorted(keys.items())]


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


def _spec_key(app: Application) -> str:
    spec = app.obj.get("spec") or {}
    return manifest_hash({"source": spec.get("source"), "destination": spec.get("destination")})


def _rv(obj: Obj | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _newer(a: Obj | None, b: Obj | None) -> Obj | None:
    """The more recent of two versions of one object (etcd resource versions increase)."""
    if a is None or b is None:
        return a if b is None else (b if a is None else a)
    return b if _rv(b) > _rv(a) else a


def _without_credentials(status: dict[str, Any]) -> dict[str, Any]:
    """``status`` with the credentials of every URL in it masked.

    A repoURL may carry a token (``https://user:TOKEN@host/x.git``) and reaches status both
    directly (history) and quoted in error messages; masking the whole of what is written
    covers every field, including ones added later.
    """
    text = json.dumps(status)
    masked = redact(text)
    if masked == text:
        return status
    out: dict[str, Any] = json.loads(masked)
    return out


def _same_status(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Equal but for the reconcile time: nothing worth a write."""
    return all(old.get(k) == v for k, v in new.items() if k != "reconciledAt")


def _crd_scopes(manifests: list[Manifest]) -> dict[tuple[str, str], bool]:
    out: dict[tuple[str, str], bool] = {}
    for m in manifests:
        if m.obj.get("kind") == "CustomResourceDefinition":
            spec = m.obj.get("spec") or {}
            kind = (spec.get("names") or {}).get("kind")
            if kind:
                out[(str(spec.get("group", "")), str(kind))] = spec.get("scope") != "Cluster"
    return out


async def _bounded(limit: int, coros: Iterable[Any]) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def run(c: Any) -> Any:
        async with sem:
            return await c

    return list(await asyncio.gather(*(run(c) for c in coros)))


__all__ = [
    "Comparison",
    "Desired",
    "Engine",
    "ResourceResult",
    "SyncResult",
    "manifest_hash",
]
