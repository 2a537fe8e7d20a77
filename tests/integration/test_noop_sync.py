"""A sync of an app whose inputs did not change reuses what the last one worked out (the
desired objects, the fast-path verdicts, the open git repository) and writes nothing; and
every input a reuse could hide is still seen by the very next sync, on the real control plane
and the real git server: a commit on the branch, a changed Application spec, a changed
Project, a live object changed by hand, a commit fetched after the repository was opened."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from devcluster.gitserver import RepoHandle

from source_apps import APPS_NS, apply_app, unique_name
from tether.api.application import API_VERSION, Application, crd_manifests
from tether.api.project import PROJECT_API_VERSION, PROJECT_KIND
from tether.engine import Engine
from tether.errors import SourceError
from tether.kube import KubeClient
from tether.model import ResourceDiffStatus, ResourceKey, SyncStatus
from tether.source import GitCache
from tether.source.failures import REASON_TIMEOUT


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def files(*objs: dict[str, Any], path: str = "app") -> dict[str, str]:
    return {f"{path}/objects.yaml": yaml.safe_dump_all(list(objs))}


@pytest.fixture
async def engine(kube: KubeClient, tmp_path: Path) -> Engine:
    """An engine of this test's own: its memo and caches start empty."""
    for crd in crd_manifests():
        await kube.apply(crd)
    await kube.wait_for_resource(API_VERSION, "Application")
    await kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APPS_NS}})
    return Engine(kube, GitCache(tmp_path / "git"))


async def new_app(
    engine: Engine, repo: RepoHandle, dest: str, path: str = "app", **spec: Any
) -> Application:
    source = {"repoURL": f"file://{repo.path}", "targetRevision": "main", "path": path}
    return await apply_app(engine, unique_name("noop"), dest, {"source": source, **spec})


async def resource_version(kube: KubeClient, name: str, namespace: str) -> str:
    live = await kube.get("v1", "ConfigMap", name, namespace)
    assert live is not None
    return str(live["metadata"]["resourceVersion"])


def applicable(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as read, made fit to apply again: its identity and spec."""
    meta = obj["metadata"]
    keep = {k: meta[k] for k in ("name", "namespace") if k in meta}
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": keep,
        "spec": obj["spec"],
    }


async def delete_app(engine: Engine, app: Application) -> None:
    await engine.kube.delete(API_VERSION, "Application", app.name, app.namespace)


async def test_a_second_sync_of_an_unchanged_app_reuses_its_desired_objects_and_writes_nothing(
    engine: Engine, kube: KubeClient, git_repo: RepoHandle, namespace: str
) -> None:
    git_repo.commit(files(cm("a", v="1"), cm("b", v="2")))
    app = await new_app(engine, git_repo, namespace)
    first = await engine.sync(app)
    assert first.ok, first.message
    rv = await resource_version(kube, "a", namespace)
    hits = engine.desired.memo.hits
    again = await engine.sync(await engine.get_app(app.name, app.namespace))
    assert again.ok, again.message
    assert again.changed() == [] and again.results  # every object considered, none written
    assert engine.desired.memo.hits == hits + 1
    assert again.comparison is not None
    assert again.comparison.sync_status == SyncStatus.SYNCED
    assert await resource_version(kube, "a", namespace) == rv
    await delete_app(engine, app)


async def test_the_next_sync_sees_a_commit_on_the_branch(
    engine: Engine, kube: KubeClient, git_repo: RepoHandle, namespace: str
) -> None:
    git_repo.commit(files(cm("a", v="1")))
    app = await new_app(engine, git_repo, namespace)
    assert (await engine.sync(app)).ok
    await engine.sync(await engine.get_app(app.name, app.namespace))  # now remembered
    hits = engine.desired.memo.hits
    sha = git_repo.commit(files(cm("a", v="2")))
    res = await engine.sync(await engine.get_app(app.name, app.namespace))
    assert res.ok, res.message
    assert res.revision == sha
    assert engine.desired.memo.hits == hits
    live = await kube.get("v1", "ConfigMap", "a", namespace)
    assert live is not None and live["data"] == {"v": "2"}
    await delete_app(engine, app)


async def test_the_next_sync_sees_a_changed_application_spec(
    engine: Engine, kube: KubeClient, git_repo: RepoHandle, namespace: str
) -> None:
    git_repo.commit({**files(cm("a", v="1")), **files(cm("other", v="1"), path="other")})
    app = await new_app(engine, git_repo, namespace)
    assert (await engine.sync(app)).ok
    assert (await engine.sync(await engine.get_app(app.name, app.namespace))).ok
    hits = engine.desired.memo.hits
    obj = await kube.get(API_VERSION, "Application", app.name, app.namespace)
    assert obj is not None
    obj["spec"]["source"]["path"] = "other"
    await kube.apply(applicable(obj))
    res = await engine.sync(await engine.get_app(app.name, app.namespace))
    assert res.ok, res.message
    assert engine.desired.memo.hits == hits
    assert await kube.get("v1", "ConfigMap", "other", namespace) is not None
    assert res.comparison is not None
    assert ResourceKey("", "ConfigMap", namespace, "other") in res.comparison.resources
    await delete_app(engine, app)


async def test_the_next_sync_honours_a_changed_project(
    engine: Engine, kube: KubeClient, git_repo: RepoHandle, namespace: str
) -> None:
    await kube.wait_for_resource(PROJECT_API_VERSION, PROJECT_KIND)
    project = f"p-{uuid.uuid4().hex[:10]}"
    spec = {
        "sourceRepos": ["*"],
        "destinations": [{"namespace": namespace}],
        "sourceNamespaces": [APPS_NS],
    }
    await kube.create(
        {
            "apiVersion": PROJECT_API_VERSION,
            "kind": PROJECT_KIND,
            "metadata": {"name": project},
            "spec": spec,
        }
    )
    try:
        git_repo.commit(files(cm("a", v="1")))
        app = await new_app(engine, git_repo, namespace, project=project)
        assert (await engine.sync(app)).ok
        assert (await engine.sync(await engine.get_app(app.name, app.namespace))).ok
        rv = await resource_version(kube, "a", namespace)
        # Nothing else changed, but ConfigMaps are no longer allowed: the next sync refuses,
        # and applies nothing.
        live = await kube.get(PROJECT_API_VERSION, PROJECT_KIND, project)
        assert live is not None
        live["spec"] = {**spec, "namespaceResourceBlacklist": [{"group": "", "kind": "ConfigMap"}]}
        await kube.apply(applicable(live))
        res = await engine.sync(await engine.get_app(app.name, app.namespace))
        assert not res.ok
        assert "ConfigMap" in res.message and project in res.message, res.message
        assert await resource_version(kube, "a", namespace) == rv
        await delete_app(engine, app)
    finally:
        await kube.delete(PROJECT_API_VERSION, PROJECT_KIND, project)


async def test_a_live_object_changed_by_hand_is_out_of_sync_at_the_next_compare(
    engine: Engine, kube: KubeClient, git_repo: RepoHandle, namespace: str
) -> None:
    git_repo.commit(files(cm("a", v="1")))
    app = await new_app(engine, git_repo, namespace)
    assert (await engine.sync(app)).ok
    app = await engine.get_app(app.name, app.namespace)
    assert (await engine.compare(app)).sync_status == SyncStatus.SYNCED  # verdict remembered
    live = await kube.get("v1", "ConfigMap", "a", namespace)
    assert live is not None
    await kube.merge_patch(live, {"data": {"v": "by hand"}}, field_manager="someone")
    cmp = await engine.compare(app)
    key = ResourceKey("", "ConfigMap", namespace, "a")
    assert cmp.resources[key].diff.status == ResourceDiffStatus.OUT_OF_SYNC
    assert (await engine.sync(app)).ok
    fixed = await kube.get("v1", "ConfigMap", "a", namespace)
    assert fixed is not None and fixed["data"] == {"v": "1"}
    await delete_app(engine, app)


async def test_a_commit_fetched_after_the_repository_was_opened_is_read(
    tmp_path: Path, git_repo: RepoHandle
) -> None:
    cache = GitCache(tmp_path / "git")
    url = f"file://{git_repo.path}"
    first = git_repo.commit({"app/a.yaml": "a: 1\n"})
    assert await cache.resolve(url, "main") == first
    await cache.fetch(url, None, first)
    assert cache.read_tree(url, first, "app").files == {"app/a.yaml": b"a: 1\n"}
    fetches = cache.fetch_count
    await cache.fetch(url, None, first)  # here already: no fetch
    assert cache.fetch_count == fetches
    second = git_repo.commit({"app/a.yaml": "a: 2\n", "app/b.yaml": "b: 1\n"})
    assert await cache.resolve(url, "main") == second
    await cache.fetch(url, None, second)
    assert cache.fetch_count == fetches + 1
    assert cache.read_tree(url, second, "app").files == {
        "app/a.yaml": b"a: 2\n",
        "app/b.yaml": b"b: 1\n",
    }
    assert cache.commit_info(url, second).sha == second


def hold_exclusive(lock: Path) -> subprocess.Popen[str]:
    """Another process holding ``lock`` exclusively (util-linux ``flock``), as one fetching."""
    proc = subprocess.Popen(
        ["flock", "-x", str(lock), "-c", "echo held; read _"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


async def test_a_commit_already_in_the_cache_is_not_held_up_by_a_fetch_elsewhere(
    tmp_path: Path, git_repo: RepoHandle
) -> None:
    """Finding a cached commit is a read: it does not wait for the lock that another
    process fetching into the same cache holds (a fetch of a new commit still does)."""
    cache = GitCache(tmp_path / "git")
    url = f"file://{git_repo.path}"
    sha = git_repo.commit({"a.yaml": "a: 1\n"})
    await cache.fetch(url, None, sha)
    lock = cache.root / f"{cache.repo_path(url).name}.lock"
    holder = hold_exclusive(lock)
    try:
        short = GitCache(cache.root, timeout=1)
        await short.fetch(url, None, sha)
        assert short.fetch_count == 0
        assert short.read_tree(url, sha).files == {"a.yaml": b"a: 1\n"}
        newer = git_repo.commit({"a.yaml": "a: 2\n"})
        with pytest.raises(SourceError) as err:
            await short.fetch(url, None, newer)
        assert err.value.reason == REASON_TIMEOUT
    finally:
        holder.communicate("")
