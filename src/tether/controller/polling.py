"""Git polling: one ls-remote per repository per interval, each repository on its own.

Every Git source of every app is followed (a chart in one repository, its values in
another): a repository is polled once however many apps or sources name it, and a change
refreshes every app that reads it. Apps with a chart from a Helm repository are refreshed
every interval, so a new chart version matching their ``targetRevision`` is picked up.

A repository that hangs or fails must not hold up the others: every due repository is
polled in a task of its own, and a repository is never polled twice at once. A failure is
reported once per cause: its apps are refreshed (so their status says why) when the cause
first appears or changes, and the log gets one line per cause per interval.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tether import metrics
from tether.api.application import Application, parse_duration
from tether.controller.queue import AppKey
from tether.controller.sources import git_urls, has_chart_source, repo_key
from tether.engine import Engine
from tether.errors import InvalidSpec, KubeError, SourceError, TetherError
from tether.lograte import RateLimitedLog
from tether.model import Obj
from tether.source import RepoCredentials, redact

log = logging.getLogger("tether.controller")

REFRESH_INTERVAL_ANNOTATION = "tether.dev/refresh-interval"
TICK = 0.5
"""Seconds between looks at which repositories are due."""
_TIMING = re.compile(r" after \d+ ms")
FAILURE_LOG_INTERVAL = 300.0
"""The same polling failure is logged at most once per this many seconds."""


_Memo = tuple[str, tuple[str, ...], tuple[str, ...], float, bool]
"""(the version it was read at, Git URLs, their repository keys, interval, has a chart
source)."""


@dataclass
class _Target:
    url: str
    interval: float
    key: AppKey


class RepoPoller:
    """Polls the repositories of ``apps`` and calls ``refresh(url)`` when one moved, failed
    with a new cause, or recovered."""

    def __init__(
        self,
        engine: Engine,
        apps: Mapping[AppKey, Obj],
        refresh: Callable[[str], int],
        default_interval: float,
        refresh_app: Callable[[AppKey], None] | None = None,
    ) -> None:
        self.engine = engine
        self.apps = apps
        self.refresh = refresh
        self.refresh_app = refresh_app
        """Queues one app: those with a Helm repository source, every interval."""
        self.default_interval = default_interval
        self.failures: dict[str, str] = {}
        """Repository URL → the cause of its current failure ("" once it recovers)."""
        self.heartbeat = time.monotonic()
        """When the loop last looked for due repositories (liveness)."""
        self._refs: dict[str, dict[str, str]] = {}
        self._next_poll: dict[str, float] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._memo: dict[AppKey, _Memo] = {}
        self._dirty: set[AppKey] = set(apps)
        self._targets: dict[str, _Target] | None = None
        self._charts: set[AppKey] = set()
        """Apps with a Helm repository source (refreshed every interval)."""
        self._chart_next: dict[AppKey, float] = {}
        self._log = RateLimitedLog(log, FAILURE_LOG_INTERVAL)

    def changed(self, key: AppKey) -> None:
        """The app ``key`` was added to ``apps``, changed there or removed: whoever changes
        ``apps`` says so, and each tick reads again only the apps that changed (a tick that
        walked every app cost milliseconds at thousands of apps, twice a second)."""
        self._dirty.add(key)

    def polled(self, url: str) -> bool:
        """``url`` has been polled once since start: a commit made from now on is new to
        the poller (the first poll takes every ref it sees as news)."""
        rk = repo_key(url) or url
        return rk in self._refs and rk not in self._running

    @property
    def in_flight(self) -> set[str]:
        """Repositories (normalized URLs) being polled now."""
        return set(self._running)

    def interval(self, obj: Obj) -> float:
        ann = (obj.get("metadata") or {}).get("annotations") or {}
        raw = ann.get(REFRESH_INTERVAL_ANNOTATION)
        if raw:
            try:
                return max(parse_duration(str(raw)), 1.0)
            except InvalidSpec:
                self._log.log(
                    logging.WARNING,
                    f"interval {raw!r}",
                    "ignoring invalid %s=%r",
                    REFRESH_INTERVAL_ANNOTATION,
                    raw,
                )
        return self.default_interval

    async def run(self, on_tick: Callable[[], None]) -> None:
        """Looks for due repositories every ``TICK`` seconds until cancelled."""
        try:
            while True:
                await asyncio.sleep(TICK)
                self.heartbeat = time.monotonic()
                try:
                    on_tick()
                    self.start_due()
                except Exception as e:  # a bug here must not end polling for everyone
                    self._log.log(
                        logging.ERROR,
                        f"poll loop {type(e).__name__}: {e}",
                        "git polling failed: %s: %s; continuing",
                        type(e).__name__,
                        e,
                    )
        finally:
            for t in self._running.values():
                t.cancel()
            if self._running:
                await asyncio.gather(*self._running.values(), return_exceptions=True)
            self._running.clear()

    def targets(self) -> dict[str, _Target]:
        """Repository (by ``normalize_url``) → its shortest app interval and one of its apps.

        Every Git source of every app counts: an app with a chart repository and a values
        repository has both polled, and a repository several apps share is polled once.
        Worked out again only when an app's repositories or interval changed (a new status
        changes neither).
        """
        if len(self._memo) != len(self.apps):  # a change not announced: read every app
            self._dirty.update(self.apps)
            self._dirty.update(self._memo)
        if self._dirty:
            dirty, self._dirty = self._dirty, set()
            for key in dirty:
                self._reread(key)
        if self._targets is None:
            repos: dict[str, _Target] = {}
            for key, (_, urls, keys, interval, _) in self._memo.items():
                for url, rk in zip(urls, keys, strict=True):
                    if rk not in repos or interval < repos[rk].interval:
                        repos[rk] = _Target(url, interval, key)
            self._targets = repos
        return self._targets

    def _reread(self, key: AppKey) -> None:
        """The memo of one app that changed, and whether the targets must be worked out."""
        old = self._memo.get(key)
        obj = self.apps.get(key)
        if obj is None:
            if old is not None:
                del self._memo[key]
                self._targets = None
            self._charts.discard(key)
            self._chart_next.pop(key, None)
            return
        new = self._memo_of(key, obj)
        if old is None or old[1:4] != new[1:4]:
            self._targets = None
        if new[4]:
            self._charts.add(key)
        else:
            self._charts.discard(key)
            self._chart_next.pop(key, None)

    def _memo_of(self, key: AppKey, obj: Obj) -> _Memo:
        """What polling needs of an app, read again only when the app changed: each tick
        asks it of every app, so it is one comparison per app (its resourceVersion)."""
        meta = obj.get("metadata") or {}
        version = str(meta.get("resourceVersion") or "")
        if not version:  # an app not read from the API server: its spec and annotations
            version = f"{meta.get('generation')}/{meta.get('annotations')}"
        memo = self._memo.get(key)
        if memo is None or memo[0] != version:
            urls = tuple(git_urls(obj))
            keys = tuple(repo_key(u) or u for u in urls)
            memo = (version, urls, keys, self.interval(obj), has_chart_source(obj))
            self._memo[key] = memo
        return memo

    def start_due(self) -> None:
        """Starts a poll of every due repository not being polled already, and refreshes
        the apps with a Helm repository source whose interval has passed."""
        t = time.monotonic()
        for rk, target in self.targets().items():
            if rk in self._running or self._next_poll.get(rk, 0) > t:
                continue
            obj = self.apps.get(target.key)
            if obj is None:
                continue
            try:
                app = Application.from_obj(obj)
            except InvalidSpec:
                continue  # its reconcile reports the spec error on the app
            self._next_poll[rk] = t + target.interval
            self._running[rk] = asyncio.create_task(
                self._poll(rk, target.url, app), name=f"poll {redact(target.url)}"
            )
        self._refresh_chart_apps(t)

    def _refresh_chart_apps(self, t: float) -> None:
        """A chart from a Helm repository has no ref to poll: its version (``1.2.*``) is
        resolved again by each reconcile, so such apps are simply queued every interval.
        The first interval starts now: the startup reconcile has just resolved it."""
        if self.refresh_app is None:
            return
        for key in list(self._charts):
            interval = self._memo[key][3]
            due = self._chart_next.setdefault(key, t + interval)
            if due <= t:
                self._chart_next[key] = t + interval
                self.refresh_app(key)

    async def _poll(self, rk: str, url: str, app: Application) -> None:
        try:
            await self._poll_once(rk, url, app)
        finally:
            self._running.pop(rk, None)

    async def _poll_once(self, rk: str, url: str, app: Application) -> None:
        t0 = time.perf_counter()
        try:
            creds = await credentials_for_url(self.engine, app, url)
            self.engine.git.forget_refs(url)
            refs = await self.engine.git.ls_remote(url, creds)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._failed(url, e)
            return
        finally:
            metrics.GIT_DURATION.labels("ls-remote").observe(time.perf_counter() - t0)
        before = self._refs.get(rk)
        self._refs[rk] = refs
        log.debug(
            "polled %s: %d refs (%s)",
            redact(url),
            len(refs),
            "unchanged" if before == refs else "changed",
        )
        recovered = bool(self.failures.pop(url, ""))
        # First sight counts as a change: a commit may have landed between the startup
        # reconcile and this first poll.
        if before != refs or recovered:
            n = self.refresh(url)
            log.info(
                "%s %s; refreshing %d app(s)",
                redact(url),
                "is reachable again" if recovered else "moved",
                n,
            )

    def _failed(self, url: str, e: Exception) -> None:
        reason = e.reason if isinstance(e, TetherError) else type(e).__name__
        if isinstance(e, SourceError | KubeError):
            metrics.GIT_ERRORS.labels("ls-remote", reason).inc()
        # curl words a refused connection "... after 3 ms: ...": the same cause every time.
        cause = _TIMING.sub("", f"{reason}: {e}")
        changed = self.failures.get(url) != cause
        self.failures[url] = cause
        # One line per failure class: a server going away answers "empty reply" to the poll
        # in flight and "connection refused" to the next, both RepositoryUnreachable.
        self._log.log(
            logging.WARNING, f"{url} {reason}", "polling %s failed: %s", redact(url), cause
        )
        if changed:
            # Reconcile its apps once per cause, so their status says the current why (they
            # read the failure the poll just cached, not Git again); they keep what is
            # deployed. Recovery refreshes them again.
            self.refresh(url)


async def credentials_for_url(engine: Engine, app: Application, url: str) -> RepoCredentials | None:
    """The Git credentials ``app``'s namespace holds for ``url`` (one of its sources, not
    necessarily the first)."""
    return await engine.credentials_for(app, url)
