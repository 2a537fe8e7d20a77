"""Speaking HTTP to tether's ``/api/v1``: the connection (TLS options, bearer token), JSON in
and out, and every failure as a ``TetherError`` a person can act on. A refusal carries the
server's own message and hint; 409 ``OperationInProgress`` is ``OperationInProgress``, as the
direct path raises it; the token and the URL's credentials never appear in a message.

A command sends a handful of requests, one after another: they go over one kept-alive
connection of the standard library's ``http.client`` rather than through an HTTP library whose
import alone costs more than they do. ``call_now`` sends one without an event loop (a read:
``tether --server app list|get|diff`` never imports asyncio); ``call`` sends it from a worker
thread, for a command that waits on an event loop."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

from tether.errors import TetherError
from tether.keepalive import KeptAlive

TIMEOUT = 60.0
"""Seconds one request may take: every route but rollback answers at once (a sync is only
recorded)."""

_TOKEN_HINT = (
    "pass a token the cluster trusts with --token or $TETHER_TOKEN (a ServiceAccount token, "
    "an OIDC id token), or use a kubeconfig whose user has a bearer token"
)


@dataclass(frozen=True)
class ServerOptions:
    """``--server``, ``--token``, ``--insecure-skip-tls-verify`` and
    ``--certificate-authority``."""

    url: str
    token: str | None = None
    """None: the kubeconfig user's bearer token, if it has one."""
    insecure: bool = False
    ca_file: str | None = None

    @property
    def shown(self) -> str:
        """The URL as messages print it: without credentials."""
        from tether.source.credentials import redact  # for a message only

        return redact(self.url.rstrip("/"))

    @property
    def where(self) -> str:
        """``the tether server at URL``, for a message."""
        return f"the tether server at {self.shown}"


class ApiRefused(TetherError):
    """The server answered with an error: ``status`` and ``reason`` are its own."""

    def __init__(self, message: str, *, status: int, reason: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.reason = reason


class ApiClient:
    """One connection to the server; ``with ApiClient(...) as api`` (``call_now``), or
    ``async with`` (``call``)."""

    def __init__(self, options: ServerOptions, *, timeout: float = TIMEOUT) -> None:
        self.options = options
        self._base = _checked_url(options)
        self._timeout = timeout
        self._target = urllib.parse.urlsplit(self._base)
        self._conn: _Connection | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> ApiClient:
        host, port = self._target.hostname or "", self._target.port
        tls = self._ssl() if self._target.scheme == "https" else None
        self._conn = _Connection(host, port, tls)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def __aenter__(self) -> ApiClient:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()

    def _ssl(self) -> ssl.SSLContext:
        if self.options.insecure:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if self.options.ca_file:
            try:
                return ssl.create_default_context(cafile=self.options.ca_file)
            except (OSError, ssl.SSLError) as e:
                raise TetherError(
                    f"cannot read the certificate authority {self.options.ca_file}: {e}",
                    hint="--certificate-authority takes a PEM file of the CA that signed "
                    "the server's certificate",
                ) from e
        return ssl.create_default_context()

    def _headers(self, body: bytes | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.options.token:
            headers["Authorization"] = f"Bearer {self.options.token}"
        elif self._target.username is not None:
            user = urllib.parse.unquote(self._target.username)
            password = urllib.parse.unquote(self._target.password or "")
            basic = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        return headers

    def _exchange(
        self, conn: _Connection, method: str, url: str, body: bytes | None, seconds: float
    ) -> tuple[int, bytes]:
        """One request on the kept-alive connection; one at a time."""
        with self._lock:
            status, raw, _ = conn.exchange(method, url, body, self._headers(body), seconds)
        return status, raw

    async def call(self, method: str, path: str, **options: Any) -> Any:
        """``call_now`` (its keyword ``options``) from a worker thread: the event loop goes
        on meanwhile."""
        import asyncio
        import functools

        return await asyncio.to_thread(functools.partial(self.call_now, method, path, **options))

    def call_now(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """The JSON body of ``method path``; raises ApiRefused (or OperationInProgress) on an
        error answer and TetherError when the server cannot be reached. ``timeout``: seconds
        for this request when it may take longer than ``TIMEOUT`` (a rollback waits for its
        sync)."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("ApiClient used outside 'with'")
        seconds = timeout or self._timeout
        url = self._target.path + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        try:
            status, raw = self._exchange(conn, method, url, data, seconds)
        except TimeoutError:
            raise TetherError(
                f"{self.options.where} did not answer within {seconds:.0f}s",
                hint="check --server (or $TETHER_SERVER) and that the controller is running",
            ) from None
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise TetherError(
                f"cannot reach {self.options.where}: {_quiet(e, self.options)}",
                hint="check --server (or $TETHER_SERVER): the URL of the controller's HTTP "
                "port, or of an ingress in front of it",
            ) from e
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = None
        if status >= 400:
            raise refusal(status, answer, raw, self.options.shown)
        if answer is None and raw:
            raise TetherError(
                f"{self.options.where} did not answer {method} {path} with JSON",
                hint="check that --server points at tether's HTTP port",
            )
        return answer


class _Connection(KeptAlive):
    """The kept-alive connection to tether's API: TLS with ``tls``, none without."""

    def __init__(self, host: str, port: int | None, tls: ssl.SSLContext | None) -> None:
        super().__init__()
        self.host, self.port, self.tls = host, port, tls

    def _open(self, timeout: float) -> http.client.HTTPConnection:
        if self.tls is not None:
            return http.client.HTTPSConnection(
                self.host, self.port, context=self.tls, timeout=timeout
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


def refusal(status: int, answer: Any, raw: bytes, shown: str) -> TetherError:
    """The error for an error answer: the server's message and hint (``{"error", "reason",
    "code", "hint"}``), with what to do about a token (401) or a permission (403)."""
    body = answer if isinstance(answer, dict) else {}
    message = str(body.get("error") or raw.decode(errors="replace").strip()[:300] or status)
    hint = str(body.get("hint") or "")
    reason = str(body.get("reason") or "")
    if status == 401:
        return ApiRefused(
            f"the tether server at {shown} did not accept the token: {message}",
            status=status,
            reason=reason or "Unauthorized",
            hint=_TOKEN_HINT,
        )
    if status == 403:
        return ApiRefused(
            f"the tether server at {shown} refused: {message}",
            status=status,
            reason=reason or "Forbidden",
            hint=hint or "ask for the permission on applications.tether.dev (docs/auth.md)",
        )
    from tether.service.results import OperationInProgress  # sync.state comes with it

    if reason == OperationInProgress.reason:
        return OperationInProgress(message, hint=hint)
    if status >= 500:
        message = f"the tether server at {shown} answered {status}: {message}"
    return ApiRefused(message, status=status, reason=reason, hint=hint)


def _checked_url(options: ServerOptions) -> str:
    try:
        parts = urllib.parse.urlsplit(options.url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise TetherError(
            f"--server {options.shown} is not an http(s) URL",
            hint="give the controller's address, e.g. --server http://127.0.0.1:8080",
        )
    return options.url.rstrip("/")


def _quiet(e: BaseException, options: ServerOptions) -> str:
    """``e``'s text without the token or the URL's credentials."""
    secrets = [options.token] if options.token else []
    parts = urllib.parse.urlsplit(options.url)
    secrets += [p for p in (parts.password, parts.username) if p and len(p) >= 8]
    from tether.source.credentials import redact

    return redact(str(e) or type(e).__name__, secrets)
