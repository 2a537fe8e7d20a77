"""The continuous loop: watch Applications and live objects, queue them, and dispatch reconciles.

The controller decides *when*; ``tether.engine`` knows *how*. Triggers (a new commit seen by
polling or a webhook, a spec change, a refresh request, a live change to a tracked object)
put the app in a de-duplicating work queue; a bounded pool of workers reconciles each:
compare, then (``controller.acting``) go on with a running operation, take a user's request,
or start an automated sync when the policy says one is due (``controller.policy``), one step
of it at a time (``controller.operations``), and report what happened
(``controller.outcomes``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from tether import metrics
from tether.api.application import (
    API_VERSION,
    KIND,
    REFRESH_ANNOTATION,
    TRACKING_ANNOTATION,
    Application,
)
from tether.controller import operation, operations, selfheal
from tether.controller.acting import Acting
from tether.controller.app_store import AppStore
from tether.controller.dependencies import DependencyGate
from tether.controller.finalizer import AppFinalizer
from tether.controller.outcomes import Outcomes
from tether.controller.outlets import AppLog, AuditSink, NotifySink, Outlets
from tether.controller.pinning import Pins, forget_metrics
from tether.controller.polling import RepoPoller
from tether.controller.queue import AppKey, WorkQueue
from tether.controller.sources import git_urls, has_chart_source, repo_key
from tether.controller.state import AppState
from tether.deletion import being_deleted, deletion_changed, deletion_started
from tether.deletion.hooks import RenderedHooks
from tether.engine import Condition, Engine, now
from tether.errors import InvalidSpec, KubeError, TetherError
from tether.kube import KubeClient, LiveCache
from tether.lograte import RateLimitedLog
from tether.model import Obj, resource_version
from tether.server.webhooks import PushEvent, refreshes
from tether.source.helm_repo import clear_index_cache
from tether.sync.hooks import HOOK_OF_ANNOTATION
from tether.sync.state import TERMINATING

log = logging.getLogger("tether.controller")


@dataclass
class ControllerOptions:
    namespaces: list[str] = field(default_factory=lambda: ["tether-system"])
    workers: int = 32
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
        self.outcomes = Outcomes(self.out)
        self.ops = operations.Operations(kube, engine, self.opts.identity)
        self.pins = Pins(kube, engine, self.out)
        self.queue = WorkQueue()
        self.finalizer = AppFinalizer(
            kube,
            self.opts.identity,
            lambda k, r, d: self.queue.add(k, r, delay=d),
            audit=audit,
            hooks=RenderedHooks(engine),
        )
        self.apps = AppStore()
        self.state: dict[AppKey, AppState] = {}
        self._info: dict[AppKey, tuple[str, ...]] = {}
        """The labels of each app's ``tether_app_info`` series."""
        self.app_cache = LiveCache(kube)
        self.deps = DependencyGate(self.apps, self.opts.namespaces)
        assert engine.cache is not None, "the controller needs an engine with a live cache"
        self.live: LiveCache = engine.cache
        self.live.add_listener(self._on_live_event)
        self.app_cache.add_listener(self._on_app_event)
        self.acting = Acting(
            engine=engine,
            opts=self.opts,
            out=self.out,
            outcomes=self.outcomes,
            ops=self.ops,
            pins=self.pins,
            queue=self.queue,
            deps=self.deps,
            finalizer=self.finalizer,
            apps=self.apps,
            store=self._store_app,
            leave_alone=self._leave_alone,
        )
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
        for key in list(self._info):
            metrics.forget_app(*key)  # a stopped (or standby) controller reports no apps
        self._info.clear()
        metrics.APPS_RECONCILED.set(0)
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
        self._set_app(key, obj)
        st = self.state.setdefault(key, AppState())
        meta = obj.get("metadata") or {}
        st.generation = int(meta.get("generation") or 0)
        st.refresh_token = str((meta.get("annotations") or {}).get(REFRESH_ANNOTATION, ""))

    def _on_app_event(self, event: str, obj: Obj) -> None:
        key = _key(obj)
        if event == "DELETED":
            self.apps.pop(key, None)
            self.poller.changed(key)
            st = self.state.pop(key, None)
            if st is not None and st.reconciles:
                metrics.APPS_RECONCILED.dec()
            self._info.pop(key, None)
            metrics.forget_app(*key)
            self.queue.remove(key)
            self.finalizer.forget(key)
            forget_metrics(key)
            for k in self.deps.changed(key, None):
                self.queue.add(k, "dependency")
            return
        if self.apps.version(key) > resource_version(obj):
            return  # our own newer write already seen
        old = self.apps.get(key)
        st = self.state.get(key)
        meta = obj.get("metadata") or {}
        generation = int(meta.get("generation") or 0)
        token = str((meta.get("annotations") or {}).get(REFRESH_ANNOTATION, ""))
        self._set_app(key, obj)
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
        if _op_phase(obj) == TERMINATING and (old is None or _op_phase(old) != TERMINATING):
            self.queue.add(key, "terminate")  # tether app terminate-op: the next step ends it
        for k in self.deps.changed(key, obj):
            self.queue.add(k, "dependency")  # it may be what they wait for

    def _on_live_event(self, event: str, obj: Obj) -> None:
        ann = (obj.get("metadata") or {}).get("annotations") or {}
        tid = str(ann.get(TRACKING_ANNOTATION) or "")
        owner = tid.split(":", 1)[0]
        hook_of = str(ann.get(HOOK_OF_ANNOTATION) or "")
        if "_" in owner:
            ns, name = owner.split("_", 1)
        elif "/" in hook_of:
            ns, name = hook_of.split("/", 1)  # a hook instance: its end moves an operation on
        else:
            return
        key = (ns, name)
        if key in self.apps:
            self.queue.add(key, "live", delay=self.opts.drift_debounce)

    def refresh_repo(self, repo_url: str, trigger: str) -> int:
        """Queues every app that reads ``repo_url`` through any of its sources: its poll
        just found new refs, or a new failure. The refs (or the failure) the poll cached
        are what those reconciles read, so Git is not asked again for each app."""
        want = repo_key(repo_url)
        n = 0
        for key, refs in self.apps.sources():
            if want and any(s.is_git and repo_key(s.repo_url) == want for s in refs):
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
        for key, refs in self.apps.sources():
            hit = False
            for src in refs:
                if not src.is_git or not refreshes(src.repo_url, src.target_revision, event):
                    continue
                hit = True
                if repo_key(src.repo_url) not in forgotten:
                    self.engine.git.forget_refs(src.repo_url, in_flight=True)
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
                metrics.RECONCILE_DURATION.observe(time.perf_counter() - t0)
                self.reconciles += 1
                st = self.state.get(key)
                if st is not None:
                    st.reconciles += 1
                    if st.reconciles == 1:
                        metrics.APPS_RECONCILED.inc()
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
        logx = AppLog(app)
        current = operations.running(app)
        if "refresh" in reasons or (current is None and operations.requested(app) is not None):
            # A hard refresh: branch tips, and chart repository indexes, are asked anew. A
            # new manual request is one too: it deploys Git as it is now.
            for url in git_urls(obj):
                self.engine.git.forget_refs(url, in_flight=True)
            if has_chart_source(obj):
                clear_index_cache()
        # A running operation is judged at the revision it pinned, not at a newer one.
        cmp = await self.engine.compare(app, (current.revision or None) if current else None)
        if cmp.error is not None:
            logx.warning("comparison failed: %s", cmp.error)
        latest = self.apps.get(key)
        if latest is None or being_deleted(latest):
            return  # deleted (or marked) while comparing: report nothing, write nothing
        app = await self._pin(app, st)
        drifted = selfheal.drifted(app, cmp, st)
        if drifted:
            await selfheal.report_drift(self.out, app, cmp, st, drifted)
        await self.acting.act(app, cmp, st, reasons, drifted, logx)

    async def _pin(self, app: Application, st: AppState) -> Application:
        """How far behind its branches a pinned app is, in status and metrics; a new pin or
        an unpin announced once. Returns the app as it is now."""
        st.pin = await self.pins.observe(app)
        written = await self.pins.announce(app, st.pin)
        if written is None:
            return app
        self._store_app(written)
        return Application.from_obj(written)

    async def _abandon_leftover_sync(self, obj: Obj) -> None:
        out = await operation.abandon_leftover(self.kube, obj)
        if out is not None:
            self._store_app(out)

    def _store_app(self, obj: Obj) -> None:
        key = _key(obj)
        if key not in self.apps or resource_version(obj) >= self.apps.version(key):
            self._set_app(key, obj)

    def _set_app(self, key: AppKey, obj: Obj) -> None:
        """The app as last seen, and its ``tether_app_info`` series (changed only when its
        project or status did, so a scrape renders nothing). Its ``managedFields`` are
        dropped: nothing the controller does reads who wrote an Application's fields, and
        they are a third of its size."""
        (obj.get("metadata") or {}).pop("managedFields", None)
        self.apps[key] = obj
        self.poller.changed(key)
        spec = obj.get("spec") or {}
        st = obj.get("status") or {}
        info = (
            key[0],
            key[1],
            str(spec.get("project") or "default"),
            str((st.get("sync") or {}).get("status") or "Unknown"),
            str((st.get("health") or {}).get("status") or "Unknown"),
        )
        if self._info.get(key) != info:
            old = self._info.get(key)
            if old is not None:
                metrics.APP_INFO.remove(old)
            self._info[key] = info
            metrics.APP_INFO.set(info)

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
        """Apps by (sync status, health), from each app's ``tether_app_info`` labels (no app
        is decoded for it)."""
        out: dict[tuple[str, str], int] = {}
        for *_, sync, health in self._info.values():
            out[(sync, health)] = out.get((sync, health), 0) + 1
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


def _key(obj: Obj) -> AppKey:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def _op_phase(obj: Obj) -> str:
    return str(((obj.get("status") or {}).get("operationState") or {}).get("phase") or "")
