"""Projects with a real ``tether controller``: an app refused by its Project is synced once
the Project is edited to allow it (the controller watches Projects, so no poll is needed);
a sync window of the Project holds automated syncs of its apps, and says whose window it is."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
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
    synced_to,
)
from tether.api.project import PROJECT_API_VERSION, PROJECT_KIND
from tether.errors import KubeError
from tether.kube import KubeClient
from tether.model import Obj

ALWAYS_DENY = {"kind": "deny", "schedule": "* * * * *", "duration": "1h"}
"""Opens every minute for an hour: active whenever a test runs."""


@pytest.fixture
async def project_name(kube: KubeClient) -> AsyncIterator[str]:
    """A unique name for the test's (cluster-scoped) Project, deleted afterwards."""
    await kube.wait_for_resource(PROJECT_API_VERSION, PROJECT_KIND)
    name = f"p-{uuid.uuid4().hex[:10]}"
    yield name
    try:
        await kube.delete(PROJECT_API_VERSION, PROJECT_KIND, name)
    except KubeError as e:
        if e.status != 404:
            raise


def project(name: str, **spec: Any) -> Obj:
    return {
        "apiVersion": PROJECT_API_VERSION,
        "kind": PROJECT_KIND,
        "metadata": {"name": name},
        "spec": spec,
    }


async def violation(kube: KubeClient, home: str, says: str) -> dict[str, Any] | None:
    st = await app_status(kube, home, "web")
    c = condition(st, "ProjectViolation")
    return st if c and says in c["message"] else None


async def test_a_project_edited_to_allow_the_repo_syncs_on_the_next_reconcile(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
    project_name: str,
) -> None:
    sha = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "blue"})})
    rules = {"destinations": [{"namespace": namespace}], "sourceNamespaces": [home]}
    await kube.create(project(project_name, sourceRepos=["http://elsewhere/*"], **rules))
    app = new_app("web", home, git_repo.http_url, namespace, interval="1h")
    app["spec"]["project"] = project_name
    await kube.create(app)
    ctl = ControllerProcess(tmp_path, "ctl", kubeconfig, home)
    processes.append(ctl.start())

    st = await eventually(
        lambda: violation(kube, home, "does not allow source repository"),
        WAIT,
        "refused" + ctl.tail(),
    )
    assert "operationState" not in st  # the automated sync never started
    assert st["sync"]["status"] == "Unknown"
    assert await kube.get("v1", "ConfigMap", "settings", namespace) is None

    # The admin allows the repository: the watch on Projects reconciles the app at once
    # (its poll interval is an hour), and it syncs.
    current = await kube.get(PROJECT_API_VERSION, PROJECT_KIND, project_name)
    assert current is not None
    await kube.merge_patch(current, {"spec": {"sourceRepos": ["http://127.0.0.1:*/*"]}})
    st = await eventually(lambda: synced_to(kube, home, "web", sha), WAIT, "synced" + ctl.tail())
    assert condition(st, "ProjectViolation") is None
    assert await kube.get("v1", "ConfigMap", "settings", namespace) is not None
    assert f"Project {project_name} modified: reconciling its 1 app(s)" in ctl.output()


async def test_a_project_sync_window_holds_the_automated_sync_of_its_apps(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
    project_name: str,
) -> None:
    sha = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "blue"})})
    await kube.create(
        project(
            project_name,
            sourceRepos=["*"],
            destinations=[{"namespace": namespace}],
            sourceNamespaces=[home],
            syncWindows=[ALWAYS_DENY],
        )
    )
    app = new_app("web", home, git_repo.http_url, namespace, interval="1h")
    app["spec"]["project"] = project_name
    await kube.create(app)
    ctl = ControllerProcess(tmp_path, "ctl", kubeconfig, home)
    processes.append(ctl.start())

    async def held() -> dict[str, Any] | None:
        st = await app_status(kube, home, "web")
        c = condition(st, "SyncHeldByWindow")
        return st if c and f"automated sync to {sha[:10]} held" in c["message"] else None

    st = await eventually(held, WAIT, "held" + ctl.tail())
    c = condition(st, "SyncHeldByWindow")
    assert c is not None and c["reason"] == "DenyWindowActive"
    assert (
        f"deny window 1 of project {project_name} ('* * * * *' for 1h, UTC) is active"
        in (c["message"])
    )
    assert st["syncWindows"]["syncAllowed"] is False
    assert [w["scope"] for w in st["syncWindows"]["active"]] == [f"project {project_name}"]
    assert "operationState" not in st
    assert await kube.get("v1", "ConfigMap", "settings", namespace) is None

    # The project's window removed: the app syncs without a poll.
    current = await kube.get(PROJECT_API_VERSION, PROJECT_KIND, project_name)
    assert current is not None
    await kube.merge_patch(current, {"spec": {"syncWindows": None}})
    await eventually(lambda: synced_to(kube, home, "web", sha), WAIT, "synced" + ctl.tail())
