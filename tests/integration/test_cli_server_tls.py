"""``tether --server https://...`` against the real controller serving TLS with a self-signed
certificate: refused unless the CA is given (``--certificate-authority``) or checking is
turned off (``--insecure-skip-tls-verify``), and the refusal names the server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

from cluster_helpers import TETHER, runtime_options
from identities import grant, service_account_token
from tether.controller.runtime import Runtime
from tether.kube import KubeClient


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "tls.crt", directory / "tls.key"
    args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    args += ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(["openssl", *args], check=True, capture_output=True)
    return cert, key


async def tether(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TETHER_SERVER", "TETHER_TOKEN")}
    proc = await asyncio.create_subprocess_exec(
        TETHER, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_https_needs_the_ca_or_an_explicit_skip(
    kube: KubeClient, kubeconfig: str, home: str, tmp_path: Path
) -> None:
    token = await service_account_token(kube, home, "lister")
    rule = {"apiGroups": ["tether.dev"], "resources": ["applications"], "verbs": ["list"]}
    await grant(kube, home, (home, "lister"), [rule])
    cert, key = self_signed(tmp_path)
    opts = runtime_options(
        home, tmp_path, kubeconfig, tls_cert_file=str(cert), tls_key_file=str(key)
    )
    async with Runtime(opts) as rt:
        url = f"https://127.0.0.1:{rt.port}"
        base = ("--server", url, "--token", token, "-n", home, "app", "list", "-o", "json")

        code, out, err = await tether(*base)
        assert code == 2 and out == ""
        assert f"error: cannot reach the tether server at {url}" in err
        assert "certificate" in err.lower()
        assert token not in err

        for extra in (("--certificate-authority", str(cert)), ("--insecure-skip-tls-verify",)):
            code, out, err = await tether(*extra, *base)
            assert code == 0, (extra, err)
            assert json.loads(out) == {"apiVersion": "v1", "kind": "List", "items": []}
