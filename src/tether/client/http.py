"""Speaking HTTP to tether's ``/api/v1``: the connection (TLS options, bearer token), JSON in
and out, and every failure as a ``TetherError`` a person can act on. A refusal carries the
server's own message and hint; 409 ``OperationInProgress`` is ``OperationInProgress``, as the
direct path raises it; the token and the URL's credentials never appear in a message."""

from __future__ import annotations

import json
import ssl
import urllib.parse
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp

from tether.errors import TetherError
from tether.service.results import OperationInProgress
from tether.source import redact

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
        return redact(self.url.rstrip("/"))


class ApiRefused(TetherError):
    """The server answered with an error: ``status`` and ``reason`` are its own."""

    def __init__(self, message: str, *, status: int, reason: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.reason = reason


class ApiClient:
    """One session with the server; ``async with ApiClient(...) as api``."""

    def __init__(self, options: ServerOptions, *, timeout: float = TIMEOUT) -> None:
        self.options = options
        self._base = _checked_url(options)
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ApiClient:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            connector=aiohttp.TCPConnector(ssl=self._ssl()),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ssl(self) -> ssl.SSLContext | bool:
        if self.options.insecure:
            return False
        if self.options.ca_file:
            try:
                return ssl.create_default_context(cafile=self.options.ca_file)
            except (OSError, ssl.SSLError) as e:
                raise TetherError(
                    f"cannot read the certificate authority {self.options.ca_file}: {e}",
                    hint="--certificate-authority takes a PEM file of the CA that signed "
                    "the server's certificate",
                ) from e
        return True

    async def call(
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
        if self._session is None:
            raise RuntimeError("ApiClient used outside 'async with'")
        shown = self.options.shown
        seconds = timeout or self._timeout
        headers = {"Accept": "application/json"}
        if self.options.token:
            headers["Authorization"] = f"Bearer {self.options.token}"
        try:
            async with self._session.request(
                method,
                self._base + path,
                params=query,
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=seconds),
            ) as resp:
                status, raw = resp.status, await resp.read()
        except TimeoutError:
            raise TetherError(
                f"the tether server at {shown} did not answer within {seconds:.0f}s",
                hint="check --server (or $TETHER_SERVER) and that the controller is running",
            ) from None
        except (aiohttp.ClientError, OSError, ValueError) as e:
            raise TetherError(
                f"cannot reach the tether server at {shown}: {_quiet(e, self.options)}",
                hint="check --server (or $TETHER_SERVER): the URL of the controller's HTTP "
                "port, or of an ingress in front of it",
            ) from e
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = None
        if status >= 400:
            raise refusal(status, answer, raw, shown)
        if answer is None and raw:
            raise TetherError(
                f"the tether server at {shown} did not answer {method} {path} with JSON",
                hint="check that --server points at tether's HTTP port",
            )
        return answer


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
    return redact(str(e) or type(e).__name__, secrets)
