"""The requests a sync sends, counted on the real control plane: no read per new object (one
metadata list per type and namespace finds which exist), no server dry-run for a new object the
schema check vouches for (unless ``DryRunNewObjects=true``), an object that exists without the
app's label still found, diffed and adopted, with or without the live cache, and every API
group discovered only for a render that reads the cluster's facts."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from devcluster.gitserver import RepoHandle

from cluster_helpers import eventually
from source_apps import APPS_NS, apply_app, unique_name
from tether.api.application import API_VERSION, APP_LABEL, Application, crd_manifests
from tether.engine import Engine
from tether.kube import KubeClient, LiveCache, server_info
from tether.kube.config import load_config
from tether.model import ResourceDiffStatus, ResourceKey
from tether.source import GitCache


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def files(objs: list[dict[str, Any]]) -> dict[str, str]:
    return {"app/objects.yaml": yaml.safe_dump_all(objs)}


@pytest.fixture
async def client(kubeconfig: str) -> AsyncIterator[KubeClient]:
    """A client of this test's own, so its request counters hold this test's requests only."""
    k = await KubeClient.connect(kubeconfig)
    for crd in crd_manifests():
        await k.apply(crd)
    await k.wait_for_resource(API_VERSION, "Application")
    await k.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APPS_NS}})
    yield k
    await k.close()


async def new_app(
    engine: Engine, repo: RepoHandle, dest: str, *, options: list[str] | None = None
) -> Application:
    spec: dict[str, Any] = {
        "source": {"repoURL": f"file://{repo.path}", "targetRevision": "main", "path": "app"}
    }
    if options:
        spec["syncPolicy"] = {"syncOptions": options}
    return await apply_app(engine, unique_name("req"), dest, spec)


async def counted_sync(engine: Engine, app: Application) -> tuple[Any, Counter[tuple[str, int]]]:
    """Syncs ``app`` after a read-only compare (which pays discovery and the git fetch); the
    result and the requests the sync alone sent, by (verb, status)."""
    await engine.compare(app)
    before = Counter(engine.kube.requests)
    res = await engine.sync(app)
    sent = Counter(engine.kube.requests)
    sent.subtract(before)
    return res, +sent


async def delete_app(engine: Engine, app: Application) -> None:
    await engine.kube.delete(API_VERSION, "Application", app.name, app.namespace)


async def test_new_objects_cost_one_apply_each_and_no_reads(
    client: KubeClient,
    git_repo: RepoHandle,
    namespace: str,
    kube: KubeClient,
    tmp_path: Path,
) -> None:
    """A sync of 12 new objects sends the same reads as one of 2, and one write per object:
    no GET per object and no dry-run of objects the schema check vouches for."""
    engine = Engine(client, GitCache(tmp_path / "git"))
    extra = [f"{namespace}-s", f"{namespace}-b"]
    for ns in extra:
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    try:
        git_repo.commit(files([cm("warm-up", v="1")]), message="warm-up")
        warm_up = await new_app(engine, git_repo, namespace)
        assert (await engine.sync(warm_up)).ok  # discovery and schemas, once per client
        git_repo.commit(files([cm(f"small-{i}", v=str(i)) for i in range(2)]), message="small")
        small = await new_app(engine, git_repo, extra[0])
        res_small, sent_small = await counted_sync(engine, small)
        assert res_small.ok, res_small.message
        git_repo.commit(files([cm(f"big-{i}", v=str(i)) for i in range(12)]), message="big")
        big = await new_app(engine, git_repo, extra[1])
        res_big, sent_big = await counted_sync(engine, big)
        assert res_big.ok, res_big.message
        assert sorted(r.action for r in res_big.results) == ["created"] * 12

        def reads(sent: Counter[tuple[str, int]]) -> dict[int, int]:
            return {code: n for (verb, code), n in sent.items() if verb == "GET"}

        assert reads(sent_big) == reads(sent_small), (sent_small, sent_big)
        # One apply per new object, no dry-run: the only other writes are the app's status.
        assert sent_big[("PATCH", 201)] == 12, sent_big
        assert sent_small[("PATCH", 201)] == 2, sent_small
        for i in range(12):
            live = await kube.get("v1", "ConfigMap", f"big-{i}", extra[1])
            assert live is not None and live["data"] == {"v": str(i)}
        for a in (warm_up, small, big):
            await delete_app(engine, a)
    finally:
        for ns in extra:
            await kube.delete("v1", "Namespace", ns, propagation="Background")


class Recording(KubeClient):
    """The real client, remembering the verb and URL of each request it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, str]] = []

    async def _exchange(
        self,
        method: str,
        url: str,
        path: str,
        data: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> tuple[int, bytes, float | None]:
        self.sent.append((method, url))
        return await super()._exchange(method, url, path, data, headers, timeout)


@pytest.fixture
async def recording(kubeconfig: str, tmp_path: Path) -> AsyncIterator[tuple[Recording, Engine]]:
    """A client of this test's own that records what it sends, and an engine on it."""
    client = Recording(load_config(kubeconfig))
    try:
        yield client, Engine(client, GitCache(tmp_path / "git"))
    finally:
        await client.close()


async def test_a_first_sync_lists_each_type_once_and_a_later_one_only_the_apps_objects(
    recording: tuple[Recording, Engine], git_repo: RepoHandle, namespace: str
) -> None:
    """Before anything is deployed a type is listed once (which objects exist, labelled or
    not); once the inventory holds it, the app's labelled objects are listed instead."""
    client, engine = recording
    git_repo.commit(files([cm(f"cm-{i}", v=str(i)) for i in range(3)]))
    app = await new_app(engine, git_repo, namespace)
    await engine.compare(app)  # discovery, the git fetch
    lists = f"/api/v1/namespaces/{namespace}/configmaps"

    def listed(since: int) -> list[str]:
        return [u for m, u in client.sent[since:] if m == "GET" and lists in u]

    mark = len(client.sent)
    assert (await engine.sync(app)).ok
    first = listed(mark)
    assert len(first) == 1 and "labelSelector" not in first[0], first

    app = await engine.get_app(app.name, app.namespace)
    mark = len(client.sent)
    assert (await engine.sync(app)).ok
    again = listed(mark)
    assert len(again) == 1 and "labelSelector" in again[0], again
    await delete_app(engine, app)


async def test_dry_run_new_objects_option_dry_runs_every_new_object(
    client: KubeClient, git_repo: RepoHandle, namespace: str, tmp_path: Path
) -> None:
    engine = Engine(client, GitCache(tmp_path / "git"))
    git_repo.commit(files([cm(f"c-{i}", v=str(i)) for i in range(3)]), message="three")
    app = await new_app(engine, git_repo, namespace, options=["DryRunNewObjects=true"])
    res, sent = await counted_sync(engine, app)
    assert res.ok, res.message
    # A dry-run and an apply for each of the three new objects.
    assert sent[("PATCH", 201)] == 6, sent
    await delete_app(engine, app)


BAD_MANIFESTS = {
    "wrong type": {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": "many",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    },
    "unknown field": {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "bad"},
        "dataa": {"a": "1"},
    },
    "missing required field": {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"targetPort": 8080}]},
    },
}


@pytest.mark.parametrize("problem", sorted(BAD_MANIFESTS))
async def test_invalid_new_manifest_fails_with_nothing_applied_and_no_dry_runs(
    problem: str,
    client: KubeClient,
    git_repo: RepoHandle,
    namespace: str,
    kube: KubeClient,
    tmp_path: Path,
) -> None:
    engine = Engine(client, GitCache(tmp_path / "git"))
    good = [cm(f"good-{i}", v=str(i)) for i in range(3)]
    git_repo.commit(
        {**files(good), "app/bad.yaml": yaml.safe_dump(BAD_MANIFESTS[problem])}, message="bad"
    )
    app = await new_app(engine, git_repo, namespace)
    res, sent = await counted_sync(engine, app)
    assert not res.ok
    kind = BAD_MANIFESTS[problem]["kind"]
    assert "bad.yaml" in res.message and kind in res.message, res.message
    for i in range(3):
        assert await kube.get("v1", "ConfigMap", f"good-{i}", namespace) is None
    # Nothing applied, and the valid new objects were not dry-run either: no PATCH succeeded
    # but the app's own status writes (200), and at most the bad object's dry-run was refused.
    assert sent[("PATCH", 201)] == 0, sent
    refused = sum(n for (verb, code), n in sent.items() if verb == "PATCH" and code >= 400)
    assert refused <= 1, sent
    await delete_app(engine, app)


async def adopt_case(
    engine: Engine, git_repo: RepoHandle, namespace: str, kube: KubeClient
) -> None:
    """An object made by hand (no label) that Git also holds: compared as OutOfSync (not
    Missing), then adopted by the sync (configured, labelled)."""
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "by-hand", "namespace": namespace},
            "data": {"v": "old"},
        }
    )
    git_repo.commit(files([cm("by-hand", v="new"), cm("fresh", v="1")]), message="adopt")
    app = await new_app(engine, git_repo, namespace)
    key = ResourceKey("", "ConfigMap", namespace, "by-hand")
    cmp = await eventually(
        lambda: _out_of_sync(engine, app, key), what="the unlabelled object seen as OutOfSync"
    )
    assert cmp.resources[ResourceKey("", "ConfigMap", namespace, "fresh")].diff.status == (
        ResourceDiffStatus.MISSING
    )
    res = await engine.sync(app)
    assert res.ok, res.message
    actions = {r.key.name: r.action for r in res.results}
    assert actions == {"by-hand": "configured", "fresh": "created"}
    live = await kube.get("v1", "ConfigMap", "by-hand", namespace)
    assert live is not None and live["data"] == {"v": "new"}
    assert APP_LABEL in live["metadata"]["labels"]
    await delete_app(engine, app)


async def _out_of_sync(engine: Engine, app: Application, key: ResourceKey) -> Any:
    cmp = await engine.compare(app)
    state = cmp.resources.get(key)
    ok = state is not None and state.diff.status == ResourceDiffStatus.OUT_OF_SYNC
    return cmp if ok else None


async def test_unlabelled_object_is_found_and_adopted(
    client: KubeClient, git_repo: RepoHandle, namespace: str, kube: KubeClient, tmp_path: Path
) -> None:
    await adopt_case(Engine(client, GitCache(tmp_path / "git")), git_repo, namespace, kube)


async def test_unlabelled_object_is_found_and_adopted_through_the_cache(
    client: KubeClient, git_repo: RepoHandle, namespace: str, kube: KubeClient, tmp_path: Path
) -> None:
    cache = LiveCache(client, label_selector=APP_LABEL)
    try:
        engine = Engine(client, GitCache(tmp_path / "git"), cache=cache)
        await adopt_case(engine, git_repo, namespace, kube)
    finally:
        await cache.close()


async def test_cache_sees_an_unlabelled_object_created_later_without_a_read_per_object(
    client: KubeClient, git_repo: RepoHandle, namespace: str, kube: KubeClient, tmp_path: Path
) -> None:
    """With the cache, which objects exist comes from one key informer per type: comparing
    again sends no request for the missing objects, and one created by hand afterwards is
    seen (its key arrives by the watch) and read in full."""
    cache = LiveCache(client, label_selector=APP_LABEL)
    try:
        engine = Engine(client, GitCache(tmp_path / "git"), cache=cache)
        git_repo.commit(files([cm(f"later-{i}", v="git") for i in range(5)]), message="later")
        app = await new_app(engine, git_repo, namespace)
        cmp = await engine.compare(app)
        assert {s.diff.status for s in cmp.resources.values()} == {ResourceDiffStatus.MISSING}
        before = Counter(client.requests)
        cmp = await engine.compare(app)
        assert {s.diff.status for s in cmp.resources.values()} == {ResourceDiffStatus.MISSING}
        # The objects came from the cache: the only reads are those of every compare (the
        # app's Project and its repository credentials), none for the five missing objects.
        gets = {k: n - before[k] for k, n in client.requests.items() if k[0] == "GET"}
        assert sum(gets.values()) <= 2, gets
        await kube.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "later-3", "namespace": namespace},
                "data": {"v": "by-hand"},
            }
        )
        key = ResourceKey("", "ConfigMap", namespace, "later-3")
        cmp = await eventually(
            lambda: _out_of_sync(engine, app, key), what="the object made later seen"
        )
        assert cmp.live[key]["data"] == {"v": "by-hand"}
        await delete_app(engine, app)
    finally:
        await cache.close()


async def test_with_the_cache_a_namespace_it_has_seen_is_not_read_again(
    client: KubeClient, git_repo: RepoHandle, namespace: str, kube: KubeClient, tmp_path: Path
) -> None:
    """New objects need their namespace to exist. With the cache, one it has seen costs no
    read: a sync that creates objects sends the same reads as one that only changes them.
    One the cache has not seen yet is read, and a missing one still refused, nothing
    applied."""
    cache = LiveCache(client, label_selector=APP_LABEL)
    later = f"{namespace}-later"
    try:
        engine = Engine(client, GitCache(tmp_path / "git"), cache=cache)
        git_repo.commit(files([cm("warm-up", v="1")]), message="warm-up")
        warm_up = await new_app(engine, git_repo, namespace)
        assert (await engine.sync(warm_up)).ok  # discovery, schemas, the cache's informers

        git_repo.commit(files([cm(f"obj-{i}", v="1") for i in range(3)]), message="create")
        app = await new_app(engine, git_repo, namespace)
        created, sent_create = await counted_sync(engine, app)
        assert [r.action for r in created.results] == ["created"] * 3, created.message
        git_repo.commit(files([cm(f"obj-{i}", v="2") for i in range(3)]), message="change")
        stored = await kube.get(API_VERSION, "Application", app.name, app.namespace)
        assert stored is not None
        app = Application.from_obj(stored)
        changed, sent_change = await counted_sync(engine, app)
        assert [r.action for r in changed.results] == ["configured"] * 3, changed.message

        def reads(sent: Counter[tuple[str, int]]) -> dict[int, int]:
            return {code: n for (verb, code), n in sent.items() if verb == "GET"}

        assert reads(sent_create) == reads(sent_change), (sent_create, sent_change)

        # Made by hand just before the sync: read when the watch has not brought it yet.
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": later}})
        git_repo.commit(files([cm("late", v="1")]), message="late")
        res_late = await engine.sync(await new_app(engine, git_repo, later))
        assert res_late.ok, res_late.message
        assert await kube.get("v1", "ConfigMap", "late", later) is not None

        missing = f"{namespace}-missing"
        res_missing, sent_missing = await counted_sync(
            engine, await new_app(engine, git_repo, missing)
        )
        assert not res_missing.ok
        assert f"namespace {missing} does not exist" in res_missing.message, res_missing.message
        assert sent_missing[("PATCH", 201)] == 0, sent_missing
        assert await kube.get("v1", "Namespace", missing) is None
    finally:
        await cache.close()
        await kube.delete("v1", "Namespace", later, propagation="Background")


GROUPS = "/apis"
"""The list of every API group: the first read of a discovery of everything served."""


def read_paths(client: Recording) -> list[str]:
    return [urlsplit(u).path for m, u in client.sent if m == "GET"]


async def test_a_plain_directory_is_compared_without_discovering_every_api(
    recording: tuple[Recording, Engine], git_repo: RepoHandle, namespace: str
) -> None:
    """A plain directory's render reads none of the cluster's facts (its version and every
    API it serves, for Helm's Capabilities), so a compare with none cached, as in a one-off
    ``tether app diff``, discovers only the group-versions of the kinds it meets."""
    client, engine = recording
    server_info.forget()
    git_repo.commit(files([cm("cm-0", v="0")]))
    app = await new_app(engine, git_repo, namespace)
    cmp = await engine.compare(app)
    assert cmp.error is None, cmp.error
    assert cmp.resources, "the ConfigMap was compared"
    assert GROUPS not in read_paths(client), read_paths(client)
    await delete_app(engine, app)


async def test_a_kustomization_inflating_a_chart_renders_with_the_clusters_facts(
    recording: tuple[Recording, Engine], git_repo: RepoHandle, namespace: str
) -> None:
    """The same compare of a kustomization that inflates a Helm chart reads the facts: the
    chart sees the real server's version (.Capabilities.KubeVersion), not Helm's default."""
    client, engine = recording
    server_info.forget()
    git_repo.commit(
        {
            "app/charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
            "app/charts/web/values.yaml": "{}\n",
            "app/charts/web/templates/cm.yaml": (
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
                "data:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
            ),
            "app/kustomization.yaml": "helmCharts:\n- name: web\n  releaseName: rel\n",
        }
    )
    spec: dict[str, Any] = {
        "source": {
            "repoURL": f"file://{git_repo.path}",
            "targetRevision": "main",
            "path": "app",
            "kustomize": {"enableHelm": True},
        }
    }
    app = await apply_app(engine, unique_name("req"), namespace, spec)
    cmp = await engine.compare(app)
    assert cmp.error is None, cmp.error
    settings = ResourceKey("", "ConfigMap", namespace, "settings")
    served = (await client.request("GET", "/version"))["gitVersion"]
    assert cmp.desired_objects[settings]["data"] == {"kube": served}
    assert GROUPS in read_paths(client)
    await delete_app(engine, app)
