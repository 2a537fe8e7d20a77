"""The controller's render settings on the real control plane and git server: the render
cache shared by apps with the same inputs (and turned off with size 0), its metrics, and
the render time limit reaching the tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from devcluster.gitserver import RepoHandle

from cluster_helpers import (
    WAIT,
    app_status,
    cm_yaml,
    condition,
    eventually,
    new_app,
    runtime_options,
)
from tether import metrics
from tether.controller.controller import Controller
from tether.controller.render_settings import RenderSettings
from tether.controller.runtime import Runtime
from tether.kube import KubeClient


def renders() -> float:
    return sum(
        s.value
        for fam in metrics.REGISTRY.collect()
        if fam.name == "tether_renders"
        for s in fam.samples
        if s.name == "tether_renders_total"
    )


def hits() -> float:
    return metrics.REGISTRY.get_sample_value("tether_render_cache_hits_total") or 0.0


async def compared_at(kube: KubeClient, home: str, names: list[str], sha: str) -> bool:
    for n in names:
        st = await app_status(kube, home, n)
        if (st.get("sync") or {}).get("revision") != sha:
            return False
    return True


async def test_a_commit_touching_one_app_renders_that_app_only_and_every_app_with_the_cache_off(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    git_repo.commit({"a/cm.yaml": cm_yaml("a", {"v": "1"}), "b/cm.yaml": cm_yaml("b", {"v": "1"})})
    names = ["a", "b"]
    for n in names:
        # Compared, never synced.
        await kube.apply(new_app(n, home, git_repo.http_url, namespace, n, "1s", auto_sync=False))
    async with Runtime(runtime_options(home, tmp_path / "on", kubeconfig)) as rt:
        ctl = rt.controller
        assert ctl is not None
        # Both apps compared once their repository was first polled: nothing is pending.
        await eventually(lambda: _settled(kube, ctl, home, names, git_repo.head()), WAIT, "start")
        before = (renders(), hits())
        directory = metrics.REGISTRY.get_sample_value("tether_renders_total", {"type": "Directory"})
        sha = git_repo.commit({"b/cm.yaml": cm_yaml("b", {"v": "2"})})
        await eventually(lambda: compared_at(kube, home, names, sha), WAIT, "compared, cache on")
        await eventually(lambda: _settled(kube, ctl, home, names, sha), WAIT, "settled")
        assert renders() - before[0] == 1  # b; a read the same files as before
        after = metrics.REGISTRY.get_sample_value("tether_renders_total", {"type": "Directory"})
        assert (after or 0) - (directory or 0) == 1
        assert hits() - before[1] >= 1

    before = (renders(), hits())
    off = RenderSettings(cache_size=0)
    async with Runtime(runtime_options(home, tmp_path / "off", kubeconfig, render=off)) as rt:
        ctl = rt.controller
        assert ctl is not None
        await eventually(lambda: _reconciled(ctl.reconciles, len(names)), WAIT, "cache off")
    assert renders() - before[0] >= len(names)
    assert hits() - before[1] == 0


async def _reconciled(count: int, want: int) -> bool:
    return count >= want


async def _settled(
    kube: KubeClient, ctl: Controller, home: str, names: list[str], sha: str
) -> bool:
    """Every app compared at ``sha``, and no poll or reconcile in flight or queued."""
    idle = all(ctl.queue.idle((home, n)) for n in names) and not ctl.poller.in_flight
    return idle and await compared_at(kube, home, names, sha)


SLOW_CHART = {
    "slow/Chart.yaml": yaml.safe_dump({"apiVersion": "v2", "name": "slow", "version": "0.1.0"}),
    # Ten billion empty iterations: helm works until it is stopped, printing nothing.
    "slow/templates/cm.yaml": (
        "{{- range until 100000 }}{{- range until 100000 }}{{- end }}{{- end }}\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: slow\n"
    ),
}


async def test_a_render_past_the_controllers_time_limit_is_stopped_and_named(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    git_repo.commit(SLOW_CHART)
    await kube.apply(new_app("slow", home, git_repo.http_url, namespace, "slow", auto_sync=False))
    opts = runtime_options(home, tmp_path, kubeconfig, render=RenderSettings(timeout=3.0))

    async def stopped() -> dict[str, Any] | None:
        st = await app_status(kube, home, "slow")
        for c in st.get("conditions") or []:
            if "timed out after 3s" in str(c.get("message", "")):
                return c
        return None

    async with Runtime(opts):
        cond = await eventually(stopped, WAIT, "the render stopped at 3s")
    assert "helm" in cond["message"]
    assert condition(await app_status(kube, home, "slow"), "ReconcileError") is None
