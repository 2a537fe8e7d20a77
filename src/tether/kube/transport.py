"""One pooled HTTP session to a Kubernetes API server: TLS, credentials, headers, retries.

Headers are built once per credential and rebuilt only when it changes (a rotated token file,
an exec plugin's new token); after a 401 the credential is renewed and the request sent once
more. Bodies are encoded and decoded with ``orjson``; objects stay plain dicts.

aiohttp is imported when the first session is made, not with this module: a command whose
requests go through ``tether.kube.threaded`` never loads it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections import Counter
from typing import TYPE_CHECKING, Any

import orjson

from tether.backoff import retry_after
from tether.errors import KubeError
from tether.kube.answers import (
    DEFAULT_TIMEOUT,
    RETRY_ATTEMPTS,
    USER_AGENT,
    retry_wait,
    timed_out,
    unreachable,
)
from tether.kube.auth import Credential
from tether.kube.config import KubeConfig

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)


class Transport:
    """Requests to one API server through one pooled session (made on first use)."""

    def __init__(self, config: KubeConfig, *, pool_size: int = 64) -> None:
        self.config = config
        self._host = config.server
        self._pool_size = pool_size
        self._http: aiohttp.ClientSession | None = None
        self._retired: list[aiohttp.ClientSession] = []
        self._credential: Credential | None = None
        self._cert: tuple[str, str] | None = None
        self._headers_by_type: dict[str | None, dict[str, str]] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._request_options: dict[str, Any] = {}
        if config.tls_server_name:
            self._request_options["server_hostname"] = config.tls_server_name
        if config.proxy:
            self._request_options["proxy"] = config.proxy
        self.requests: Counter[tuple[str, int]] = Counter()
        """Requests made, by (verb, status code): what benchmarks and metrics read."""
        self.retries: Counter[tuple[str, int]] = Counter()
        """Requests repeated after an answer of 429 or 5xx, by (verb, status code)."""

    async def close(self) -> None:
        for session in [*self._retired, *([self._http] if self._http else [])]:
            await session.close()
        self._retired.clear()
        self._http = None

    @property
    def server(self) -> str:
        return self._host

    # ---- connection and credentials -----------------------------------------------------
    def _session(self) -> aiohttp.ClientSession:
        """The pooled session, made on first use (in the loop that uses it)."""
        if self._http is None:
            import aiohttp

            tls = self.config.tls(self._cert)
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, ssl=tls if tls is not None else True
            )
            self._http = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": USER_AGENT}
            )
        return self._http

    async def _current(self) -> Credential:
        """The credential to send; rebuilds the headers (and TLS) only when it changed."""
        cred = await self.config.auth.credential()
        if cred is not self._credential:
            self._credential = cred
            self._headers_by_type = {}
            if cred.cert != self._cert and cred.cert is not None:
                # A new client certificate (from an exec plugin): a new session presents it.
                # The last one is kept open for requests still in flight on it; the one
                # before, a whole rotation old, is closed.
                self._cert = cred.cert
                if self._http is not None:
                    for old in self._retired:
                        await old.close()
                    self._retired = [self._http]
                    self._http = None
        return cred

    def _headers_for(self, content_type: str | None) -> dict[str, str]:
        headers = self._headers_by_type.get(content_type)
        if headers is None:
            headers = {"Accept": "application/json"}
            if content_type:
                headers["Content-Type"] = content_type
            if self._credential is not None:
                headers.update(self._credential.headers())
            self._headers_by_type[content_type] = headers
        return headers

    async def bearer_token(self) -> str | None:
        """The bearer token this client sends (kubeconfig token, exec plugin, in-cluster
        account), or None when it authenticates otherwise (a client certificate): what a
        service that checks callers with a TokenReview, such as tether's audit API, needs."""
        return (await self._current()).token or None

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            import aiohttp

            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return timeout

    # ---- raw requests -------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = DEFAULT_TIMEOUT,
        ok_missing: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One API call; returns the decoded JSON body. Raises KubeError on failure.
        ``headers`` are sent as well and win over the client's own (``Accept``...).

        An answer of 429 or 5xx is retried when repeating the request is safe (see
        :func:`~tether.kube.answers.may_retry`), waiting as long as ``Retry-After`` asks or else by
        :data:`RETRY_BACKOFF`, at most :data:`RETRY_ATTEMPTS` attempts in all. An answer of
        401 renews the credential (an exec plugin runs again) and is sent once more.
        """
        url = self._host + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = encode(body) if body is not None else None
        preconditions = isinstance(body, dict) and bool(body.get("preconditions"))
        renewed = False
        attempt = 1
        while True:
            cred = await self._current()
            status, raw, asked = await self._send(
                method, url, path, data, content_type, timeout, headers
            )
            if status == 404 and ok_missing:
                return None
            if status < 300:
                return orjson.loads(raw) if raw else None
            if status == 401 and not renewed:
                renewed = True
                if await self.config.auth.renew(cred):
                    continue
            wait = retry_wait(
                method, path, status, raw, preconditions=preconditions, attempt=attempt, asked=asked
            )
            attempt += 1
            self.retries[(method, status)] += 1
            log.info(
                "%s %s answered %d; retrying in %.1fs%s (attempt %d of %d)",
                method,
                path,
                status,
                wait,
                " as Retry-After asks" if asked is not None else "",
                attempt,
                RETRY_ATTEMPTS,
            )
            await asyncio.sleep(wait)

    async def _send(
        self,
        method: str,
        url: str,
        path: str,
        data: bytes | None,
        content_type: str,
        timeout: float,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, float | None]:
        """One attempt, counted: (status, body, seconds Retry-After asks for or None)."""
        headers = self._headers_for(content_type if data is not None else None)
        if extra_headers:
            headers = {**headers, **extra_headers}
        try:
            status, raw, asked = await self._exchange(method, url, path, data, headers, timeout)
        except KubeError:
            self.requests[(method, 0)] += 1
            raise
        self.requests[(method, status)] += 1
        return status, raw, asked

    async def _exchange(
        self,
        method: str,
        url: str,
        path: str,
        data: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> tuple[int, bytes, float | None]:
        """One request through the pooled session: (status, body, Retry-After's seconds);
        KubeError when no answer came."""
        import aiohttp

        try:
            async with self._session().request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=self._timeout(timeout),
                **self._request_options,
            ) as resp:
                raw = await resp.read()
                status = resp.status
                asked = retry_after(resp.headers.get("Retry-After")) if status >= 400 else None
        except (aiohttp.ClientError, OSError) as e:
            raise unreachable(self._host, e) from e
        except TimeoutError as e:
            raise timed_out(method, path, timeout) from e
        return status, raw, asked

    @property
    def write_requests(self) -> int:
        return sum(n for (verb, _), n in self.requests.items() if verb != "GET")

    async def stream(self, url: str, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        """Opens a streaming GET (a watch); a 401 renews the credential and opens it once more.
        The caller reads and releases the response."""
        cred = await self._current()
        resp = await self._get(url, timeout)
        if resp.status == 401 and await self.config.auth.renew(cred):
            resp.release()
            await self._current()
            resp = await self._get(url, timeout)
        return resp

    async def _get(self, url: str, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        return await self._session().get(
            url, headers=self._headers_for(None), timeout=timeout, **self._request_options
        )


def encode(body: Any) -> bytes:
    """A request body as JSON: orjson, or the standard library for what orjson refuses
    (an integer past 64 bits)."""
    try:
        return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(body).encode()
