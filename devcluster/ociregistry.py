"""A real OCI registry for tests: Debian's ``docker-registry`` (distribution 2.8) on 127.0.0.1,
plain HTTP, storage in a private directory, optionally behind HTTP Basic auth (htpasswd).

distribution reads bcrypt hashes only. No ``htpasswd`` tool or ``bcrypt`` module is needed:
the hash comes from the C library's own ``crypt()`` (libxcrypt, which ships with every Debian
since 11 and knows ``$2b$``), called through ctypes.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from devcluster.chartrepo import helm
from devcluster.procs import free_port, stop_pid

REGISTRY_BINARY = Path("/usr/bin/docker-registry")


def helm_path() -> Path:
    return Path(sys.executable).parent / "helm"


_BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


class RegistryError(Exception):
    pass


def bcrypt_hash(password: str, cost: int = 5) -> str:
    """A ``$2b$`` bcrypt hash of ``password`` made by libcrypt's ``crypt()``."""
    name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
    lib = ctypes.CDLL(name)
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = "".join(secrets.choice(_BCRYPT_ALPHABET) for _ in range(22))
    # The last salt character carries only 2 bits; libxcrypt wants them canonical.
    salt = salt[:21] + _BCRYPT_ALPHABET[_BCRYPT_ALPHABET.index(salt[21]) & 0x30]
    out = lib.crypt(password.encode(), f"$2b${cost:02d}${salt}".encode())
    if not out or not out.startswith(b"$2b$"):
        raise RegistryError("libcrypt cannot make bcrypt hashes on this machine")
    return str(out.decode())


class OCIRegistry:
    """One docker-registry process on a free loopback port, stopped with ``stop()``."""

    def __init__(self, root: Path, *, username: str = "", password: str = "") -> None:
        self.root = root
        self.username = username
        self.password = password
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the registry's address as helm and OCI references spell it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``oci://127.0.0.1:PORT``."""
        return f"oci://{self.host}"

    def start(self, timeout: float = 30.0) -> OCIRegistry:
        if not REGISTRY_BINARY.exists():
            raise RegistryError(
                f"{REGISTRY_BINARY} is missing: install Debian's docker-registry package "
                "(devcluster/install-tools.sh does)"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = self._write_config()
        log = (self.root / "registry.log").open("ab")
        self._proc = subprocess.Popen(
            [str(REGISTRY_BINARY), "serve", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.root)},
        )
        log.close()
        self._wait_ready(timeout)
        return self

    def stop(self) -> None:
        if self._proc is not None:
            stop_pid(self._proc.pid)
            self._proc.wait()
            self._proc = None

    def __enter__(self) -> OCIRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def push(self, archive: Path, path: str = "charts") -> str:
        """``helm push`` of a packaged chart to ``oci://HOST/<path>``; returns that URL."""
        target = f"{self.url}/{path.strip('/')}"
        config = self.root / "push-registry.json"
        auths = {}
        if self.username:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            auths[self.host] = {"auth": token}
        config.write_text(json.dumps({"auths": auths}))
        config.chmod(0o600)
        helm(
            str(helm_path()),
            "push",
            str(archive),
            target,
            "--plain-http",
            env={"HELM_REGISTRY_CONFIG": str(config)},
        )
        return target

    def _write_config(self) -> Path:
        storage = self.root / "storage"
        storage.mkdir(exist_ok=True)
        auth = ""
        if self.username:
            htpasswd = self.root / "htpasswd"
            htpasswd.write_text(f"{self.username}:{bcrypt_hash(self.password)}\n")
            auth = f"auth:\n  htpasswd:\n    realm: tether-test\n    path: {htpasswd}\n"
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n  secret: {secrets.token_hex(16)}\n" + auth
        )
        return config

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(f"http://{self.host}/v2/")
        if self.username:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        last = ""
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RegistryError(
                    f"docker-registry exited with {self._proc.returncode}: "
                    + (self.root / "registry.log").read_text()[-2000:]
                )
            try:
                with urllib.request.urlopen(request, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError) as e:
                last = str(e)
            time.sleep(0.1)
        self.stop()
        raise RegistryError(f"docker-registry on {self.host} not ready after {timeout}s: {last}")
