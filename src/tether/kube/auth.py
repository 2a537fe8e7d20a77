"""Who a request says it is: a credential (bearer token, basic auth, client certificate) and the
sources that keep one current — fixed, a token file that rotates, an exec plugin.

A source hands out the same :class:`Credential` object until the credential changes, so the
client rebuilds its headers only then. After a 401 the client asks the source to ``renew`` once.
The async client awaits ``credential``/``renew``; the one-shot client (``tether.kube.oneshot``)
calls ``current``/``renew_now``, which do the same without an event loop.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tether.errors import KubeError

if TYPE_CHECKING:
    import asyncio

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_TIMEOUT = 60.0
"""Seconds an exec plugin may take before the request that needed it fails."""
TOKEN_FILE_CHECK = 5.0
"""Seconds between two looks at a token file's mtime (bound tokens rotate under us)."""


@dataclass(frozen=True)
class Credential:
    """One identity as sent: a bearer token, basic auth, and/or a client certificate (PEM)."""

    token: str = ""
    basic: tuple[str, str] | None = None
    cert: tuple[str, str] | None = field(default=None, repr=False)
    expires: float | None = None
    """``time.time()`` after which it must not be sent (an exec plugin's expiry)."""

    def __repr__(self) -> str:  # never show a secret
        kind = "token" if self.token else "basic" if self.basic else "cert" if self.cert else "none"
        return f"Credential({kind})"

    def headers(self) -> dict[str, str]:
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.basic:
            pair = f"{self.basic[0]}:{self.basic[1]}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {}

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and (now or time.time()) >= self.expires


NO_CREDENTIAL = Credential()


class Auth:
    """A fixed credential (a kubeconfig token, basic auth, a client certificate, or none)."""

    def __init__(self, credential: Credential = NO_CREDENTIAL) -> None:
        self._credential = credential

    def current(self) -> Credential:
        """The credential to send now."""
        return self._credential

    def renew_now(self, rejected: Credential) -> bool:
        """After a 401 with ``rejected``: fetch a fresh credential; True when it differs, so
        one more attempt is worth making."""
        return False

    async def credential(self) -> Credential:
        return self.current()

    async def renew(self, rejected: Credential) -> bool:
        return self.renew_now(rejected)


class TokenFileAuth(Auth):
    """A bearer token read from a file (kubeconfig ``tokenFile``, a service account's projected
    token), read again when its mtime changes, looked at no more than every ``every`` seconds."""

    def __init__(self, path: Path, what: str, every: float = TOKEN_FILE_CHECK) -> None:
        super().__init__()
        self.path = path
        self.what = what
        self.every = every
        self._checked = -float("inf")
        self._stamp: tuple[int, int] | None = None
        self._loaded = False

    def load(self) -> None:
        """Reads the file now: a missing or empty one fails here, where it is configured."""
        self._reload(time.monotonic(), force=True)

    def current(self) -> Credential:
        now = time.monotonic()
        if now - self._checked >= self.every:
            self._reload(now)
        return self._credential

    def renew_now(self, rejected: Credential) -> bool:
        self._reload(time.monotonic(), force=True)
        return self._credential != rejected

    def _reload(self, now: float, force: bool = False) -> None:
        self._checked = now
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp == self._stamp and not force:
                return
            token = self.path.read_text().strip()
        except OSError as e:
            if not self._loaded:
                raise KubeError(
                    f"cannot read the token file {self.path} ({self.what}): {e.strerror or e}",
                    hint="check the path and that this process may read it",
                ) from e
            import logging  # only here: a one-shot command should not pay for it

            logging.getLogger(__name__).warning(
                "cannot read token file %s (%s); keeping the last token", self.path, e
            )
            return
        if not token:
            if not self._loaded:
                raise KubeError(
                    f"the token file {self.path} ({self.what}) is empty",
                    hint="write the bearer token into it",
                )
            return  # a rotation caught half-written: keep the last token
        self._stamp = stamp
        self._loaded = True
        if token != self._credential.token:
            self._credential = Credential(token=token)


@dataclass(frozen=True)
class ExecSpec:
    """A kubeconfig user's ``exec`` section, paths already resolved."""

    user: str
    api_version: str
    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    provide_cluster_info: bool = False
    cluster_info: Mapping[str, Any] = field(default_factory=dict)
    install_hint: str = ""
    interactive_mode: str = "IfAvailable"


class ExecAuth(Auth):
    """A credential from an exec plugin (``client.authentication.k8s.io/v1`` or ``v1beta1``),
    kept until its ``expirationTimestamp``, fetched again after a 401. The async client runs
    the plugin as an asyncio subprocess (``credential``, ``renew``), the one-shot client as a
    plain one (``current``, ``renew_now``); both read its answer the same way."""

    def __init__(self, spec: ExecSpec) -> None:
        super().__init__()
        self.spec = spec
        self.runs = 0
        """How many times the plugin ran: what tests and a curious operator read."""
        self._have: Credential | None = None
        self._async_lock: asyncio.Lock | None = None

    @property
    def _lock(self) -> asyncio.Lock:
        if self._async_lock is None:
            import asyncio  # made in the loop that uses it; one-shot commands need none

            self._async_lock = asyncio.Lock()
        return self._async_lock

    def current(self) -> Credential:
        if self._have is None or self._have.expired():
            self._have = self._run_now()
        return self._have

    def renew_now(self, rejected: Credential) -> bool:
        if self._have is not None and self._have != rejected:
            return True
        self._have = self._run_now()
        return self._have != rejected

    async def credential(self) -> Credential:
        have = self._have
        if have is not None and not have.expired():
            return have
        async with self._lock:
            if self._have is None or self._have.expired():
                self._have = await self._run()
            return self._have

    async def renew(self, rejected: Credential) -> bool:
        async with self._lock:
            if self._have is not None and self._have != rejected:
                return True  # another request renewed it meanwhile
            self._have = await self._run()
            return self._have != rejected

    def _env(self) -> dict[str, str]:
        env = {**os.environ, **dict(self.spec.env)}
        spec: dict[str, Any] = {"interactive": False}
        if self.spec.provide_cluster_info:
            spec["cluster"] = dict(self.spec.cluster_info)
        info = {"apiVersion": self.spec.api_version, "kind": "ExecCredential", "spec": spec}
        env["KUBERNETES_EXEC_INFO"] = orjson.dumps(info).decode()
        return env

    @property
    def _who(self) -> str:
        return f"the exec plugin {self.spec.command!r} of kubeconfig user {self.spec.user!r}"

    def _starting(self) -> None:
        """Before a run: refuses a plugin that needs a terminal; counts the run."""
        if self.spec.interactive_mode == "Always":
            raise KubeError(
                f"{self._who} needs a terminal (interactiveMode: Always); tether runs without one",
                hint="log in with the plugin first, or use a plugin that can run unattended",
            )
        self.runs += 1

    def _cannot_start(self, e: OSError) -> KubeError:
        return KubeError(
            f"cannot run {self._who}: {e.strerror or e}",
            hint=self.spec.install_hint or "install the plugin or fix `command` in the kubeconfig",
        )

    def _answer(self, returncode: int | None, out: bytes, err: bytes) -> Credential:
        if returncode != 0:
            last = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise KubeError(
                f"{self._who} failed with exit code {returncode}: {last[0][:300]}",
                hint=self.spec.install_hint or "run the plugin by hand to see why",
            )
        return parse_exec_credential(out, self.spec.api_version, self._who)

    def _timed_out(self) -> KubeError:
        return KubeError(f"{self._who} did not answer within {EXEC_TIMEOUT:.0f}s")

    def _run_now(self) -> Credential:
        import subprocess

        s = self.spec
        self._starting()
        try:
            proc = subprocess.run(
                [s.command, *s.args],
                env=self._env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=EXEC_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as e:  # run() killed it
            raise self._timed_out() from e
        except OSError as e:
            raise self._cannot_start(e) from e
        return self._answer(proc.returncode, proc.stdout, proc.stderr)

    async def _run(self) -> Credential:
        import asyncio

        s = self.spec
        self._starting()
        try:
            proc = await asyncio.create_subprocess_exec(
                s.command,
                *s.args,
                env=self._env(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as e:
            raise self._cannot_start(e) from e
        try:
            out, err = await asyncio.wait_for(proc.communicate(), EXEC_TIMEOUT)
        except TimeoutError as e:
            proc.kill()
            await proc.wait()
            raise self._timed_out() from e
        return self._answer(proc.returncode, out, err)


def parse_exec_credential(out: bytes, api_version: str, who: str) -> Credential:
    """An ``ExecCredential`` printed by a plugin, as a :class:`Credential`."""
    try:
        doc = orjson.loads(out)
    except orjson.JSONDecodeError as e:
        raise KubeError(f"{who} printed no ExecCredential JSON: {e}") from e
    if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
        raise KubeError(f"{who} printed something other than an ExecCredential")
    if doc.get("apiVersion") != api_version:
        raise KubeError(
            f"{who} answered apiVersion {doc.get('apiVersion')!r}, the kubeconfig asks for "
            f"{api_version!r}",
            hint="set exec.apiVersion in the kubeconfig to what the plugin speaks",
        )
    status = doc.get("status") or {}
    token = str(status.get("token") or "")
    cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
    if not token and not (cert and key):
        raise KubeError(
            f"{who} returned neither status.token nor clientCertificateData and clientKeyData"
        )
    expires: float | None = None
    stamp = status.get("expirationTimestamp")
    if stamp:
        try:
            expires = datetime.fromisoformat(str(stamp)).timestamp()
        except ValueError as e:
            raise KubeError(f"{who} returned a bad expirationTimestamp {stamp!r}") from e
    return Credential(
        token=token, cert=(str(cert), str(key)) if cert and key else None, expires=expires
    )
