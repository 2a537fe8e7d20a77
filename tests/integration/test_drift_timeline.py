"""``tether app drift`` against a real controller process with self-heal on: a ``kubectl
edit`` of a managed object shows in the timeline with who made it (the field manager
``kubectl-edit``), which field, and the self-heal correction that followed."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from devcluster.gitserver import RepoHandle

from cluster_helpers import (
    REPO,
    WAIT,
    ControllerProcess,
    cm_yaml,
    eventually,
    new_app,
    run_tether,
    synced_to,
)
from tether.kube import KubeClient

KUBECTL = str(REPO / ".venv" / "bin" / "kubectl")


async def kubectl_edit(kubeconfig: str, namespace: str, what: str, sed: str) -> None:
    """``kubectl edit`` with an editor that applies ``sed`` to the object, as a person would."""
    proc = await asyncio.create_subprocess_exec(
        KUBECTL,
        "--kubeconfig",
        kubeconfig,
        "-n",
        namespace,
        "edit",
        what,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "KUBE_EDITOR": f"sed -i -e '{sed}'"},
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()


async def test_drift_by_kubectl_edit_and_its_correction_are_on_the_timeline(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    sha = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "green"})})
    await kube.apply(new_app("shop", home, git_repo.http_url, namespace, self_heal=True))
    ctl = ControllerProcess(tmp_path, "ctl", kubeconfig, home, "--refresh-interval", "1h")
    processes.append(ctl.start())
    await eventually(lambda: synced_to(kube, home, "shop", sha), WAIT, "first sync\n" + ctl.tail())

    # Before any drift the timeline is empty, and says so.
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "drift", "shop", "--db", str(ctl.audit_db)
    )
    assert code == 0, out
    assert f"no drift recorded for {home}/shop" in out

    await kubectl_edit(kubeconfig, namespace, "configmap/settings", "s/color: green/color: red/")

    async def corrected() -> list[dict[str, Any]] | None:
        code, out = await run_tether(
            kubeconfig,
            "-n",
            home,
            "app",
            "drift",
            "shop",
            "--db",
            str(ctl.audit_db),
            "-o",
            "json",
        )
        assert code == 0, out
        entries: list[dict[str, Any]] = json.loads(out[out.index("[") :])
        return entries if entries and entries[0]["corrected"] else None

    entries = await eventually(corrected, WAIT, "the drift and its correction\n" + ctl.tail())
    assert len(entries) == 1
    e = entries[0]
    assert e["object"] == {
        "group": "",
        "kind": "ConfigMap",
        "namespace": namespace,
        "name": "settings",
    }
    assert (e["status"], e["fields"]) == ("OutOfSync", ["data.color"])
    assert (e["manager"], e["operation"]) == ("kubectl-edit", "Update")
    assert e["changedAt"] and e["time"] <= e["corrected"]
    assert e["correctedBy"] == "self-heal"
    assert e["revision"] == sha
    live = await kube.get("v1", "ConfigMap", "settings", namespace)
    assert live is not None and live["data"] == {"color": "green"}

    # The table: one row, who and what and when it was put back.
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "drift", "shop", "--db", str(ctl.audit_db)
    )
    assert code == 0, out
    rows = [line for line in out.splitlines() if "ConfigMap/" in line]
    assert len(rows) == 1, out
    assert f"ConfigMap/{namespace}/settings" in rows[0]
    assert "data.color" in rows[0] and "kubectl-edit" in rows[0]
    assert f"corrected {e['corrected']} (self-heal)" in rows[0]
