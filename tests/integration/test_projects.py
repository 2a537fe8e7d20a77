"""Projects on the real control plane and the real git server: ``tether app sync`` (no
controller) refuses an app outside its Project — a repository not allowed, a destination
outside, a ClusterRole in the render, a namespace that may not use the project, a project
that does not exist — with a ProjectViolation condition and the operation saying why, and
nothing applied, nothing pruned. An app of the default project (none exists) syncs as before.

Every Project is cluster-scoped: each test makes its own, under a unique name, and deletes it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import yaml
from devcluster.gitserver import RepoHandle

from cluster_helpers import app_status, cm_yaml, condition, new_app, run_tether
from tether.api.application import API_VERSION
from tether.api.project import PROJECT_API_VERSION, PROJECT_KIND
from tether.errors import KubeError
from tether.kube import KubeClient
from tether.model import Obj

MakeProject = Callable[..., Awaitable[str]]


def cluster_role_yaml(name: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        }
    )


@pytest.fixture
async def make_project(kube: KubeClient) -> AsyncIterator[MakeProject]:
    """Creates Projects with unique names (``spec`` as given); deletes them afterwards."""
    await kube.wait_for_resource(PROJECT_API_VERSION, PROJECT_KIND)
    made: list[str] = []

    async def make(**spec: Any) -> str:
        name = f"p-{uuid.uuid4().hex[:10]}"
        obj = {
            "apiVersion": PROJECT_API_VERSION,
            "kind": PROJECT_KIND,
            "metadata": {"name": name},
            "spec": spec,
        }
        await kube.create(obj)
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            await kube.delete(PROJECT_API_VERSION, PROJECT_KIND, name)
        except KubeError as e:
            if e.status != 404:
                raise


def allowing(home: str, repo: RepoHandle, dest: str, **more: Any) -> dict[str, Any]:
    """A Project spec that lets Applications of ``home`` deploy ``repo`` into ``dest``."""
    return {
        "sourceRepos": [repo.http_url],
        "destinations": [{"namespace": dest}],
        "sourceNamespaces": [home],
        **more,
    }


async def create_app(kube: KubeClient, home: str, repo: RepoHandle, dest: str, project: str) -> Obj:
    obj = new_app("web", home, repo.http_url, dest, auto_sync=False, prune=False)
    if project:
        obj["spec"]["project"] = project
    return await kube.create(obj)


async def sync(kubeconfig: str, home: str, *extra: str) -> tuple[int, str]:
    return await run_tether(kubeconfig, "-n", home, "app", "sync", "web", "--timeout", "0", *extra)


async def refused(kube: KubeClient, kubeconfig: str, home: str, says: str) -> dict[str, Any]:
    """Syncs with the CLI; asserts it failed saying ``says``, in its output, in the
    operation state and in a ProjectViolation condition. Returns the status."""
    code, out = await sync(kubeconfig, home)
    assert code != 0, out
    assert says in out, out
    st = await app_status(kube, home, "web")
    op = st["operationState"]
    assert op["phase"] == "Failed" and says in op["message"], op
    assert op["syncResult"]["resources"] == []
    c = condition(st, "ProjectViolation")
    assert c is not None and says in c["message"], st.get("conditions")
    assert c["reason"] == "ProjectViolation"
    assert st["sync"]["status"] == "Unknown"
    return st


async def absent(kube: KubeClient, api_version: str, kind: str, name: str, ns: str = "") -> bool:
    return await kube.get(api_version, kind, name, ns) is None


async def refused_app(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    dest: str,
    repo: RepoHandle,
    project: str,
    says: str,
    files: dict[str, str | None] | None = None,
) -> None:
    """An app of ``project`` deploying ``files`` (by default one ConfigMap, ``settings``)
    from ``repo`` into ``dest``: its sync is refused saying ``says`` (``refused``), and
    ``settings`` is not applied."""
    repo.commit(files or {"app/cm.yaml": cm_yaml("settings", {"color": "blue"})})
    await create_app(kube, home, repo, dest, project)
    await refused(kube, kubeconfig, home, says)
    assert await absent(kube, "v1", "ConfigMap", "settings", dest)


async def test_a_repository_not_in_source_repos_is_refused_and_nothing_applied(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    make_project: MakeProject,
) -> None:
    project = await make_project(
        **allowing(home, git_repo, namespace, sourceRepos=["http://git.example.com/team-a/*"])
    )
    says = (
        f"project {project} does not allow source repository {git_repo.http_url} "
        "(sourceRepos: http://git.example.com/team-a/*)"
    )
    await refused_app(kube, kubeconfig, home, namespace, git_repo, project, says)
    # `tether app get` shows the refusal as a condition naming the rule.
    code, out = await run_tether(kubeconfig, "-n", home, "app", "get", "web")
    assert code == 0, out
    assert "ProjectViolation: project" in out and "sourceRepos:" in out
    assert f"Project:     {project}\n" in out
    # The diff says so too, and fails.
    code, out = await run_tether(kubeconfig, "-n", home, "app", "diff", "web")
    assert code == 2 and "does not allow source repository" in out, out


async def test_a_destination_outside_the_project_is_refused(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    make_project: MakeProject,
) -> None:
    project = await make_project(
        **allowing(home, git_repo, namespace, destinations=[{"namespace": "team-a-*"}])
    )
    says = (
        f"project {project} does not allow destination namespace {namespace} "
        "(destinations: team-a-*)"
    )
    await refused_app(kube, kubeconfig, home, namespace, git_repo, project, says)


async def test_a_cluster_role_in_the_render_fails_the_sync_before_anything_is_applied(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    make_project: MakeProject,
) -> None:
    git_repo.commit(
        {
            "app/a.yaml": cm_yaml("a", {"v": "1"}),
            "app/b.yaml": cm_yaml("b", {"v": "1"}),
        }
    )
    project = await make_project(**allowing(home, git_repo, namespace))
    await create_app(kube, home, git_repo, namespace, project)
    code, out = await sync(kubeconfig, home, "--prune")
    assert code == 0, out
    before = await kube.get("v1", "ConfigMap", "a", namespace)
    assert before is not None and await kube.get("v1", "ConfigMap", "b", namespace) is not None

    # A commit changes a, drops b (a prune) and adds a ClusterRole: refused as a whole.
    role = f"{namespace}-reader"
    git_repo.commit(
        {
            "app/a.yaml": cm_yaml("a", {"v": "2"}),
            "app/b.yaml": None,
            "app/role.yaml": cluster_role_yaml(role),
        }
    )
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "sync", "web", "--prune", "--timeout", "0"
    )
    assert code != 0, out
    says = (
        f"app/role.yaml:1: project {project} does not allow cluster-scoped ClusterRole {role} "
        "(clusterResourceWhitelist is empty: no cluster-scoped kind is allowed)"
    )
    assert says in out, out
    st = await app_status(kube, home, "web")
    assert st["operationState"]["phase"] == "Failed" and says in st["operationState"]["message"]
    assert condition(st, "ProjectViolation") is not None
    assert await absent(kube, "rbac.authorization.k8s.io/v1", "ClusterRole", role)
    after = await kube.get("v1", "ConfigMap", "a", namespace)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["data"] == {"v": "1"}
    assert await kube.get("v1", "ConfigMap", "b", namespace) is not None  # not pruned


async def test_an_app_in_a_namespace_that_may_not_use_the_project_is_refused(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    make_project: MakeProject,
) -> None:
    project = await make_project(**allowing(home, git_repo, namespace, sourceNamespaces=["team-a"]))
    says = (
        f"project {project} does not allow Applications in namespace {home} "
        "(sourceNamespaces: team-a)"
    )
    await refused_app(kube, kubeconfig, home, namespace, git_repo, project, says)


async def test_a_project_that_does_not_exist_is_refused(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    make_project: MakeProject,
) -> None:
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    says = f'project "{missing}" not found'
    await refused_app(kube, kubeconfig, home, namespace, git_repo, missing, says)


async def test_the_default_project_keeps_todays_behaviour(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
) -> None:
    """No Project named default exists (no test creates one: it would govern every app of
    the shared cluster): an app naming no project deploys anything, cluster-scoped kinds
    included, from any repository into any namespace, as before Projects."""
    assert await kube.get(PROJECT_API_VERSION, PROJECT_KIND, "default") is None
    role = f"{namespace}-reader"
    git_repo.commit(
        {
            "app/cm.yaml": cm_yaml("settings", {"color": "blue"}),
            "app/role.yaml": cluster_role_yaml(role),
        }
    )
    await create_app(kube, home, git_repo, namespace, project="")
    try:
        code, out = await sync(kubeconfig, home)
        assert code == 0, out
        assert not await absent(kube, "rbac.authorization.k8s.io/v1", "ClusterRole", role)
        assert not await absent(kube, "v1", "ConfigMap", "settings", namespace)
        st = await app_status(kube, home, "web")
        assert st["operationState"]["phase"] == "Succeeded"
        assert condition(st, "ProjectViolation") is None
    finally:
        try:
            await kube.delete("rbac.authorization.k8s.io/v1", "ClusterRole", role)
        except KubeError as e:
            if e.status != 404:
                raise
    app = await kube.get(API_VERSION, "Application", "web", home)
    assert app is not None and "project" not in app["spec"]


async def test_a_hook_outside_the_destinations_fails_the_sync_before_any_hook_runs(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    make_project: MakeProject,
) -> None:
    """Hooks are part of the render the project judges: a PreSync hook that names a
    namespace outside the destinations fails the sync before the hook (or anything) runs."""
    hook = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "pre",
            "namespace": home,
            "annotations": {"tether.dev/hook": "PreSync"},
        },
        "data": {"k": "v"},
    }
    files: dict[str, str | None] = {
        "app/cm.yaml": cm_yaml("settings", {"color": "blue"}),
        "app/hook.yaml": yaml.safe_dump(hook),
    }
    project = await make_project(**allowing(home, git_repo, namespace))
    says = (
        f"app/hook.yaml:1: project {project} does not allow ConfigMap {home}/pre: namespace "
        f"{home} is not among its destinations (destinations: {namespace})"
    )
    await refused_app(kube, kubeconfig, home, namespace, git_repo, project, says, files)
    assert await absent(kube, "v1", "ConfigMap", "pre", home)
