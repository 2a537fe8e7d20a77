"""The event stream's life against the real controller: it ends when the caller logs out
(checked at each keepalive) and when the server stops, without holding the stop up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from api_fixtures import Serve, app_account
from cluster_helpers import WAIT, runtime_options
from tether.controller.runtime import Runtime
from tether.kube import KubeClient
from tether.server.api.context import CONTEXT


async def lines_until(resp: aiohttp.ClientResponse, until: str) -> list[str]:
    """Lines up to the one containing ``until``, or all of them if the stream ends first."""
    out: list[str] = []
    async with asyncio.timeout(WAIT):
        while True:
            line = (await resp.content.readline()).decode()
            if not line:
                return out
            out.append(line.rstrip("\n"))
            if until in line:
                return out


async def test_a_stream_ends_when_its_session_is_logged_out(
    kube: KubeClient, home: str, serve: Serve
) -> None:
    token = await app_account(kube, home, "viewer", ["get", "list"])
    async with serve() as server:
        server.rt.runner.app[CONTEXT].keepalive = 0.2  # type: ignore[union-attr]
        url = server.url
        # unsafe: the jar keeps cookies of an IP address (127.0.0.1), as a browser does.
        jar = aiohttp.CookieJar(unsafe=True)
        timeout = aiohttp.ClientTimeout(total=None)
        async with aiohttp.ClientSession(timeout=timeout, cookie_jar=jar) as s:
            async with s.post(url + "/api/v1/session", json={"token": token}) as resp:
                assert resp.status == 200, await resp.text()
                csrf = (await resp.json())["csrfToken"]
            async with s.get(url + "/api/v1/stream/applications") as stream:
                assert stream.status == 200
                assert ": keepalive" in await lines_until(stream, ": keepalive")
                async with s.delete(
                    url + "/api/v1/session", headers={"X-CSRF-Token": csrf}
                ) as resp:
                    assert resp.status in (200, 204), await resp.text()
                rest = await lines_until(stream, "session ended")
                assert rest[-1] == 'data: {"reason": "session ended"}'
                assert await stream.content.readline() == b"\n"
                assert await stream.content.readline() == b"", "the stream did not end"


async def test_stopping_the_server_ends_open_streams(
    kube: KubeClient, kubeconfig: str, home: str, tmp_path: Path
) -> None:
    admin = await kube.bearer_token()
    rt = Runtime(runtime_options(home, tmp_path, kubeconfig))
    await rt.start()
    try:
        headers = {"Authorization": f"Bearer {admin}"}
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as s,
            s.get(f"http://127.0.0.1:{rt.port}/api/v1/stream/applications", headers=headers) as r,
        ):
            assert r.status == 200
            assert await lines_until(r, ": ready") == [": ready"]
            stopping = asyncio.create_task(rt.stop())
            # The stream ends (the server closes it) and the stop completes.
            async with asyncio.timeout(WAIT):
                while await r.content.readline():
                    pass
                await stopping
    finally:
        if not rt._stopping:
            await rt.stop()
