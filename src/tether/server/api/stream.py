"""``GET /api/v1/stream/applications``: Application changes as server-sent events.

One list+watch of Applications per server (one per watched namespace, so a namespaced
install needs no cluster-wide grant), which also answers the list route. Its changes go to
every subscriber through a bounded queue of its own: a subscriber that does not keep up is
dropped (its stream ends; the client reconnects and gets a fresh snapshot), and never slows
the others. The watch starts with the first list or stream and runs until the server stops,
which ends every stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from tether.api.application import API_VERSION, KIND
from tether.backoff import Backoff
from tether.errors import KubeError
from tether.kube import Gone
from tether.model import Obj
from tether.server.access import Caller
from tether.server.api.context import ApiContext

log = logging.getLogger(__name__)
QUEUE_SIZE = 1024
"""Changes a subscriber may fall behind by before it is dropped."""
WATCH_BACKOFF = Backoff(base=1.0, cap=30.0, jitter=0.2)
ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
Change = tuple[str, Obj]


@dataclass(eq=False)
class Subscriber:
    """One open stream: its queue, and why it ended (``ended`` set: dropped or closed)."""

    queue: asyncio.Queue[Change]
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""

    def end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.reason = reason
            self.ended.set()

    async def next(self, timeout: float) -> Change | None:
        """The next change, or None after ``timeout`` seconds without one; raises
        ``StreamEnded`` once the subscriber was dropped or the server stops."""
        if self.ended.is_set():
            raise StreamEnded(self.reason)
        if not self.queue.empty():
            return self.queue.get_nowait()
        get = asyncio.ensure_future(self.queue.get())
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            done, _ = await asyncio.wait(
                {get, ended}, timeout=timeout, return_when="FIRST_COMPLETED"
            )
        finally:
            for f in (get, ended):
                if not f.done():
                    f.cancel()
        if get in done:
            return get.result()
        if ended in done:
            raise StreamEnded(self.reason)
        return None


class StreamEnded(Exception):
    pass


class AppStream:
    """The Applications the server watches, kept by one list+watch per namespace, and the
    subscribers their changes go to."""

    def __init__(self, ctx: ApiContext, queue_size: int = QUEUE_SIZE) -> None:
        self.ctx = ctx
        self.queue_size = queue_size
        self.apps: dict[tuple[str, str], Obj] = {}
        self.subscribers: set[Subscriber] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._listed: dict[str, asyncio.Event] = {}
        self._current: dict[str, bool] = {}
        """Per namespace: listed, and watched without an error since."""
        self._closed = False

    async def subscribe(self) -> tuple[Subscriber, list[Obj]]:
        """A new subscriber and the Applications as they are now (its ADDED events);
        starts the watch on first use."""
        if self._closed:
            raise StreamEnded("the server is stopping")
        await self._started()
        sub = Subscriber(asyncio.Queue(self.queue_size))
        self.subscribers.add(sub)
        return sub, list(self.apps.values())

    async def current_apps(self) -> list[Obj] | None:
        """Every Application watched, as the watch has them now; None while the watch of
        some namespace is failing (then ask the API server instead). Starts the watch: the
        list route answers from it, as Argo CD's server answers from its informer cache."""
        if self._closed:
            return None
        await self._started()
        if not all(self._current.get(ns) for ns in self._listed):
            return None
        return list(self.apps.values())

    async def _started(self) -> None:
        if not self._tasks:
            for ns in self.ctx.watched():
                self._listed[ns] = asyncio.Event()
                self._tasks.append(asyncio.create_task(self._watch(ns), name=f"api stream {ns}"))
        await asyncio.gather(*(e.wait() for e in self._listed.values()))

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    async def close(self) -> None:
        """Ends every stream and the watch (the server is stopping)."""
        self._closed = True
        for sub in list(self.subscribers):
            sub.end("the server is stopping")
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def publish(self, kind: str, obj: Obj) -> None:
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait((kind, obj))
            except asyncio.QueueFull:
                log.warning("an event stream fell %d changes behind: dropped", self.queue_size)
                sub.end("the client fell behind; reconnect")
                self.subscribers.discard(sub)

    async def _watch(self, namespace: str) -> None:
        attempt = 0
        while True:
            try:
                rv = await self._relist(namespace)
                self._current[namespace] = True
                self._listed[namespace].set()
                async for ev in self.ctx.kube.watch(
                    API_VERSION, KIND, namespace=namespace, resource_version=rv
                ):
                    attempt = 0
                    self.apply_change(ev.type, ev.object)
            except Gone:
                continue
            except KubeError as e:
                attempt += 1
                log.warning("watch of Applications for the event stream failed: %s", e)
                self._current[namespace] = False
                self._listed[namespace].set()  # serve what is known rather than hang
                await asyncio.sleep(WATCH_BACKOFF.delay(attempt))

    async def _relist(self, namespace: str) -> str:
        items, rv = await self.ctx.kube.list(API_VERSION, KIND, namespace)
        seen = {_key(o): o for o in items}
        for key, old in list(self.apps.items()):
            if (not namespace or key[0] == namespace) and key not in seen:
                self.apply_change(DELETED, old)
        for o in items:
            self.apply_change(ADDED, o)
        return rv

    def apply_change(self, kind: str, obj: Obj) -> None:
        """One change as the watch saw it: kept, and sent to subscribers if it is one."""
        if kind not in (ADDED, MODIFIED, DELETED):
            return  # BOOKMARK
        key = _key(obj)
        old = self.apps.get(key)
        if kind == DELETED:
            if self.apps.pop(key, None) is not None:
                self.publish(DELETED, obj)
            return
        if old is not None and _rv(old) == _rv(obj):
            return
        self.apps[key] = obj
        self.publish(MODIFIED if old is not None else ADDED, obj)


STREAM: web.AppKey[AppStream] = web.AppKey("tether.api.stream", AppStream)
"""The server's one ``AppStream``."""


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def event_text(kind: str, document: bytes) -> bytes:
    """One SSE frame: ``document`` is the app's JSON (``DocumentCache.json``)."""
    return b'event: application\ndata: {"type":"%s","application":%s}\n\n' % (
        kind.encode(),
        document,
    )


Visible = Callable[[Caller, str, str], Awaitable[bool]]
StillValid = Callable[[], Awaitable[bool]]


async def serve_stream(
    request: web.Request,
    stream: AppStream,
    caller: Caller,
    visible: Visible,
    still_valid: StillValid,
) -> web.StreamResponse:
    """Writes the snapshot (ADDED) and then every change of an app the caller may get,
    with a keepalive comment every ``ctx.keepalive`` seconds; ends when the caller's
    credentials stop being valid, when it falls behind, or when the server stops."""
    namespace = request.query.get("namespace", "")
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    sub, snapshot = await stream.subscribe()
    try:
        await resp.prepare(request)

        async def send(kind: str, obj: Obj) -> None:
            ns, name = _key(obj)
            if namespace and ns != namespace:
                return
            if await visible(caller, ns, name):
                await resp.write(event_text(kind, stream.ctx.documents.json(obj)))

        for obj in sorted(snapshot, key=_key):
            await send(ADDED, obj)
        await resp.write(b": ready\n\n")
        while True:
            change = await sub.next(stream.ctx.keepalive)
            if change is None:
                if not await still_valid():
                    await resp.write(b'event: end\ndata: {"reason": "session ended"}\n\n')
                    break
                await resp.write(b": keepalive\n\n")
                continue
            await send(*change)
    except (StreamEnded, ConnectionResetError):
        pass  # dropped, or the browser went away mid-write (aiohttp's reset is a subclass)
    finally:
        stream.unsubscribe(sub)
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp
