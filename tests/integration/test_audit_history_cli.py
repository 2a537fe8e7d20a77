"""``tether app history`` reads the full history from the audit trail when it can, and says
so when it falls back to the short list in the status; ``tether audit export`` streams JSON
lines from a PostgreSQL store given by $TETHER_AUDIT_URL."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from devcluster.gitserver import RepoHandle

from audit_stores import pg_schema
from cluster_helpers import WAIT, cm_yaml, eventually, new_app, run_tether
from tether.audit import AuditRecord, open_store
from tether.kube import KubeClient

TETHER = str(Path(sys.executable).with_name("tether"))


async def test_history_falls_back_to_the_status_and_says_so(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    sha = git_repo.commit({"app/cm.yaml": cm_yaml("hist", {"v": "1"})})
    await kube.apply(new_app("hist", home, git_repo.http_url, namespace, auto_sync=False))
    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "hist", "--timeout", "60")
    assert code == 0, out

    async def in_status() -> bool:
        obj = await kube.get("tether.dev/v1alpha1", "Application", "hist", home)
        return bool(((obj or {}).get("status") or {}).get("history"))

    await eventually(in_status, WAIT, "the sync in status.history")
    # No controller Service in this namespace: the trail cannot be read.
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "history", "hist", "--controller-namespace", home
    )
    assert code == 0, out
    assert "the audit trail cannot be read" in out and "kept in the status" in out
    assert sha[:10] in out and "manual" in out
    # --full makes the same failure an error.
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "history", "hist", "--full", "--controller-namespace", home
    )
    assert code == 2 and "error:" in out and "kept in the status" not in out


async def test_export_streams_json_lines_from_postgres_named_by_the_environment() -> None:
    async with pg_schema() as url:
        store = await open_store(url)
        try:
            for i in range(2500):
                await store.append(
                    AuditRecord(id=None, time="", app=f"ns/a{i % 2}", kind="sync", message=str(i))
                )
        finally:
            await store.close()
        env = {**os.environ, "TETHER_AUDIT_URL": url}
        proc = await asyncio.create_subprocess_exec(
            TETHER,
            "audit",
            "export",
            "--app",
            "ns/a1",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        lines = out.decode().splitlines()
        records = [json.loads(line) for line in lines]
        assert [r["message"] for r in records] == [str(i) for i in range(1, 2500, 2)]
        assert list(records[0]) == list(AuditRecord(id=1, time="", app="", kind="").to_dict())
        text = err.decode()
        assert "exported 1250 record(s)" in text
        password = url.split("@")[0].rsplit(":", 1)[1]
        assert password not in text and "***" in text
