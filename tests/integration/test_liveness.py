"""/healthz tells a stuck controller from a busy one, on the real control plane."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from devcluster.gitserver import RepoHandle
from test_polling import HangingServer, hanging  # noqa: F401  (hanging is a fixture)

from cluster_helpers import WAIT, cm_yaml, eventually, new_app, now, runtime_options, synced_to
from tether.controller.runtime import Runtime
from tether.kube import KubeClient


async def test_healthz_fails_while_work_waits_and_no_worker_can_take_it(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    hanging: HangingServer,  # noqa: F811
) -> None:
    sha = git_repo.commit({"app/cm.yaml": cm_yaml("ok", {})})
    await kube.apply(new_app("ok", home, git_repo.http_url, namespace, interval="1s"))
    opts = runtime_options(
        home, tmp_path, kubeconfig, workers=1, stuck_after=1.0, git_timeout=3600.0
    )
    async with Runtime(opts) as rt:
        url = f"http://127.0.0.1:{rt.port}/healthz"
        async with aiohttp.ClientSession() as http:

            async def health() -> tuple[int, str]:
                async with http.get(url) as resp:
                    return resp.status, await resp.text()

            await eventually(lambda: synced_to(kube, home, "ok", sha), WAIT, "synced")
            assert await health() == (200, "ok")
            # The only worker now hangs on a repository that never answers...
            await kube.apply(new_app("hung", home, hanging.url("hung"), namespace))
            await eventually(lambda: now(hanging.accepted > 0), WAIT, "the hung request")

            # ... while a new commit of the other app is polled and waits for it.
            git_repo.commit({"app/cm.yaml": cm_yaml("ok", {"v": "2"})})

            async def unhealthy() -> tuple[int, str] | None:
                got = await health()
                return got if got[0] == 503 else None

            _, text = await eventually(unhealthy, WAIT, "/healthz failing")
            assert "waiting and no worker took or finished one" in text, text
            readyz = f"http://127.0.0.1:{rt.port}/readyz"
            async with http.get(readyz) as resp:
                assert resp.status == 200  # still the leader: liveness restarts it, not readiness
