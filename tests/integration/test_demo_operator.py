"""The demo's user of the web UI and the API (``make demo``'s last step), on the real control
plane: a ServiceAccount bound to ``tether-operator`` in one namespace, whose token lists and
reads that namespace's Applications through ``tether --server`` and nothing elsewhere."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from devcluster import demo
from devcluster.gitserver import RepoHandle

from cluster_helpers import TETHER, WAIT, cm_yaml, eventually, new_app, runtime_options
from identities import may
from tether.controller.runtime import Runtime
from tether.kube import KubeClient

KUBECTL = str(demo.VENV_BIN / "kubectl")


async def tether(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TETHER_SERVER"}
    proc = await asyncio.create_subprocess_exec(
        TETHER, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_the_demo_user_reads_and_may_sync_only_its_namespace(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"k": "v"})})
    await kube.apply(new_app("guestbook", home, git_repo.http_url, namespace, auto_sync=False))
    role_existed = await kube.get("rbac.authorization.k8s.io/v1", "ClusterRole", "tether-operator")
    token_file = tmp_path / "demo-operator.token"
    try:
        token = await asyncio.to_thread(demo.demo_operator, KUBECTL, home, token_file)
        assert token_file.read_text().strip() == token
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        user = f"system:serviceaccount:{home}:{demo.OPERATOR}"
        attrs = {"group": "tether.dev", "resource": "applications"}
        await eventually(
            lambda: may(kube, user, {**attrs, "namespace": home, "verb": "sync"}), WAIT
        )
        assert not await may(kube, user, {**attrs, "namespace": namespace, "verb": "list"})

        async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
            server = f"http://127.0.0.1:{rt.port}"
            code, out, err = await tether(
                "--server", server, "--token", token, "-n", home, "app", "list"
            )
            assert code == 0, err
            assert "guestbook" in out
    finally:
        if role_existed is None:
            await kube.delete("rbac.authorization.k8s.io/v1", "ClusterRole", "tether-operator")
