"""Sync windows on the real control plane: a real ``tether controller`` holds automated syncs
and self-heal inside a deny window (and says so), syncs once the window goes or closes; a
manual ``tether app sync`` is refused inside it, and goes with --force-window or manualSync."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
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
from tether.api.application import API_VERSION, REFRESH_ANNOTATION
from tether.errors import KubeError
from tether.kube import KubeClient
from tether.model import Obj

ALWAYS_DENY = {"kind": "deny", "schedule": "* * * * *", "duration": "1h"}
"""Opens every minute for an hour: active whenever a test runs."""


async def live_color(kube: KubeClient, ns: str) -> str:
    o = await kube.get("v1", "ConfigMap", "settings", ns)
    return str(((o or {}).get("data") or {}).get("color", ""))


async def refresh(kube: KubeClient, ns: str, name: str) -> None:
    """What `tether app refresh` does: the controller reads Git now."""
    app = await kube.get(API_VERSION, "Application", name, ns)
    assert app is not None
    token = datetime.now(UTC).isoformat()
    await kube.merge_patch(app, {"metadata": {"annotations": {REFRESH_ANNOTATION: token}}})


def with_windows(app: Obj, *windows: dict[str, Any]) -> Obj:
    out = copy.deepcopy(app)
    out["spec"]["syncWindows"] = list(windows)
    return out


async def held(kube: KubeClient, ns: str, name: str, said: str) -> dict[str, Any] | None:
    """The status once a SyncHeldByWindow condition says ``said``."""
    st = await app_status(kube, ns, name)
    c = condition(st, "SyncHeldByWindow")
    return st if c and said in c["message"] else None


async def test_deny_window_holds_automated_sync_and_self_heal_until_it_is_removed(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    first = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "blue"})})
    app = new_app("shop", home, git_repo.http_url, namespace, self_heal=True)
    await kube.apply(with_windows(app, ALWAYS_DENY))
    ctl = ControllerProcess(tmp_path, "ctl", kubeconfig, home)
    processes.append(ctl.start())

    # Not even the first sync runs: the condition names the commit and the window.
    st = await eventually(
        lambda: held(kube, home, "shop", f"automated sync to {first[:10]} held"),
        WAIT,
        "first sync held" + ctl.tail(),
    )
    c = condition(st, "SyncHeldByWindow")
    assert c is not None and c["reason"] == "DenyWindowActive"
    assert "deny window 1 ('* * * * *' for 1h, UTC) is active" in c["message"]
    assert "tether app sync shop --force-window" in c["message"]
    assert st["syncWindows"]["syncAllowed"] is False
    assert st["syncWindows"]["manualSyncAllowed"] is False
    assert [w["schedule"] for w in st["syncWindows"]["active"]] == ["* * * * *"]
    assert "operationState" not in st
    assert await kube.get("v1", "ConfigMap", "settings", namespace) is None

    # A person syncs through the window.
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "sync", "shop", "--force-window", "--timeout", "0"
    )
    assert code == 0, out
    assert await live_color(kube, namespace) == "blue"

    # A live edit is reported as drift, not healed: the window holds self-heal.
    live = await kube.get("v1", "ConfigMap", "settings", namespace)
    assert live is not None
    await kube.merge_patch(live, {"data": {"color": "hacked"}}, field_manager="kubectl-edit")
    st = await eventually(
        lambda: held(kube, home, "shop", "self-heal held by the sync windows"),
        WAIT,
        "self-heal held" + ctl.tail(),
    )
    assert st["sync"]["status"] == "OutOfSync"
    assert await live_color(kube, namespace) == "hacked"

    # A new commit is not synced either.
    second = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "green"})})
    await refresh(kube, home, "shop")
    st = await eventually(
        lambda: held(kube, home, "shop", f"automated sync to {second[:10]} held"),
        WAIT,
        "new commit held" + ctl.tail(),
    )
    assert st["sync"] == {"status": "OutOfSync", "revision": second}
    assert st["operationState"]["revision"] == first
    assert st["operationState"]["trigger"] == "manual"
    assert await live_color(kube, namespace) == "hacked"
    assert f"automated sync to {second[:10]} held" in ctl.output()

    # The window removed: the commit syncs (and the edit is undone) without a poll.
    await kube.apply(app)
    st = await eventually(lambda: synced_to(kube, home, "shop", second), WAIT, "synced")
    assert await live_color(kube, namespace) == "green"
    assert "syncWindows" not in st


async def test_controller_syncs_at_the_end_of_a_deny_window_without_a_poll(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    first = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "blue"})})
    app = new_app("shop", home, git_repo.http_url, namespace, interval="1h")
    await kube.apply(app)
    ctl = ControllerProcess(tmp_path, "ctl", kubeconfig, home)
    processes.append(ctl.start())
    await eventually(lambda: synced_to(kube, home, "shop", first), WAIT, "first sync")

    # A deny window that opened at the start of this minute and closes 40 s from now.
    t = datetime.now(UTC)
    opened = t.replace(second=0, microsecond=0)
    closes = t + timedelta(seconds=40)
    seconds = int((closes - opened).total_seconds())
    window = {"kind": "deny", "schedule": f"{opened.minute} {opened.hour} * * *"}
    await kube.apply(with_windows(app, {**window, "duration": f"{seconds}s"}))
    second = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "green"})})
    await refresh(kube, home, "shop")

    # Polling is hourly and nothing else is asked: the window's end alone starts the sync.
    st = await eventually(lambda: synced_to(kube, home, "shop", second), WAIT, "synced at end")
    assert f"automated sync to {second[:10]} held" in ctl.output(), ctl.tail()
    end = opened + timedelta(seconds=seconds)
    started = datetime.fromisoformat(st["operationState"]["startedAt"].replace("Z", "+00:00"))
    assert started >= end.replace(microsecond=0)
    assert st["operationState"]["trigger"] == "auto"
    assert st["syncWindows"]["syncAllowed"] is True
    assert st["syncWindows"]["next"]["start"] > end.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_manual_sync_refused_inside_a_deny_window_unless_forced_or_allowed(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    sha = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "blue"})})
    app = new_app("shop", home, git_repo.http_url, namespace, auto_sync=False, prune=False)
    await kube.apply(with_windows(app, ALWAYS_DENY))
    processes.append(ControllerProcess(tmp_path, "ctl", kubeconfig, home).start())

    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "shop")
    assert code == 2, out
    assert "sync of shop refused by its sync windows" in out
    assert "deny window 1 ('* * * * *' for 1h, UTC) is active" in out
    assert "manualSync is not set on deny window 1" in out
    assert "tether app sync shop --force-window" in out
    assert await kube.get("v1", "ConfigMap", "settings", namespace) is None

    # A dry run changes nothing, so no window stands in its way.
    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "shop", "--dry-run")
    assert code == 0, out
    assert await kube.get("v1", "ConfigMap", "settings", namespace) is None

    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "sync", "shop", "--force-window", "--timeout", "0"
    )
    assert code == 0, out
    assert "--force-window: syncing although the sync windows deny it" in out
    assert await live_color(kube, namespace) == "blue"
    st = await app_status(kube, home, "shop")
    assert st["operationState"]["trigger"] == "manual"
    assert st["operationState"]["revision"] == sha
    code, out = await run_tether(kubeconfig, "-n", home, "app", "get", "shop")
    assert code == 0, out
    assert "Windows:     denied: deny window 1 ('* * * * *' for 1h, UTC) is active" in out

    # manualSync: true lets manual syncs through the same window.
    second = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "green"})})
    await kube.apply(with_windows(app, {**ALWAYS_DENY, "manualSync": True}))
    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "shop", "--timeout", "0")
    assert code == 0, out
    assert "--force-window" not in out
    assert await live_color(kube, namespace) == "green"
    st = await app_status(kube, home, "shop")
    assert st["operationState"]["revision"] == second
    assert st["syncWindows"]["manualSyncAllowed"] is True
    assert st["syncWindows"]["syncAllowed"] is False


async def test_api_server_refuses_a_malformed_window_and_the_controller_names_a_bad_one(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "blue"})})
    app = new_app("shop", home, git_repo.http_url, namespace)
    bad_kind = with_windows(app, {**ALWAYS_DENY, "kind": "block"})
    bad_duration = with_windows(app, {**ALWAYS_DENY, "duration": "1d"})
    for obj in (bad_kind, bad_duration):
        with pytest.raises(KubeError) as refused:  # the API server's schema refuses it
            await kube.apply(obj)
        assert refused.value.status == 422
    # A cron the schema cannot check reaches the controller, which names the entry.
    await kube.apply(with_windows(app, ALWAYS_DENY, {**ALWAYS_DENY, "schedule": "61 * * * *"}))
    ctl = ControllerProcess(tmp_path, "ctl", kubeconfig, home)
    processes.append(ctl.start())

    async def invalid() -> dict[str, Any] | None:
        found = condition(await app_status(kube, home, "shop"), "InvalidSpec")
        return found

    c = await eventually(invalid, WAIT, "InvalidSpec" + ctl.tail())
    assert "syncWindows[1]: schedule '61 * * * *' is not valid cron" in c["message"]
    assert await kube.get("v1", "ConfigMap", "settings", namespace) is None
