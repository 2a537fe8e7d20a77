"""Git polling: one ls-remote per repository per interval, each repository on its own.

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
from tether.engine import Engine
from tether.errors import InvalidSpec, KubeError, SourceError, TetherError
from tether.lograte import RateLimitedLog
from tether.model import Obj
from tether.source import redact

log = logging.getLogger("tether.controller")

REFRESH_INTERVAL_ANNOTATION = "tether.dev/refresh-interval"
TICK = 0.5
"""Seconds between looks at which repositories are due."""
_TIMING = re.compile(r" after \d+ ms")
FAILURE_LOG_INTERVAL = 300.0
"""The same polling failure is logged at most once per this many seconds."""


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
    ) -> None:
        self.engine = engine
        self.apps = apps
        self.refresh = refresh
        self.default_interval = default_interval
        self.failures: dict[str, str] = {}
        """Repository URL → the cause of its current failure ("" once it recovers)."""
        self.heartbeat = time.monotonic()
        """When the loop last looked for due repositories (liveness)."""
        self._refs: dict[str, dict[str, str]] = {}
        self._next_poll: dict[str, float] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._memo: dict[AppKey, tuple[tuple[str, str], str, float]] = {}
        self._log = RateLimitedLog(log, FAILURE_LOG_INTERVAL)

    @property
    def in_flight(self) -> set[str]:
        """Repository URLs being polled now."""
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
        """Repository URL → its shortest app interval and one of its apps."""
        repos: dict[str, _Target] = {}
        for key, obj in list(self.apps.items()):
            meta = obj.get("metadata") or {}
            memo_key = (str(meta.get("generation")), str(meta.get("annotations")))
            memo = self._memo.get(key)
            if memo is None or memo[0] != memo_key:
                src = (obj.get("spec") or {}).get("source") or {}
                memo = (memo_key, str(src.get("repoURL", "")), self.interval(obj))
                self._memo[key] = memo
            _, url, interval = memo
            if url and (url not in repos or interval < repos[url].interval):
                repos[url] = _Target(url, interval, key)
        for key in [k for k in self._memo if k not in self.apps]:
            del self._memo[key]
        return repos

    def start_due(self) -> None:
        """Starts a poll of every due repository not being polled already."""
        t = time.monotonic()
        for url, target in self.targets().items():
            if url in self._running or self._next_poll.get(url, 0) > t:
                continue
            obj = self.apps.get(target.key)
            if obj is None:
                continue
            try:
                app = Application.from_obj(obj)
            except InvalidSpec:
                continue  # its reconcile reports the spec error on the app
            self._next_poll[url] = t + target.interval
            self._running[url] = asyncio.create_task(
                self._poll(url, app), name=f"poll {redact(url)}"
            )

    async def _poll(self, url: str, app: Application) -> None:
        try:
            await self._poll_once(url, app)
        finally:
            self._running.pop(url, None)

    async def _poll_once(self, url: str, app: Application) -> None:
        t0 = time.perf_counter()
        try:
            creds = await self.engine.credentials_for(app)
            self.engine.git.forget_refs(url)
            refs = await self.engine.git.ls_remote(url, creds)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._failed(url, e)
            return
        finally:
            metrics.GIT_DURATION.labels("ls-remote").observe(time.perf_counter() - t0)
        before = self._refs.get(url)
        self._refs[url] = refs
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
        self._log.log(
            logging.WARNING, f"{url} {cause}", "polling %s failed: %s", redact(url), cause
        )
        if changed:
            # Reconcile its apps once per cause, so their status says the current why (they
            # read the failure the poll just cached, not Git again); they keep what is
            # deployed. Recovery refreshes them again.
            self.refresh(url)
