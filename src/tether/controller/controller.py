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
from typing import Any, Protocol

from tether import metrics
from tether.api.application import (
    API_VERSION,
    KIND,
    REFRESH_ANNOTATION,
    TRACKING_ANNOTATION,
    Application,
    parse_duration,
)
from tether.controller.events import Change, emit_event, last_foreign_change
from tether.controller.queue import AppKey, WorkQueue
from tether.engine import Comparison, Condition, Engine, SyncResult, now
from tether.errors import InvalidSpec, KubeError, SourceError, TetherError
from tether.kube import KubeClient, LiveCache
from tether.model import HealthStatus, Obj, ResourceDiffStatus, ResourceKey, SyncStatus
from tether.server.webhooks import PushEvent, matches
from tether.source import normalize_url, strip_url_credentials

log = logging.getLogger("tether.controller")

REFRESH_INTERVAL_ANNOTATION = "tether.dev/refresh-interval"
TRIGGER_ORDER = ("webhook", "poll", "refresh", "spec", "self-heal", "retry", "resync")


class AuditSink(Protocol):
    async def record(self, kind: str, app: Application, **fields: Any) -> None: ...


class NotifySink(Protocol):
    def send(self, event: str, app: Application, message: str, **fields: Any) -> None: ...


@dataclass
class AppState:
    generation: int = 0
    refresh_token: str = ""
    drift_reported: dict[ResourceKey, str] = field(default_factory=dict)
    """Object → resourceVersion whose drift was already reported (report each once)."""
    corrections: dict[ResourceKey, deque[float]] = field(default_factory=dict)
    fighting: dict[ResourceKey, Change | None] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    """Failed automated syncs per revision, for the retry policy."""
    health: str = ""


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
        self.queue = WorkQueue()
        self.apps: dict[AppKey, Obj] = {}
        self.state: dict[AppKey, AppState] = {}
        self.app_cache = LiveCache(kube)
        assert engine.cache is not None, "the controller needs an engine with a live cache"
        self.live: LiveCache = engine.cache
        self.live.add_listener(self._on_live_event)
        self.app_cache.add_listener(self._on_app_event)
        self._repo_refs: dict[str, dict[str, str]] = {}
        self._repo_next_poll: dict[str, float] = {}
        self._repo_failed: set[str] = set()
        self._poll_memo: dict[AppKey, tuple[tuple[str, str], str, float]] = {}
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
        self._tasks.append(asyncio.create_task(self._poll_loop(), name="git poller"))
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
            return
        old = self.apps.get(key)
        if old is not None and _rv(old) > _rv(obj):
            return  # our own newer write already seen
        st = self.state.get(key)
        meta = obj.get("metadata") or {}
        generation = int(meta.get("generation") or 0)
        token = str((meta.get("annotations") or {}).get(REFRESH_ANNOTATION, ""))
        self.apps[key] = obj
        if st is None:
            self._remember(obj)
            self.queue.add(key, "spec")
        elif generation != st.generation:
            st.generation = generation
            self.queue.add(key, "spec")
        elif token and token != st.refresh_token:
            st.refresh_token = token
            self.queue.add(key, "refresh")

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
        """``repo_url`` moved: forget its refs and queue every app tracking it."""
        want = normalize_url(repo_url)
        self.engine.git.forget_refs(repo_url)
        n = 0
        for key, obj in self.apps.items():
            src = (obj.get("spec") or {}).get("source") or {}
            if normalize_url(str(src.get("repoURL", ""))) == want:
                self.queue.add(key, trigger)
                n += 1
        return n

    def refresh_matching(self, event: PushEvent) -> int:
        """A webhook push: queue the apps whose repository and branch (or tag) it names."""
        n = 0
        forgotten: set[str] = set()
        for key, obj in self.apps.items():
            src = (obj.get("spec") or {}).get("source") or {}
            url = str(src.get("repoURL", ""))
            if not matches(url, event):
                continue
            rev = str(src.get("targetRevision") or "HEAD")
            # HEAD follows the default branch, which only the remote knows: refresh it.
            branch_ok = rev in ("HEAD", event.branch, f"refs/heads/{event.branch}")
            tag_ok = rev in (event.tag, f"refs/tags/{event.tag}")
            if (event.branch and not branch_ok) or (event.tag and not tag_ok):
                continue
            if url not in forgotten:
                self.engine.git.forget_refs(url)
                forgotten.add(url)
            self.queue.add(key, "webhook")
            n += 1
        return n

    # ---- polling --------------------------------------------------------------------------
    def _interval(self, obj: Obj) -> float:
        ann = (obj.get("metadata") or {}).get("annotations") or {}
        raw = ann.get(REFRESH_INTERVAL_ANNOTATION)
        if raw:
            try:
                return max(parse_duration(str(raw)), 1.0)
            except InvalidSpec:
                log.warning("ignoring invalid %s=%r", REFRESH_INTERVAL_ANNOTATION, raw)
        return self.opts.default_refresh_interval

    async def _poll_loop(self) -> None:
        """One ls-remote per repository per interval, shared by all its apps."""
        while True:
            await asyncio.sleep(0.5)
            try:
                await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("git polling failed; continuing")

    def _poll_targets(self) -> dict[str, tuple[float, AppKey]]:
        """Repository URL → (shortest interval of its apps, one of its apps)."""
        repos: dict[str, tuple[float, AppKey]] = {}
        for key, obj in list(self.apps.items()):
            meta = obj.get("metadata") or {}
            memo_key = (str(meta.get("generation")), str(meta.get("annotations")))
            memo = self._poll_memo.get(key)
            if memo is None or memo[0] != memo_key:
                src = (obj.get("spec") or {}).get("source") or {}
                memo = (memo_key, str(src.get("repoURL", "")), self._interval(obj))
                self._poll_memo[key] = memo
            _, url, interval = memo
            if url and (url not in repos or interval < repos[url][0]):
                repos[url] = (interval, key)
        return repos

    async def _poll_once(self) -> None:
        t = time.monotonic()
        due: list[tuple[str, Application, float]] = []
        for url, (interval, key) in self._poll_targets().items():
            obj = self.apps.get(key)
            if obj is None or self._repo_next_poll.get(url, 0) > t:
                continue
            try:
                due.append((url, Application.from_obj(obj), interval))
            except InvalidSpec:
                continue
        self._update_gauges()
        await asyncio.gather(*(self._poll_repo(url, a, iv) for url, a, iv in due))

    async def _poll_repo(self, url: str, app: Application, interval: float) -> None:
        self._repo_next_poll[url] = time.monotonic() + interval
        t0 = time.perf_counter()
        try:
            creds = await self.engine.credentials_for(app)
            self.engine.git.forget_refs(url)
            refs = await self.engine.git.ls_remote(url, creds)
        except (SourceError, KubeError) as e:
            metrics.GIT_ERRORS.labels("ls-remote", e.reason).inc()
            if url not in self._repo_failed:
                log.warning("polling %s failed: %s", _safe_url(url), e)
                # Reconcile its apps once, so their status says why (a SourceError
                # condition); they keep what is deployed. Recovery refreshes them again.
                self._repo_failed.add(url)
                self.refresh_repo(url, "poll")
            return
        finally:
            metrics.GIT_DURATION.labels("ls-remote").observe(time.perf_counter() - t0)
        before = self._repo_refs.get(url)
        self._repo_refs[url] = refs
        log.debug(
            "polled %s: %d refs (%s)",
            _safe_url(url),
            len(refs),
            "unchanged" if before == refs else "changed",
        )
        recovered = url in self._repo_failed
        self._repo_failed.discard(url)
        # First sight counts as a change: a commit may have landed between the startup
        # reconcile and this first poll.
        if before != refs or recovered:
            n = self.refresh_repo(url, "poll")
            log.info(
                "%s %s; refreshing %d app(s)",
                _safe_url(url),
                "is reachable again" if recovered else "moved",
                n,
            )

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
                delay = self.queue.backoff(key)
                log.warning(
                    "reconcile of %s/%s failed (%s); retrying in %.1fs",
                    key[0],
                    key[1],
                    e,
                    delay,
                    exc_info=not isinstance(e, TetherError),
                )
                self.queue.add(key, "retry", delay=delay)
            finally:
                metrics.RECONCILE_DURATION.labels(*key).observe(time.perf_counter() - t0)
                self.reconciles += 1
                self.queue.done(key)

    async def reconcile(self, key: AppKey, reasons: set[str]) -> None:
        obj = self.apps.get(key)
        if obj is None:
            return
        st = self.state.setdefault(key, AppState())
        try:
            app = Application.from_obj(obj)
        except InvalidSpec as e:
            await self._write_error_status(obj, e)
            return
        trigger = next((t for t in TRIGGER_ORDER if t in reasons), "resync")
        logx = _AppLog(app)
        if "refresh" in reasons:
            self.engine.git.forget_refs(app.source.repo_url)
        cmp = await self.engine.compare(app)
        if cmp.error is not None:
            logx.warning("comparison failed: %s", cmp.error)
        drifted = self._drift(app, cmp, st)
        if drifted:
            await self._report_drift(app, cmp, drifted)

        result: SyncResult | None = None
        sync_trigger = ""
        pol = app.sync_policy
        last = app.status.get("operationState") or {}
        new_revision = cmp.error is None and (
            last.get("revision") != cmp.revision
            or int(last.get("generation", -1)) != app.generation
            or last.get("phase") in ("Running", "Failed")
        )
        if pol.automated and cmp.error is None and cmp.sync_status == SyncStatus.OUT_OF_SYNC:
            if new_revision:
                # Failed attempts count per revision and spec: a new commit or spec change
                # starts afresh; the same one is retried up to syncPolicy.retry.limit times.
                attempts = st.attempts.get(_attempt_key(cmp.revision, app), 0)
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
            await self._close_interrupted(app)
        if sync_trigger:
            result = await self._sync(app, cmp, st, sync_trigger, drifted, logx)
            if result is not None and result.comparison is not None:
                cmp = result.comparison
        await self._finish(app, cmp, st, result, sync_trigger)

    def _drift(self, app: Application, cmp: Comparison, st: AppState) -> list[ResourceKey]:
        """Objects that differ from Git because the *cluster* changed (not a new commit)."""
        last = app.status.get("operationState") or {}
        if (
            cmp.error is not None
            or last.get("revision") != cmp.revision
            or (last.get("phase") != "Succeeded")
        ):
            return []  # not synced to this revision yet: a difference is not drift
        drift_states = (ResourceDiffStatus.OUT_OF_SYNC, ResourceDiffStatus.MISSING)
        out = [key for key, rs in cmp.resources.items() if rs.diff.status in drift_states]
        current = set(out)
        for k in list(st.drift_reported):
            if k not in current:
                del st.drift_reported[k]  # back in sync: a new drift will be reported again
        return out

    async def _report_drift(
        self, app: Application, cmp: Comparison, drifted: list[ResourceKey]
    ) -> None:
        st = self.state[(app.namespace, app.name)]
        fresh = []
        for key in drifted:
            live = cmp.live.get(key)
            rv = str(((live or {}).get("metadata") or {}).get("resourceVersion", "deleted"))
            if st.drift_reported.get(key) == rv:
                continue
            st.drift_reported[key] = rv
            fresh.append(key)
        if not fresh:
            return
        metrics.DRIFT.labels(app.namespace, app.name).inc(len(fresh))
        objects = []
        diffs = []
        managers = set()
        for key in fresh:
            rs = cmp.resources[key]
            live = cmp.live.get(key)
            change = last_foreign_change(live) if live else None
            if change:
                managers.add(change.manager)
            objects.append(
                {
                    **key.to_dict(),
                    "status": rs.diff.status.value,
                    "fields": rs.diff.changed_paths,
                    "manager": change.manager if change else "",
                    "operation": change.operation if change else ("Delete" if live is None else ""),
                    "changedAt": change.time if change else "",
                }
            )
            diffs.append(rs.diff.diff_text)
        who = ", ".join(sorted(managers)) or "unknown (object deleted or no field manager)"
        names = ", ".join(str(k) for k in fresh[:5]) + ("…" if len(fresh) > 5 else "")
        message = f"drift: {names} changed in the cluster by {who}"
        _AppLog(app).info("%s", message)
        await emit_event(
            self.kube, app.obj, "DriftDetected", message, warning=True, instance=self.opts.identity
        )
        diff_text = "".join(diffs)
        if self.audit:
            await self.audit.record(
                "drift",
                app,
                revision=cmp.revision,
                message=message,
                objects=objects,
                details={"diff": diff_text},
            )
        if self.notify:
            self.notify.send(
                "drift",
                app,
                message,
                revision=cmp.revision,
                diff=diff_text,
                field_manager=who,
                objects=objects,
            )

    async def _sync(
        self,
        app: Application,
        cmp: Comparison,
        st: AppState,
        trigger: str,
        drifted: list[ResourceKey],
        logx: _AppLog,
    ) -> SyncResult | None:
        skip: set[ResourceKey] = set()
        if trigger == "self-heal":
            skip = await self._fight_check(app, cmp, st, drifted)
            if set(drifted) <= skip:
                return None
        logx.info("syncing (%s) to %s", trigger, cmp.revision[:10])
        await emit_event(
            self.kube,
            app.obj,
            "SyncStarted",
            f"sync ({trigger}) to {cmp.revision[:10]} started",
            instance=self.opts.identity,
        )
        fresh = await self._mark_running(app, cmp.revision)
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
        akey = _attempt_key(cmp.revision, app)
        if res.ok:
            st.attempts.pop(akey, None)
        else:
            n = st.attempts.get(akey, 0) + 1
            st.attempts[akey] = n
            pol = app.sync_policy.retry
            if pol.limit < 0 or n <= pol.limit:
                delay = pol.delay(n)
                logx.warning(
                    "sync failed (attempt %d): %s; retrying in %.0fs", n, res.message, delay
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
                        "repoURL": app.source.repo_url,
                        "path": app.source.path,
                        "targetRevision": app.source.target_revision,
                    },
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
        return res

    async def _fight_check(
        self, app: Application, cmp: Comparison, st: AppState, drifted: list[ResourceKey]
    ) -> set[ResourceKey]:
        """Objects tether keeps correcting against another writer: stop, and say who."""
        t = time.monotonic()
        for key in drifted:
            q = st.corrections.get(key)
            if q is None:
                continue
            while q and t - q[0] > self.opts.fight_window:
                q.popleft()
            if len(q) >= self.opts.fight_limit and key not in st.fighting:
                live = cmp.live.get(key)
                change = last_foreign_change(live) if live else None
                st.fighting[key] = change
                who = change.manager if change else "another writer"
                message = (
                    f"{key}: corrected {len(q)} times in "
                    f"{self.opts.fight_window / 60:.0f} min; {who} keeps changing it. "
                    "Self-heal stopped for this object"
                )
                _AppLog(app).warning("%s", message)
                objects = [{**key.to_dict(), "manager": who}]
                await emit_event(
                    self.kube,
                    app.obj,
                    "SelfHealFighting",
                    message,
                    warning=True,
                    instance=self.opts.identity,
                )
                if self.audit:
                    await self.audit.record(
                        "fighting", app, revision=cmp.revision, message=message, objects=objects
                    )
                if self.notify:
                    self.notify.send(
                        "self-heal-fighting",
                        app,
                        message,
                        revision=cmp.revision,
                        field_manager=who,
                        objects=objects,
                    )
        return set(st.fighting)

    async def _close_interrupted(self, app: Application) -> None:
        op = dict(app.status.get("operationState") or {})
        op.update(
            phase="Succeeded",
            finishedAt=now(),
            message="completed: the cluster matches Git (finished before a restart)",
        )
        out = await self.kube.patch_status(app.obj, {"operationState": op})
        self._store_app(out)

    async def _mark_running(self, app: Application, revision: str) -> Application:
        """Records that a sync started, so a controller killed mid-sync resumes it."""
        op = dict(app.status.get("operationState") or {})
        op.update(
            phase="Running",
            revision=revision,
            startedAt=now(),
            generation=app.generation,
            message="sync in progress",
        )
        out = await self.kube.patch_status(app.obj, {"operationState": op})
        self._store_app(out)
        return Application.from_obj(out)

    async def _finish(
        self,
        app: Application,
        cmp: Comparison,
        st: AppState,
        result: SyncResult | None,
        trigger: str,
    ) -> None:
        if st.fighting:
            if cmp.error is None and any(
                k in cmp.resources and cmp.resources[k].diff.status == ResourceDiffStatus.SYNCED
                for k in st.fighting
            ):
                for k in [
                    k
                    for k in st.fighting
                    if cmp.resources.get(k) is None
                    or cmp.resources[k].diff.status == ResourceDiffStatus.SYNCED
                ]:
                    st.fighting.pop(k, None)
                    st.corrections.pop(k, None)
            for k, change in st.fighting.items():
                who = change.manager if change else "another writer"
                cmp.conditions.append(
                    Condition(
                        "SelfHealFighting",
                        f"{k}: self-heal stopped after repeated corrections; "
                        f"field manager {who} keeps changing it. Change it in Git, or stop {who}",
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
        out = await self.engine.write_status(
            latest, cmp, result, trigger=trigger, only_if_changed=True, operation_extra=extra
        )
        if out is not None:
            self._store_app(out)

    def _store_app(self, obj: Obj) -> None:
        key = _key(obj)
        old = self.apps.get(key)
        if old is None or _rv(obj) >= _rv(old):
            self.apps[key] = obj

    async def _write_error_status(self, obj: Obj, e: TetherError) -> None:
        st = {
            "conditions": [Condition("InvalidSpec", str(e)).to_dict(now())],
            "sync": {"status": "Unknown", "revision": ""},
        }
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


class _AppLog:
    """Logs with the app and revision on every line."""

    def __init__(self, app: Application) -> None:
        self.extra = {
            "app": f"{app.namespace}/{app.name}",
            "revision": str((app.status.get("sync") or {}).get("revision", ""))[:10],
        }

    def info(self, msg: str, *args: object) -> None:
        log.info(msg, *args, extra=self.extra)

    def warning(self, msg: str, *args: object) -> None:
        log.warning(msg, *args, extra=self.extra)


def _attempt_key(revision: str, app: Application) -> str:
    return f"{revision}@{app.generation}"


def _key(obj: Obj) -> AppKey:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def _rv(obj: Obj) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _safe_url(url: str) -> str:
    return strip_url_credentials(url)
