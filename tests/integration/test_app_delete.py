"""`tether app delete` on the real control plane: only the inventory goes, and a controller
healing the app at the same time neither recreates what is deleted nor breaks."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from devcluster.gitserver import RepoHandle

from cluster_helpers import WAIT, cm_yaml, eventually, new_app, now, run_tether, runtime_options
from tether.api.application import API_VERSION, Application
from tether.controller.runtime import Runtime
from tether.deletion import DELETING_ANNOTATION
from tether.engine import Engine
from tether.kube import KubeClient
from tether.model import ResourceKey
from tether.source import GitCache
from tether.sync.tracking import mark


async def configmaps(kube: KubeClient, ns: str) -> set[str]:
    items, _ = await kube.list("v1", "ConfigMap", ns)
    return {o["metadata"]["name"] for o in items if o["metadata"]["name"] != "kube-root-ca.crt"}


async def synced_by_engine(
    kube: KubeClient, tmp_path: Path, name: str, ns: str, repo: RepoHandle, dest: str
) -> Application:
    """The app created and synced once by the engine (as `tether app sync` does)."""
    await kube.apply(new_app(name, ns, repo.http_url, dest, auto_sync=False, prune=False))
    engine = Engine(kube, GitCache(tmp_path / "git"))
    res = await engine.sync(await engine.get_app(name, ns))
    assert res.ok, res.message
    return await engine.get_app(name, ns)


async def test_delete_removes_the_inventory_only_never_a_copy_or_an_earlier_apps_orphan(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    # An earlier app named "shop" is deleted with --orphan: its object stays behind.
    git_repo.commit({"app/old.yaml": cm_yaml("old", {"v": "1"})})
    await synced_by_engine(kube, tmp_path, "shop", home, git_repo, namespace)
    code, out = await run_tether(kubeconfig, "-n", home, "app", "delete", "shop", "--orphan")
    assert code == 0, out
    # A new "shop" that owns two other objects.
    git_repo.commit(
        {"app/old.yaml": None, "app/a.yaml": cm_yaml("a", {}), "app/b.yaml": cm_yaml("b", {})}
    )
    app = await synced_by_engine(kube, tmp_path, "shop", home, git_repo, namespace)
    assert {i["name"] for i in app.status["inventory"]} == {"a", "b"}
    # A hand-made object carrying the app's label and its own valid tracking id.
    copy = mark(app, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "copy"}})
    copy["metadata"]["namespace"] = namespace
    await kube.create(copy)
    assert await configmaps(kube, namespace) == {"a", "b", "old", "copy"}

    code, out = await run_tether(kubeconfig, "-n", home, "app", "delete", "shop")
    assert code == 0, out
    assert f"ConfigMap {namespace}/a deleted" in out and f"ConfigMap {namespace}/b deleted" in out
    assert "old" not in out and "copy" not in out
    assert await configmaps(kube, namespace) == {"old", "copy"}
    assert await kube.get(API_VERSION, "Application", "shop", home) is None


async def test_delete_with_self_heal_on_leaves_nothing_and_the_controller_stands_aside(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "tether.controller")
    n = 40
    sha = git_repo.commit({f"app/cm-{i:02d}.yaml": cm_yaml(f"cm-{i:02d}", {}) for i in range(n)})
    await kube.apply(
        new_app("healer", home, git_repo.http_url, namespace, prune=False, self_heal=True)
    )
    key = (home, "healer")
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
        ctl = rt.controller
        assert ctl is not None

        async def synced() -> bool:
            a = await kube.get(API_VERSION, "Application", "healer", home)
            st = (a or {}).get("status") or {}
            sync = st.get("sync") or {}
            return sync.get("status") == "Synced" and sync.get("revision") == sha

        await eventually(synced, WAIT, "initial sync of 40 objects")
        code, out = await run_tether(kubeconfig, "-n", home, "app", "delete", "healer")
        assert code == 0, out
        assert out.count(" deleted") == n + 1

        # The controller, running, took the deletion over and never healed the app.
        assert "deleted (by the controller)" in out, out

        def refused() -> bool:
            return any(
                "leaving " + f"{home}/healer alone" in r.getMessage()
                and "being deleted" in r.getMessage()
                for r in caplog.records
            )

        await eventually(lambda: now(refused()), WAIT, "the controller's refusal")
        # Once it has forgotten the app and holds no work for it, nothing can recreate
        # anything; and nothing did.
        await eventually(
            lambda: now(key not in ctl.apps and ctl.queue.idle(key)), WAIT, "app forgotten"
        )
        assert await configmaps(kube, namespace) == set()
        assert not _failures(caplog), _failures(caplog)
        assert ctl.liveness_problem() == ""


async def test_deleting_the_application_while_its_objects_go_does_not_break_the_controller(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "tether.controller")
    git_repo.commit({f"app/cm-{i}.yaml": cm_yaml(f"cm-{i}", {}) for i in range(10)})
    await kube.apply(new_app("nc", home, git_repo.http_url, namespace, prune=False, self_heal=True))
    key = (home, "nc")
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
        ctl = rt.controller
        assert ctl is not None
        await eventually(lambda: _count(configmaps(kube, namespace), 10), WAIT, "initial sync")
        assert ctl.engine.cache is not None
        cache = ctl.engine.cache

        # Objects and the Application deleted at once, in no order, as kubectl would.
        async def delete_cm(i: int) -> None:
            await kube.delete("v1", "ConfigMap", f"cm-{i}", namespace)

        await asyncio.gather(
            *(delete_cm(i) for i in range(10)),
            kube.delete(API_VERSION, "Application", "nc", home),
        )
        await eventually(
            lambda: now(key not in ctl.apps and ctl.queue.idle(key)), WAIT, "app forgotten"
        )
        # Whatever self-heal put back while the app still existed is deleted now; with the
        # app gone, the controller's cache sees those deletions and queues nothing.
        for name in await configmaps(kube, namespace):
            await kube.delete("v1", "ConfigMap", name, namespace)

        def cache_empty() -> bool:
            return all(
                cache.get(ResourceKey("", "ConfigMap", namespace, f"cm-{i}")) is None
                for i in range(10)
            )

        await eventually(lambda: now(cache_empty()), WAIT, "deletions seen by the controller")
        assert ctl.queue.idle(key)
        assert await configmaps(kube, namespace) == set()
        assert not _failures(caplog), _failures(caplog)
        assert ctl.liveness_problem() == ""

        # And it still works for the next app.
        await kube.apply(new_app("after", home, git_repo.http_url, namespace, prune=False))

        async def after_synced() -> bool:
            a = await kube.get(API_VERSION, "Application", "after", home)
            st = (a or {}).get("status") or {}
            return (st.get("sync") or {}).get("status") == "Synced" and (
                await _count(configmaps(kube, namespace), 10)
            )

        await eventually(after_synced, WAIT, "the next app synced")


async def test_delete_waits_for_a_running_sync_then_deletes(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    git_repo.commit({"app/a.yaml": cm_yaml("a", {}), "app/b.yaml": cm_yaml("b", {})})
    app = await synced_by_engine(kube, tmp_path, "busy", home, git_repo, namespace)
    # A controller's sync under way, as it records one before applying anything.
    op = {**app.status["operationState"], "phase": "Running", "message": "sync in progress"}
    await kube.patch_status(app.obj, {"operationState": op})

    proc = asyncio.create_task(
        run_tether(kubeconfig, "-n", home, "app", "delete", "busy", "--timeout", "120")
    )

    async def marked() -> bool:
        a = await kube.get(API_VERSION, "Application", "busy", home)
        return DELETING_ANNOTATION in (((a or {}).get("metadata") or {}).get("annotations") or {})

    await eventually(marked, WAIT, "the deletion mark")
    # While the sync runs, the delete holds back: everything is still there.
    assert await configmaps(kube, namespace) == {"a", "b"}
    assert not proc.done()
    current = await kube.get(API_VERSION, "Application", "busy", home)
    assert current is not None
    await kube.patch_status(current, {"operationState": {**op, "phase": "Succeeded"}})
    code, out = await asyncio.wait_for(proc, WAIT)
    assert code == 0, out
    assert await configmaps(kube, namespace) == set()
    assert await kube.get(API_VERSION, "Application", "busy", home) is None


async def test_a_sync_left_running_times_out_the_delete_until_a_controller_abandons_it(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    git_repo.commit({"app/a.yaml": cm_yaml("a", {})})
    app = await synced_by_engine(kube, tmp_path, "stale", home, git_repo, namespace)
    op = {**app.status["operationState"], "phase": "Running", "message": "sync in progress"}
    await kube.patch_status(app.obj, {"operationState": op})

    code, out = await run_tether(kubeconfig, "-n", home, "app", "delete", "stale", "--timeout", "1")
    assert code == 2, out
    assert "still running" in out and "nothing was deleted" in out
    assert "Traceback" not in out
    assert await configmaps(kube, namespace) == {"a"}

    # A controller finds the app marked with a sync nobody runs: it ends it, applies nothing.
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)):

        async def abandoned() -> bool:
            a = await kube.get(API_VERSION, "Application", "stale", home)
            op = ((a or {}).get("status") or {}).get("operationState") or {}
            return op.get("phase") == "Failed" and "abandoned" in op.get("message", "")

        await eventually(abandoned, WAIT, "the leftover sync abandoned")
        code, out = await run_tether(kubeconfig, "-n", home, "app", "delete", "stale")
        assert code == 0, out
    assert await configmaps(kube, namespace) == set()


def _failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Reconcile failures and tracebacks the controller logged."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("tether")
        and (r.exc_info or ("failed" in r.getMessage() and "reconcile" in r.getMessage()))
    ]


async def _count(names: Any, n: int) -> bool:
    return len(await names) == n
