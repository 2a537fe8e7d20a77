"""The one-shot client: a small synchronous client of the Kubernetes API for commands that send
a handful of requests (``tether app list``, ``app get``), on the standard library's
``http.client`` and ``ssl``: one TLS connection, kept alive between requests, ``orjson``
bodies, no event loop and no HTTP library to import.

It reads the same configuration as the async client (``tether.kube.config``: every kubeconfig
auth kind, exec plugins, in-cluster), sends the same credentials (``tether.kube.auth``,
renewed once after a 401), retries what the async client retries and fails with the same
error values and wording (``tether.kube.answers``).
"""

from __future__ import annotations

import http.client
import ssl
import time
import urllib.parse
from collections import Counter
from typing import TYPE_CHECKING, Any

import orjson

from tether.errors import KubeError
from tether.keepalive import KeptAlive
from tether.kube.answers import (
    DEFAULT_TIMEOUT,
    USER_AGENT,
    retry_wait,
    timed_out,
    unreachable,
    unserved,
)
from tether.kube.auth import Credential
from tether.kube.config import KubeConfig, load_config
from tether.kube.resources import ApiResource, discovery_path, read_discovery, split_api_version

if TYPE_CHECKING:
    from tether.model import Obj


class _TLSConnection(http.client.HTTPSConnection):
    """An HTTPS connection that checks the certificate against ``server_name`` (kubeconfig
    ``tls-server-name``) rather than the host it dials, when one is given."""

    def __init__(self, host: str, port: int | None, *, server_name: str | None, **kw: Any):
        super().__init__(host, port, **kw)
        self.server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        name = self.server_name or getattr(self, "_tunnel_host", None) or self.host
        self.sock = self._context.wrap_socket(self.sock, server_hostname=name)  # type: ignore[attr-defined]


class Link(KeptAlive):
    """One kept-alive HTTP(S) connection to the API server of ``config`` (TLS and proxy as the
    kubeconfig says), opened on first use and again after the server closed it."""

    def __init__(self, config: KubeConfig, timeout: float) -> None:
        super().__init__()
        self.config = config
        self.timeout = timeout
        self.cert: tuple[str, str] | None = None
        """The client certificate to present (from an exec plugin); set it, then ``close``."""
        self._prefix = urllib.parse.urlsplit(config.server).path.rstrip("/")
        """The server URL's own path (``https://host/k8s/clusters/c-1``: a proxy in front of
        the API server), put before every request's."""

    def _open(self, timeout: float) -> http.client.HTTPConnection:
        target = urllib.parse.urlsplit(self.config.server)
        host, port = target.hostname or "", target.port
        dial_host, dial_port = host, port
        proxy = self.config.proxy
        if proxy:
            via = urllib.parse.urlsplit(proxy)
            if via.scheme != "http":
                raise KubeError(
                    f"the proxy {proxy} for {self.config.server} is not an http:// proxy",
                    hint="use an http:// proxy (HTTPS_PROXY, or proxy-url in the kubeconfig)",
                )
            dial_host, dial_port = via.hostname or "", via.port or 80
        conn: http.client.HTTPConnection
        if target.scheme == "https":
            context = self.config.tls(self.cert)
            conn = _TLSConnection(
                dial_host,
                dial_port,
                server_name=self.config.tls_server_name,
                context=context or ssl.create_default_context(),
                timeout=timeout,
            )
        else:
            conn = http.client.HTTPConnection(dial_host, dial_port, timeout=timeout)
        if proxy:
            conn.set_tunnel(host, port)
        return conn

    def send(
        self,
        method: str,
        url: str,
        path: str,
        data: bytes | None,
        headers: dict[str, str],
        timeout: float | None = None,
    ) -> tuple[int, bytes, str | None]:
        """One attempt of ``url`` (the API path and query, under the server URL's path):
        (status, body, its Retry-After header). Raises KubeError when no answer came
        (``path`` names the request in it); ``timeout``: seconds each read of the socket may
        wait (the link's own by default)."""
        wait = self.timeout if timeout is None else timeout
        try:
            return self.exchange(method, self._prefix + url, data, headers, wait)
        except TimeoutError as e:
            raise timed_out(method, path, wait) from e
        except (OSError, http.client.HTTPException) as e:
            raise unreachable(self.config.server, e) from e


class OneShot:
    """A synchronous client for one cluster. ``OneShot.connect(kubeconfig, context)``, or
    ``OneShot(config)``; close it (or use ``with``) to close its connection."""

    def __init__(self, config: KubeConfig, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.config = config
        self.timeout = timeout
        self._link = Link(config, timeout)
        self._credential: Credential | None = None
        self._headers: dict[str, str] = {}
        self._resources: dict[tuple[str, str], ApiResource] = {}
        self._by_gv: dict[str, list[ApiResource]] = {}
        self.requests: Counter[tuple[str, int]] = Counter()
        """Requests made, by (verb, status code; 0: no answer), as the async client counts."""

    @classmethod
    def connect(cls, kubeconfig: str | None = None, context: str | None = None) -> OneShot:
        """A client for the kubeconfig's context (``$KUBECONFIG``'s files merged, or
        ``~/.kube/config``), or, in a Pod given no kubeconfig, its service account."""
        return cls(load_config(kubeconfig, context))

    def __enter__(self) -> OneShot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._link.close()

    @property
    def server(self) -> str:
        return self.config.server

    # ---- credentials --------------------------------------------------------------------
    def _current(self) -> Credential:
        """The credential to send; rebuilds the headers (and the connection, for a new client
        certificate) only when it changed."""
        cred = self.config.auth.current()
        if cred is not self._credential:
            self._credential = cred
            self._headers = {
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
                **cred.headers(),
            }
            if cred.cert is not None and cred.cert != self._link.cert:
                self._link.cert = cred.cert  # from an exec plugin: a new connection presents it
                self.close()
        return cred

    # ---- raw requests -------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        ok_missing: bool = False,
    ) -> Any:
        """One API call; returns the decoded JSON body, None for a 404 when ``ok_missing``.
        Raises KubeError on failure. 429 and 5xx are retried as the async client retries
        them; a 401 renews the credential (an exec plugin runs again) and is sent once more."""
        url = path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = orjson.dumps(body) if body is not None else None
        preconditions = isinstance(body, dict) and bool(body.get("preconditions"))
        renewed = False
        attempt = 1
        while True:
            cred = self._current()
            status, raw, asked = self._send(method, url, path, data, content_type)
            if status == 404 and ok_missing:
                return None
            if status < 300:
                return orjson.loads(raw) if raw else None
            if status == 401 and not renewed:
                renewed = True
                if self.config.auth.renew_now(cred):
                    continue
            from tether.backoff import retry_after

            wait = retry_wait(
                method,
                path,
                status,
                raw,
                preconditions=preconditions,
                attempt=attempt,
                asked=retry_after(asked) if asked else None,
            )
            attempt += 1
            time.sleep(wait)

    def _send(
        self, method: str, url: str, path: str, data: bytes | None, content_type: str
    ) -> tuple[int, bytes, str | None]:
        """One attempt: (status, body, its Retry-After header)."""
        headers = self._headers
        if data is not None:
            headers = {**headers, "Content-Type": content_type}
        try:
            status, raw, asked = self._link.send(method, url, path, data, headers)
        except KubeError:
            self.requests[(method, 0)] += 1
            raise
        self.requests[(method, status)] += 1
        return status, raw, asked

    # ---- discovery and reads ------------------------------------------------------------
    def resource_for(self, api_version: str, kind: str) -> ApiResource:
        """Discovery of ``api_version`` (one request, remembered)."""
        res = self._resources.get((api_version, kind))
        if res is None:
            self._discover(api_version)
            res = self._resources.get((api_version, kind))
        if res is None:
            raise unserved(api_version, kind, self._served_elsewhere(api_version, kind))
        return res

    def _discover(self, api_version: str) -> list[ApiResource]:
        found = read_discovery(
            api_version, self.request("GET", discovery_path(api_version), ok_missing=True)
        )
        self._by_gv[api_version] = found
        for res in found:
            self._resources[(api_version, res.kind)] = res
        return found

    def _served_elsewhere(self, api_version: str, kind: str) -> list[str]:
        """The other versions of ``api_version``'s group that serve ``kind``."""
        group, _ = split_api_version(api_version)
        try:
            if group:
                body = self.request("GET", f"/apis/{group}", ok_missing=True) or {}
                versions = [str(v.get("groupVersion")) for v in body.get("versions", [])]
            else:
                versions = ["v1"]
            return [
                gv
                for gv in versions
                if gv != api_version
                and any(r.kind == kind for r in self._by_gv.get(gv) or self._discover(gv))
            ]
        except KubeError:
            return []

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> Obj | None:
        """One object, or None when there is none of that name."""
        res = self.resource_for(api_version, kind)
        out: Obj | None = self.request("GET", res.path(namespace, name), ok_missing=True)
        return out

    def list(
        self, api_version: str, kind: str, namespace: str = "", label_selector: str = ""
    ) -> tuple[list[Obj], str]:
        """(items with apiVersion/kind filled in, the list's resourceVersion)."""
        res = self.resource_for(api_version, kind)
        query = {"labelSelector": label_selector} if label_selector else None
        body = self.request("GET", res.path(namespace), query=query)
        items: list[Obj] = body.get("items", [])
        for it in items:
            it.setdefault("apiVersion", res.api_version)
            it.setdefault("kind", res.kind)
        return items, str(body.get("metadata", {}).get("resourceVersion", ""))
