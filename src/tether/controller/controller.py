"""The continuous loop: watch Applications and live objects, poll Git, and reconcile.

The controller decides *when*; ``tether.engine`` already knows *how*. Triggers (a new
commit seen by polling or a webhook, a spec change, a refresh request, a live change to a
tracked object) put the app in a de-duplicating work queue; a bounded pool of workers
reconciles: compare, then sync when the app asks for automation, then status, events,
audit records and notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tether import metrics
from tether.api.application import (
    API_VERSION,
    KIND,
    REFRESH_ANNOTATION,
    TRACKING_ANNOTATION,
    Application,
)
from tether.controller import operation, selfheal
from tether.controller.dependencies import DependencyGate
from tether.controller.events import emit_event
from tether.controller.finalizer import AppFinalizer
from tether.controller.outlets import AppLog, AuditSink, NotifySink, Outlets
from tether.controller.polling import RepoPoller
from tether.controller.queue import AppKey, WorkQueue
from tether.controller.sources import git_urls, has_chart_source, repo_key, source_refs
from tether.controller.state import AppState, attempt_key
from tether.controller.windows import gate as window_gate
from tether.deletion import being_deleted, deletion_changed, deletion_started
from tether.engine import Comparison, Condition, Engine, SyncResult, now
from tether.errors import InvalidSpec, KubeError, TetherError
from tether.kube import KubeClient, LiveCache
from tether.lograte import RateLimitedLog
from tether.model import HealthStatus, Obj, ResourceKey, SyncStatus
from tether.server.webhooks import PushEvent, refreshes
from tether.source import redact
from tether.source.helm_repo import clear_index_cache
from tether.status import (
    has_several_sources,
    history_sources,
    revision_key,
    source_revisions,
)

log = logging.getLogger("tether.controller")

TRIGGER_ORDER = ("webhook", "poll", "refresh", "spec", "self-heal", "retry", "resync")


@dataclass
class ControllerOptions:
    namespaces: list[str] = field(default_factory=lambda: ["tether-system"])
    workers: int = 4
    default_refresh_interval: float = 180.0
    fight_limit: int = 5
    """More than this many corrections of one object ..."""
    fight_window: float = 600.0
    """... within this many seconds: stop correcting it."""
    drift_debounce: float = 0.02
    resync_interval: float = 600.0
    """Every app is compared again this often even if nothing signalled a change (catches
    what no watch can see, e.g. types the controller may not list)."""
    identity: str = "tether-controller"
    stuck_after: float = 600.0
    """Liveness: work waiting this long while no worker takes any, or a poll loop silent
    this long, means the controller is stuck (``/healthz`` fails)."""


class Controller:
    def __init__(
        self,
        kube: KubeClient,
        engine: Engine,
        options: ControllerOptions | None = None,
        *,
        audit: AuditSink | None = None,
        notify: NotifySink | None = None,
    ) -> None:
        self.kube = kube
        self.engine = engine
        self.opts = options or ControllerOptions()
        self.audit = audit
        self.notify = notify
        self.out = Outlets(kube, self.opts.identity, audit, notify)
        self.queue = WorkQueue()
        self.finalizer = AppFinalizer(
            kube, self.opts.identity, lambda k, r, d: self.queue.add(k, r, delay=d), audit=audit
        )
        self.apps: dict[AppKey, Obj] = {}
        self.state: dict[AppKey, AppState] = {}
        self.app_cache = LiveCache(kube)
        self.deps = DependencyGate(self.apps, self.opts.namespaces)
        assert engine.cache is not None, "the controller needs an engine with a live cache"
        self.live: LiveCache = engine.cache
        self.live.add_listener(self._on_live_event)
        self.app_cache.add_listener(self._on_app_event)
        self.poller = RepoPoller(
            engine,
            self.apps,
            lambda url: self.refresh_repo(url, "poll"),
            self.opts.default_refresh_interval,
            lambda key: self.refresh_app(key, "poll"),
        )
        self._failure_log = RateLimitedLog(log, 60.0)
        self._next_resync = time.monotonic() + self.opts.resync_interval
        self._gauges_at = 0.0
        self._tasks: list[asyncio.Task[Any]] = []
        self.ready = asyncio.Event()
        self.reconciles = 0

    # ---- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        for ns in self.opts.namespaces:
            await self.app_cache.ensure(API_VERSION, KIND, namespace=ns)
        for obj in self.app_cache.all_objects():
            self._remember(obj)
            self.queue.add(_key(obj), "resync")
        self._tasks.append(
            asyncio.create_task(self.poller.run(self._update_gauges), name="git poller")
        )
        for i in range(self.opts.workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"worker {i}"))
        self.ready.set()
        log.info(
            "controller started: %d applications in %s",
            len(self.apps),
            ", ".join(self.opts.namespaces) or "all namespaces",
        )

    async def stop(self) -> None:
        self.queue.close()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        await self.app_cache.close()
        await self.live.close()

    async def run(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    # ---- triggers -------------------------------------------------------------------------
    def _remember(self, obj: Obj) -> None:
        key = _key(obj)
        self.apps[key] = obj
        st = self.state.setdefault(key, AppState())
        meta = obj.get("metadata") or {}
        st.generation = int(meta.get("generation") or 0)
        st.refresh_token = str((meta.get("annotations") or {}).get(REFRESH_ANNOTATION, ""))

    def _on_app_event(self, event: str, obj: Obj) -> None:
        key = _key(obj)
        if event == "DELETED":
            self.apps.pop(key, None)
            self.state.pop(key, None)
            self.queue.remove(key)
            self.finalizer.forget(key)
            for k in self.deps.changed(key, None):
                self.queue.add(k, "dependency")
            return
        old = self.apps.get(key)
        if old is not None and _rv(old) > _rv(obj):
            return  # our own newer write already seen
        st = self.state.get(key)
        meta = obj.get("metadata") or {}
        generation = int(meta.get("generation") or 0)
        token = str((meta.get("annotations") or {}).get(REFRESH_ANNOTATION, ""))
        self.apps[key] = obj
        if deletion_changed(old, obj):
            self.queue.add(key, "deletion")  # deleted, or its deletion policy changed
        if st is None:
            self._remember(obj)
            self.queue.add(key, "spec")
        elif generation != st.generation:
            st.generation = generation
            self.queue.add(key, "spec")
        elif token and token != st.refresh_token:
            st.refresh_token = token
            self.queue.add(key, "refresh")
        for k in self.deps.changed(key, obj):
            self.queue.add(k, "dependency")  # it may be what they wait for

    def _on_live_event(self, event: str, obj: Obj) -> None:
        ann = (obj.get("metadata") or {}).get("annotations") or {}
        tid = str(ann.get(TRACKING_ANNOTATION) or "")
        owner = tid.split(":", 1)[0]
        if "_" not in owner:
            return
        ns, name = owner.split("_", 1)
        key = (ns, name)
        if key in self.apps:
            self.queue.add(key, "live", delay=self.opts.drift_debounce)

    def refresh_repo(self, repo_url: str, trigger: str) -> int:
        """Queues every app that reads ``repo_url`` through any of its sources: its poll
        just found new refs, or a new failure. The refs (or the failure) the poll cached
        are what those reconciles read, so Git is not asked again for each app."""
        want = repo_key(repo_url)
        n = 0
        for key, obj in list(self.apps.items()):
            if want and any(repo_key(u) == want for u in git_urls(obj)):
                self.queue.add(key, trigger)
                n += 1
        return n

    def refresh_app(self, key: AppKey, trigger: str) -> None:
        self.queue.add(key, trigger)

    def refresh_matching(self, event: PushEvent) -> int:
        """A webhook push: queue the apps with a source in the repository and on the branch
        (or tag) it names; any source counts (a values repository as much as the chart's)."""
        n = 0
        forgotten: set[str] = set()
        for key, obj in list(self.apps.items()):
            hit = False
            for src in source_refs(obj):
                if not src.is_git or not refreshes(src.repo_url, src.target_revision, event):
                    continue
                hit = True
                if repo_key(src.repo_url) not in forgotten:
                    self.engine.git.forget_refs(src.repo_url)
                    forgotten.add(repo_key(src.repo_url))
            if hit:
                self.queue.add(key, "webhook")
                n += 1
        return n

    # ---- workers --------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            key, reasons = await self.queue.get()
            metrics.QUEUE_DEPTH.set(len(self.queue))
            t0 = time.perf_counter()
            try:
                await self.reconcile(key, reasons)
                self.queue.forget(key)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                await self._reconcile_failed(key, e)
            finally:
                metrics.RECONCILE_DURATION.labels(*key).observe(time.perf_counter() - t0)
                self.reconciles += 1
                self.queue.done(key)

    async def _reconcile_failed(self, key: AppKey, e: Exception) -> None:
        """A reconcile raised: retry it with backoff, and say why on that app alone."""
        if key not in self.apps:
            return  # deleted meanwhile: nothing left to retry or to report on
        delay = self.queue.backoff(key)
        cause = _describe(e)
        self._failure_log.log(
            logging.WARNING,
            f"{key} {cause}",
            "reconcile of %s/%s failed (%s); retrying in %.1fs",
            key[0],
            key[1],
            cause,
            delay,
        )
        self.queue.add(key, "retry", delay=delay)
        obj = self.apps.get(key)
        if obj is not None and not being_deleted(obj):
            await self._write_error_status(
                obj, Condition("ReconcileError", f"{cause}; retrying in {delay:.0f}s")
            )

    def _leave_alone(self, app_obj: Obj, st: AppState, why: str) -> None:
        """An app being deleted is never compared, synced or healed: say so once."""
        if st.deleting == why:
            return
        st.deleting = why
        meta = app_obj.get("metadata") or {}
        log.info(
            "leaving %s/%s alone (no sync, no self-heal): it is being deleted, as %s",
            meta.get("namespace"),
            meta.get("name"),
            why,
            extra={"app": f"{meta.get('namespace')}/{meta.get('name')}"},
        )

    async def reconcile(self, key: AppKey, reasons: set[str]) -> None:
        obj = self.apps.get(key)
        if obj is None:
            return
        st = self.state.setdefault(key, AppState())
        why = being_deleted(obj)
        if why:
            self._leave_alone(obj, st, why)
            await self._abandon_leftover_sync(obj)
            if deletion_started(obj):
                out = await self.finalizer.finalize(key, self.apps.get(key, obj))
                if out is not None:
                    self._store_app(out)
            return
        st.deleting = ""  # a mark removed by hand: the app is managed again
        obj = await self.finalizer.ensure(obj)  # deleting it then deletes what it deployed
        self._store_app(obj)
        try:
            app = Application.from_obj(obj)
        except InvalidSpec as e:
            await self._write_error_status(obj, Condition("InvalidSpec", str(e)), revision="")
            return
        trigger = next((t for t in TRIGGER_ORDER if t in reasons), "resync")
        logx = AppLog(app)
        if "refresh" in reasons:
            # A hard refresh: branch tips, and chart repository indexes, are asked anew.
            for url in git_urls(obj):
                self.engine.git.forget_refs(url)
            if has_chart_source(obj):
                clear_index_cache()
        cmp = await self.engine.compare(app)
        if cmp.error is not None:
            logx.warning("comparison failed: %s", cmp.error)
        latest = self.apps.get(key)
        if latest is None or being_deleted(latest):
            return  # deleted (or marked) while comparing: report nothing, write nothing
        drifted = selfheal.drifted(app, cmp, st)
        if drifted:
            await selfheal.report_drift(self.out, app, cmp, st, drifted)

        result: SyncResult | None = None
        sync_trigger = ""
        pol = app.sync_policy
        last = app.status.get("operationState") or {}
        new_revision = cmp.error is None and (
            last_revision_key(app) != revision_key(app, cmp)
            or int(last.get("generation", -1)) != app.generation
            or last.get("phase") in ("Running", "Failed")
        )
        if pol.automated and cmp.error is None and cmp.sync_status == SyncStatus.OUT_OF_SYNC:
            if new_revision:
                # Failed attempts count per revision and spec: a new commit or spec change
                # starts afresh; the same one is retried up to syncPolicy.retry.limit times.
                attempts = st.attempts.get(attempt_key(revision_key(app, cmp), app), 0)
                if attempts == 0 or attempts <= pol.retry.limit or pol.retry.limit < 0:
                    sync_trigger = trigger if trigger in ("webhook", "poll", "refresh") else "auto"
            elif pol.self_heal and drifted:
                sync_trigger = "self-heal"
        elif (
            cmp.error is None
            and last.get("phase") == "Running"
            and (cmp.sync_status == SyncStatus.SYNCED)
        ):
            # Killed after applying but before recording the end: the cluster shows it done.
            self._store_app(await operation.close_interrupted(self.kube, app))
        if self.deps.hold(app, cmp, wants_sync=bool(sync_trigger)):
            sync_trigger = ""  # a dependency is not ready, or dependsOn has a cycle
        sync_trigger = self._window_gate(app, cmp, sync_trigger, logx)
        if sync_trigger:
            result = await self._sync(app, cmp, st, sync_trigger, drifted, logx)
            if st.deleting:
                return  # refused to start: the app is going away
            if result is not None and result.comparison is not None:
                cmp = result.comparison
        await self._finish(app, cmp, st, result, sync_trigger)

    async def _sync(
        self,
        app: Application,
        cmp: Comparison,
        st: AppState,
        trigger: str,
        drifted: list[ResourceKey],
        logx: AppLog,
    ) -> SyncResult | None:
        skip: set[ResourceKey] = set()
        if trigger == "self-heal":
            skip = await selfheal.stop_fighting(
                self.out,
                app,
                cmp,
                st,
                drifted,
                limit=self.opts.fight_limit,
                window=self.opts.fight_window,
            )
            if set(drifted) <= skip:
                return None
        try:
            fresh = await operation.claim(
                self.kube, app, cmp.revision, revisions=_revisions_if_several(app, cmp)
            )
        except operation.Refused as e:
            self._leave_alone(e.obj or app.obj, st, e.why)
            return None
        self._store_app(fresh.obj)
        logx.info("syncing (%s) to %s", trigger, cmp.revision[:10])
        await emit_event(
            self.kube,
            app.obj,
            "SyncStarted",
            f"sync ({trigger}) to {cmp.revision[:10]} started",
            instance=self.opts.identity,
        )
        res = await self.engine.sync(
            fresh,
            revision=cmp.revision,
            trigger=trigger,
            write_status=False,
            skip=skip,
            comparison=cmp,
        )
        metrics.SYNCS.labels(app.namespace, app.name, res.phase, trigger).inc()
        changed = res.changed()
        akey = attempt_key(revision_key(app, cmp), app)
        failures = 0
        if res.ok:
            st.attempts.pop(akey, None)
        else:
            failures = st.attempts[akey] = st.attempts.get(akey, 0) + 1
            pol = app.sync_policy.retry
            if pol.limit < 0 or failures <= pol.limit:
                delay = pol.delay(failures)
                logx.warning(
                    "sync failed (attempt %d): %s; retrying in %.0fs", failures, res.message, delay
                )
                self.queue.add((app.namespace, app.name), "retry", delay=delay)
        if trigger == "self-heal" and res.ok:
            t = time.monotonic()
            for r in changed:
                st.corrections.setdefault(r.key, deque()).append(t)
            metrics.SELF_HEALS.labels(app.namespace, app.name).inc(len(changed))
        msg = f"sync ({trigger}) to {cmp.revision[:10]} {res.phase.lower()}: {res.message}"
        await emit_event(
            self.kube,
            app.obj,
            "SyncSucceeded" if res.ok else "SyncFailed",
            msg,
            warning=not res.ok,
            instance=self.opts.identity,
        )
        if trigger == "self-heal" and res.ok and changed:
            await emit_event(
                self.kube,
                app.obj,
                "DriftCorrected",
                "re-applied " + ", ".join(str(r.key) for r in changed[:5]),
                instance=self.opts.identity,
            )
        if self.audit:
            desired = res.comparison.desired if res.comparison else None
            kind = "correction" if trigger == "self-heal" else "sync"
            await self.audit.record(
                kind,
                app,
                revision=res.revision,
                trigger=trigger,
                result=res.phase,
                message=(
                    desired.commit.message.splitlines()[0]
                    if desired and desired.commit.message
                    else res.message
                ),
                author=desired.commit.author if desired else "",
                objects=[r.to_dict() for r in res.results if r.action != "unchanged"],
                details={
                    "outcome": res.message,
                    "source": {
                        "repoURL": redact(app.source.repo_url),
                        "path": app.source.path,
                        "targetRevision": app.source.target_revision,
                    },
                    **_several_sources(app, res.comparison or cmp),
                },
            )
            pruned = [r.to_dict() for r in res.results if r.action == "pruned"]
            if pruned:
                await self.audit.record(
                    "prune",
                    app,
                    revision=res.revision,
                    trigger=trigger,
                    result=res.phase,
                    objects=pruned,
                    message=f"pruned {len(pruned)} object(s)",
                )
        if self.notify and not res.ok:
            self.notify.send("sync-failed", app, msg, revision=res.revision)
        elif self.notify and changed and trigger != "self-heal":
            self.notify.send(
                "sync-succeeded",
                app,
                msg,
                revision=res.revision,
                objects=[r.key.to_dict() for r in changed],
            )
        if failures and 0 <= app.sync_policy.retry.limit < failures:
            await self._give_up(app, cmp.revision, failures, res.message, logx)
        return res

    def _window_gate(self, app: Application, cmp: Comparison, trigger: str, logx: AppLog) -> str:
        """The app's sync windows: a due automated sync or self-heal they deny is held (a
        condition says so, and until when); the app is looked at again at their next edge."""
        g = window_gate(app.sync_windows, app.name, trigger, cmp.revision, datetime.now(UTC))
        if g.recheck_in is not None:
            self.queue.add((app.namespace, app.name), "window", delay=g.recheck_in)
        if not g.held:
            return trigger
        cmp.conditions.append(Condition("SyncHeldByWindow", g.message, reason=g.reason))
        known = app.status.get("conditions") or []
        if not any(c.get("message") == g.message for c in known):
            logx.info("%s", g.message)
        return ""

    async def _abandon_leftover_sync(self, obj: Obj) -> None:
        out = await operation.abandon_leftover(self.kube, obj)
        if out is not None:
            self._store_app(out)

    async def _give_up(
        self, app: Application, revision: str, failures: int, why: str, logx: AppLog
    ) -> None:
        """The last retry failed: say so everywhere a person looks, once."""
        limit = app.sync_policy.retry.limit
        message = (
            f"sync to {revision[:10]} failed {failures} time(s); retry.limit ({limit}) "
            f"reached, no more automatic retries: {why}"
        )
        logx.warning("%s", message)
        await emit_event(
            self.kube,
            app.obj,
            "SyncRetriesExhausted",
            message,
            warning=True,
            instance=self.opts.identity,
        )
        if self.audit:
            await self.audit.record(
                "retries-exhausted", app, revision=revision, result="Failed", message=message
            )

    async def _finish(
        self,
        app: Application,
        cmp: Comparison,
        st: AppState,
        result: SyncResult | None,
        trigger: str,
    ) -> None:
        cmp.conditions.extend(selfheal.fighting_conditions(cmp, st))
        cmp.conditions.extend(self.finalizer.conditions(app.obj))
        failures = st.attempts.get(attempt_key(revision_key(app, cmp), app), 0)
        limit = app.sync_policy.retry.limit
        if cmp.revision and 0 <= limit < failures:
            cmp.conditions.append(
                Condition(
                    "RetriesExhausted",
                    f"sync to {cmp.revision[:10]} failed {failures} time(s) and retry.limit is "
                    f"{limit}: no more automatic syncs of this revision. Push a fix, change the "
                    "spec, or run 'tether app sync'",
                )
            )
        health = cmp.health.status.value
        if st.health and health != st.health:
            await emit_event(
                self.kube,
                app.obj,
                "HealthChanged",
                f"health {st.health} → {health}"
                + (f": {cmp.health.message}" if cmp.health.message else ""),
                warning=health == HealthStatus.DEGRADED.value,
                instance=self.opts.identity,
            )
            if health == HealthStatus.DEGRADED.value:
                if self.notify:
                    self.notify.send(
                        "health-degraded",
                        app,
                        f"{app.name} is Degraded: {cmp.health.message}",
                        revision=cmp.revision,
                    )
                if self.audit:
                    await self.audit.record(
                        "health",
                        app,
                        revision=cmp.revision,
                        result=health,
                        message=cmp.health.message,
                    )
        st.health = health
        latest = Application.from_obj(self.apps.get((app.namespace, app.name), app.obj))
        extra = {"generation": app.generation} if result is not None else None
        try:
            out = await self.engine.write_status(
                latest, cmp, result, trigger=trigger, only_if_changed=True, operation_extra=extra
            )
        except KubeError as e:
            if e.status == 404:
                return  # the Application was deleted meanwhile: nothing to write to
            raise
        if out is not None:
            self._store_app(out)

    def _store_app(self, obj: Obj) -> None:
        key = _key(obj)
        old = self.apps.get(key)
        if old is None or _rv(obj) >= _rv(old):
            self.apps[key] = obj

    async def _write_error_status(
        self, obj: Obj, cond: Condition, *, revision: str | None = None
    ) -> None:
        """Status when nothing could be compared: the condition, and sync Unknown (the
        revision deployed is kept unless ``revision`` replaces it)."""
        sync: dict[str, str] = {"status": "Unknown"}
        if revision is not None:
            sync["revision"] = revision
        st = {"conditions": [cond.to_dict(now())], "sync": sync}
        with contextlib.suppress(KubeError):
            await self.kube.patch_status(obj, st)

    def _update_gauges(self) -> None:
        t = time.monotonic()
        if t >= self._next_resync:
            self._next_resync = t + self.opts.resync_interval
            for key in list(self.apps):
                self.queue.add(key, "resync")
        if t - self._gauges_at < 15:
            return
        self._gauges_at = t
        metrics.APPS.clear()
        for (sync, health), n in self.counts().items():
            metrics.APPS.labels(sync, health).set(n)

    # ---- queries --------------------------------------------------------------------------
    def liveness_problem(self) -> str:
        """Why this controller is stuck ("" when it is not): a loop that died, a poll loop
        that stopped ticking, or work waiting while no worker took any for too long.
        A controller that has not started (a standby) is not stuck."""
        if not self.ready.is_set():
            return ""
        dead = [t.get_name() for t in self._tasks if t.done()]
        if dead:
            return f"{', '.join(dead)} stopped"
        t = time.monotonic()
        bound = self.opts.stuck_after
        if t - self.poller.heartbeat > bound:
            return f"the git poll loop has not run for {t - self.poller.heartbeat:.0f}s"
        waiting = len(self.queue)
        if waiting and t - self.queue.progress_at > bound:
            return (
                f"{waiting} application(s) waiting and no worker took or finished one for "
                f"{t - self.queue.progress_at:.0f}s"
            )
        return ""

    def counts(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for obj in self.apps.values():
            st = obj.get("status") or {}
            k = (
                (st.get("sync") or {}).get("status", "Unknown"),
                (st.get("health") or {}).get("status", "Unknown"),
            )
            out[k] = out.get(k, 0) + 1
        return out


def _describe(e: Exception) -> str:
    """One line about an error: its own words for ours, the type and where for a bug."""
    if isinstance(e, TetherError):
        return str(e)
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f" at {tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}" if tb else ""
    return f"internal error {type(e).__name__}{where}: {e}"


def last_revision_key(app: Application) -> str:
    """``revision_key`` of the last sync, as its operation state recorded it."""
    last = app.status.get("operationState") or {}
    if has_several_sources(app) and last.get("revisions"):
        return ",".join(str(r) for r in last["revisions"])
    return str(last.get("revision") or "")


def _revisions_if_several(app: Application, cmp: Comparison) -> list[str] | None:
    return source_revisions(cmp) if has_several_sources(app) else None


def _several_sources(app: Application, cmp: Comparison) -> dict[str, Any]:
    """An audit record's ``revisions`` and ``sources`` for an app with several sources."""
    if not has_several_sources(app):
        return {}
    return {"revisions": source_revisions(cmp), "sources": history_sources(app, cmp)}


def _key(obj: Obj) -> AppKey:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def _rv(obj: Obj) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0
