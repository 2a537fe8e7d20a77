"""The async client for commands: ``KubeClient`` with its requests sent by the one-shot
client's connections (``http.client``) in worker threads, one kept-alive connection per
thread, instead of an aiohttp session.

A command (``tether app diff``, ``app sync``...) sends tens of requests, not thousands, and
importing aiohttp costs more than they all do (about 0.15 s, most of it building TLS contexts
at import). Everything above the sending is ``KubeClient``'s own: discovery, the verbs,
credentials and their renewal after a 401, the retries of 429 and 5xx, the error values.
A watch still streams through aiohttp, imported then.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from tether.backoff import retry_after
from tether.kube.answers import DEFAULT_TIMEOUT
from tether.kube.client import KubeClient
from tether.kube.config import KubeConfig, load_config
from tether.kube.oneshot import Link

THREADS = 8
"""Requests in flight at once (one connection each)."""


class ThreadedKubeClient(KubeClient):
    """A ``KubeClient`` whose requests go through ``THREADS`` worker threads."""

    def __init__(self, config: KubeConfig, *, threads: int = THREADS) -> None:
        super().__init__(config, pool_size=threads)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube")
        self._links: list[Link] = []
        self._local = threading.local()
        self._links_lock = threading.Lock()

    @classmethod
    async def connect(
        cls, kubeconfig: str | None = None, context: str | None = None, *, pool_size: int = THREADS
    ) -> ThreadedKubeClient:
        """A client for the kubeconfig's context, as ``KubeClient.connect``."""
        return cls(load_config(kubeconfig, context), threads=pool_size)

    async def close(self) -> None:
        await super().close()  # a watch's session, if one was opened
        # Not waiting: a request still in flight (a command interrupted) fails as its
        # connection closes below, rather than holding the command's exit.
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._links_lock:
            for link in self._links:
                link.close()
            self._links.clear()

    def _link(self) -> Link:
        """This worker thread's connection."""
        link: Link | None = getattr(self._local, "link", None)
        if link is None:
            link = Link(self.config, DEFAULT_TIMEOUT)
            link.cert = self._cert
            self._local.link = link
            with self._links_lock:
                self._links.append(link)
        elif link.cert != self._cert:
            # A new client certificate (from an exec plugin): a new connection presents it.
            link.close()
            link.cert = self._cert
        return link

    async def _exchange(
        self,
        method: str,
        url: str,
        path: str,
        data: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> tuple[int, bytes, float | None]:
        """One request on a worker thread's connection."""
        target = url.removeprefix(self._host)  # the link puts the server URL's path first
        status, raw, asked = await asyncio.get_running_loop().run_in_executor(
            self._pool, lambda: self._link().send(method, target, path, data, headers, timeout)
        )
        return status, raw, retry_after(asked) if asked else None
