"""``tether --server https://...`` against the real controller serving TLS with a self-signed
certificate: refused unless the CA is given (``--certificate-authority``) or checking is
turned off (``--insecure-skip-tls-verify``), and the refusal names the server."""

from __future__ import annotations

import json
from pathlib import Path

from api_fixtures import Serve, app_account, run_cli, self_signed
from tether.kube import KubeClient


async def test_https_needs_the_ca_or_an_explicit_skip(
    kube: KubeClient, home: str, tmp_path: Path, serve: Serve
) -> None:
    token = await app_account(kube, home, "lister", ["list"])
    cert, key = self_signed(tmp_path)
    async with serve(tls_cert_file=str(cert), tls_key_file=str(key)) as server:
        url = server.url
        assert url.startswith("https://")
        base = ("--server", url, "--token", token, "-n", home, "app", "list", "-o", "json")
        without = ("TETHER_SERVER", "TETHER_TOKEN")

        r = await run_cli(*base, without=without)
        assert r.code == 2 and r.out == ""
        assert f"error: cannot reach the tether server at {url}" in r.err
        assert "certificate" in r.err.lower()
        assert token not in r.err

        for extra in (("--certificate-authority", str(cert)), ("--insecure-skip-tls-verify",)):
            r = await run_cli(*extra, *base, without=without)
            assert r.code == 0, (extra, r.err)
            assert json.loads(r.out) == {"apiVersion": "v1", "kind": "List", "items": []}
