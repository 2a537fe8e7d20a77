"""spec.dependsOn with a real controller process, the real CLI, git server and control plane:
an app waits for its dependency, says which and why, and goes as soon as the dependency is
ready (apps poll once an hour, so nothing but the wake-up can start it); a cycle is refused
on every app in it; a missing dependency is named. ``tether app sync`` refuses with the same
words unless told to ignore dependencies (never a cycle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devcluster.gitserver import RepoHandle

from cluster_helpers import (
    WAIT,
    ControllerProcess,
    app_status,
    cm_yaml,
    condition,
    eventually,
    new_app,
    run_tether,
    synced_to,
)
from tether.api.application import API_VERSION
from tether.kube import KubeClient
from tether.model import Obj

POLL = "1h"
"""Every app and the controller poll Git this seldom: a sync within the test's bounds was
started by a dependency becoming ready (or a refresh the test asks for), not by a poll."""


def depending(app: Obj, *names: str) -> Obj:
    app["spec"]["dependsOn"] = [{"name": n} for n in names]
    return app


def two_apps(repo: RepoHandle, b_color: str = "blue") -> str:
    return repo.commit(
        {
            "app-a/cm.yaml": cm_yaml("a-settings", {"color": "red"}),
            "app-b/cm.yaml": cm_yaml("b-settings", {"color": b_color}),
        },
        message=f"b is {b_color}",
    )


def controller(tmp_path: Path, kubeconfig: str, home: str) -> ControllerProcess:
    return ControllerProcess(tmp_path, "ctl", kubeconfig, home, "--refresh-interval", POLL)


async def live_data(kube: KubeClient, ns: str, name: str) -> dict[str, Any] | None:
    obj = await kube.get("v1", "ConfigMap", name, ns)
    return None if obj is None else dict(obj.get("data") or {})


async def with_condition(
    kube: KubeClient, ns: str, name: str, ctype: str, words: str
) -> dict[str, Any] | None:
    """The app's status once it has condition ``ctype`` whose message holds ``words``."""
    st = await app_status(kube, ns, name)
    cond = condition(st, ctype)
    return st if cond is not None and words in cond["message"] else None


async def test_a_dependent_waits_until_its_dependency_is_ready_then_goes_at_once(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    sha1 = two_apps(git_repo)
    url = git_repo.http_url
    # a is synced by hand only; b is automated and depends on a.
    await kube.apply(
        new_app("a", home, url, namespace, "app-a", POLL, auto_sync=False, prune=False)
    )
    await kube.apply(depending(new_app("b", home, url, namespace, "app-b", POLL), "a"))
    ctl = controller(tmp_path, kubeconfig, home)
    processes.append(ctl.start())

    waiting = "waiting for dependency a (sync OutOfSync, health "
    st = await eventually(
        lambda: with_condition(kube, home, "b", "DependencyNotReady", waiting),
        WAIT,
        "b waiting for a\n" + ctl.tail(),
    )
    assert "this app syncs once every dependency is Synced and Healthy" in str(st["conditions"])
    assert "operationState" not in st and st["sync"]["status"] == "OutOfSync"
    assert await live_data(kube, namespace, "b-settings") is None
    assert f"{home}/b not synced: {waiting}" in ctl.output()

    # A manual sync of b is refused with the same words, and changes nothing.
    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "b")
    assert code == 2, out
    assert "error: " + waiting in out
    assert "sync a first or wait for it; --ignore-dependencies syncs anyway" in out
    assert await live_data(kube, namespace, "b-settings") is None

    # a becomes Synced and Healthy: b goes without waiting for a poll.
    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "a")
    assert code == 0, out
    await eventually(lambda: synced_to(kube, home, "b", sha1), WAIT, "b synced\n" + ctl.tail())
    assert await live_data(kube, namespace, "b-settings") == {"color": "blue"}

    # A new commit on the branch both follow; only b is refreshed, so a's status still
    # shows the previous commit: b waits for a to reach the new one.
    sha2 = two_apps(git_repo, "green")
    code, out = await run_tether(kubeconfig, "-n", home, "app", "refresh", "b")
    assert code == 0, out
    behind = f"a (Synced and Healthy at {sha1[:10]}, not yet at {sha2[:10]})"
    await eventually(
        lambda: with_condition(kube, home, "b", "DependencyNotReady", behind),
        WAIT,
        "b waiting for a to reach the new commit\n" + ctl.tail(),
    )
    assert await live_data(kube, namespace, "b-settings") == {"color": "blue"}
    # a is compared at the new commit (its files did not change: Synced), and b goes.
    code, out = await run_tether(kubeconfig, "-n", home, "app", "refresh", "a")
    assert code == 0, out
    await eventually(lambda: synced_to(kube, home, "b", sha2), WAIT, "b synced\n" + ctl.tail())
    assert await live_data(kube, namespace, "b-settings") == {"color": "green"}


async def test_a_cycle_is_refused_on_every_app_in_it_until_it_is_broken(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    sha = two_apps(git_repo)
    url = git_repo.http_url
    await kube.apply(depending(new_app("a", home, url, namespace, "app-a", POLL), "b"))
    b = await kube.apply(depending(new_app("b", home, url, namespace, "app-b", POLL), "a"))
    ctl = controller(tmp_path, kubeconfig, home)
    processes.append(ctl.start())

    for name, cycle in (("a", "a -> b -> a"), ("b", "b -> a -> b")):
        st = await eventually(
            lambda name=name, cycle=cycle: with_condition(
                kube, home, name, "InvalidSpec", f"spec.dependsOn forms a cycle: {cycle};"
            ),
            WAIT,
            f"the cycle on {name}\n" + ctl.tail(),
        )
        assert "operationState" not in st
    for cm in ("a-settings", "b-settings"):
        assert await live_data(kube, namespace, cm) is None

    # The CLI refuses too, and overriding readiness does not override a cycle.
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "sync", "a", "--ignore-dependencies"
    )
    assert code == 2, out
    assert "error: spec.dependsOn forms a cycle: a -> b -> a;" in out
    assert "edit spec.dependsOn of one of these Applications" in out
    assert await live_data(kube, namespace, "a-settings") is None

    # Breaking the cycle (b no longer waits for a): b syncs, then a, which waits for b.
    await kube.merge_patch(b, {"spec": {"dependsOn": None}})
    await eventually(lambda: synced_to(kube, home, "b", sha), WAIT, "b synced\n" + ctl.tail())
    await eventually(lambda: synced_to(kube, home, "a", sha), WAIT, "a synced\n" + ctl.tail())
    a_state = (await app_status(kube, home, "a"))["operationState"]
    b_state = (await app_status(kube, home, "b"))["operationState"]
    assert a_state["startedAt"] >= b_state["finishedAt"]


async def test_a_missing_dependency_is_named_and_its_arrival_starts_the_sync(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    sha = two_apps(git_repo)
    url = git_repo.http_url
    await kube.apply(depending(new_app("b", home, url, namespace, "app-b", POLL), "ghost"))
    ctl = controller(tmp_path, kubeconfig, home)
    processes.append(ctl.start())
    missing = "waiting for dependency ghost (not found): "
    st = await eventually(
        lambda: with_condition(kube, home, "b", "DependencyNotReady", missing),
        WAIT,
        "b waiting for ghost\n" + ctl.tail(),
    )
    assert "operationState" not in st
    assert await live_data(kube, namespace, "b-settings") is None
    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "b")
    assert code == 2 and "error: " + missing in out, out

    # The dependency arrives and syncs by itself; b follows.
    await kube.apply(new_app("ghost", home, url, namespace, "app-a", POLL))
    await eventually(lambda: synced_to(kube, home, "ghost", sha), WAIT, "ghost synced")
    await eventually(lambda: synced_to(kube, home, "b", sha), WAIT, "b synced\n" + ctl.tail())
    assert await live_data(kube, namespace, "b-settings") == {"color": "blue"}
    app = await kube.get(API_VERSION, "Application", "b", home)
    assert app is not None and app["spec"]["dependsOn"] == [{"name": "ghost"}]


async def test_a_manual_sync_may_ignore_dependencies_when_told_to(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    sha = two_apps(git_repo)
    url = git_repo.http_url
    app = new_app("b", home, url, namespace, "app-b", POLL, auto_sync=False, prune=False)
    await kube.apply(depending(app, "ghost"))
    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "b", "--dry-run")
    assert code == 0, out  # a dry run changes nothing, so it is never refused
    assert await live_data(kube, namespace, "b-settings") is None
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "sync", "b", "--ignore-dependencies"
    )
    assert code == 0, out
    assert await live_data(kube, namespace, "b-settings") == {"color": "blue"}
    st = await app_status(kube, home, "b")
    assert st["operationState"]["revision"] == sha and st["operationState"]["phase"] == "Succeeded"
