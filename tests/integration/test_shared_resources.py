"""Which app owns an object: the app label carries the app's namespace, and an object another
app tracks is reported on both apps' terms: taken over with a warning by default, as Argo CD
does, refused with ``FailOnSharedResource=true``."""

from __future__ import annotations

import uuid

from devcluster.gitserver import GitServer
from own_namespace_app import app, engine, home
from test_engine import AppFixture, cm

from tether.api.application import API_VERSION, Application, new_application
from tether.engine import Engine
from tether.kube import KubeClient
from tether.model import ResourceDiffStatus, ResourceKey, SyncStatus
from tether.sync.tracking import label_selector

# Named so that pytest sees these fixtures in this module.
_FIXTURES = (app, engine, home)


async def second_app(
    engine: Engine,
    git_server: GitServer,
    name: str,
    namespace: str,
    dest: str,
    files: dict[str, str],
    options: list[str] | None = None,
) -> Application:
    """Another Application (own repository) in ``namespace``, deploying ``files`` to ``dest``.
    Its repoURL carries the token, so ``namespace`` needs no credentials Secret."""
    repo = git_server.create_repo(f"second-{uuid.uuid4().hex[:8]}")
    repo.commit(files)
    url = git_server.http_url_with_token(repo.name)
    obj = new_application(
        name, namespace, repo_url=url, path="app", dest_namespace=dest, sync_options=options
    )
    await engine.kube.apply(obj)
    return await engine.get_app(name, namespace)


async def test_same_app_name_in_two_namespaces_marks_objects_apart(
    app: AppFixture, kube: KubeClient, git_server: GitServer
) -> None:
    # The twin app has the same name in another namespace (the destination), its objects
    # beside the first's.
    app.repo.commit({"app/mine.yaml": cm("mine", {"v": "1"})})
    assert (await app.engine.sync(await app.create())).ok
    twin = await second_app(
        app.engine, git_server, app.name, app.dest, app.dest, {"app/t.yaml": cm("twin", {})}
    )
    assert (await app.engine.sync(twin)).ok
    mine = await kube.get("v1", "ConfigMap", "mine", app.dest)
    theirs = await kube.get("v1", "ConfigMap", "twin", app.dest)
    assert mine is not None and theirs is not None
    assert mine["metadata"]["labels"]["tether.dev/app"] == f"{app.namespace}_{app.name}"
    assert theirs["metadata"]["labels"]["tether.dev/app"] == f"{app.dest}_{app.name}"
    listed, _ = await kube.list(
        "v1", "ConfigMap", app.dest, label_selector=f"tether.dev/app={app.namespace}_{app.name}"
    )
    assert [o["metadata"]["name"] for o in listed] == ["mine"]


async def test_object_of_another_app_is_reported_and_taken_over_by_default(
    app: AppFixture, kube: KubeClient, git_server: GitServer
) -> None:
    app.repo.commit({"app/shared.yaml": cm("shared", {"v": "1"})})
    assert (await app.engine.sync(await app.create())).ok
    other_name = f"other-{uuid.uuid4().hex[:6]}"
    other = await second_app(
        app.engine,
        git_server,
        other_name,
        app.namespace,
        app.dest,
        {"app/shared.yaml": cm("shared", {"v": "2"}), "app/own.yaml": cm("own", {"v": "1"})},
    )
    try:
        key = ResourceKey("", "ConfigMap", app.dest, "shared")
        first, second = f"{app.namespace}/{app.name}", f"{app.namespace}/{other_name}"
        res = await app.engine.sync(other)
        assert res.ok, res.message
        taken = next(r for r in res.results if r.key == key)
        assert taken.action == "configured"
        assert f"taken over from application {first}" in taken.message
        st = (await app.engine.get_app(other_name, app.namespace)).status
        warning = next(c for c in st["conditions"] if c["type"] == "SharedResourceWarning")
        assert f"part of applications {first} and {second}" in warning["message"]
        assert "FailOnSharedResource=true" in warning["message"]
        assert any(i["name"] == "shared" for i in st["inventory"])
        live = await kube.get("v1", "ConfigMap", "shared", app.dest)
        assert live is not None and live["data"] == {"v": "2"}
        assert live["metadata"]["annotations"]["tether.dev/tracking-id"].startswith(
            f"{app.namespace}_{other_name}:"
        )
        # Now the first app is the one that finds it tracked by the other.
        cmp = await app.engine.compare(await app.get())
        assert cmp.resources[key].message == f"tracked by application {second}, not this app"
        assert [c.type for c in cmp.conditions] == ["SharedResourceWarning"]
    finally:
        await kube.delete(API_VERSION, "Application", other_name, app.namespace)


async def test_fail_on_shared_resource_refuses_and_takes_nothing_over(
    app: AppFixture, kube: KubeClient, git_server: GitServer
) -> None:
    app.repo.commit({"app/shared.yaml": cm("shared", {"v": "1"})})
    assert (await app.engine.sync(await app.create())).ok
    before = await kube.get("v1", "ConfigMap", "shared", app.dest)
    assert before is not None
    other_name = f"other-{uuid.uuid4().hex[:6]}"
    other = await second_app(
        app.engine,
        git_server,
        other_name,
        app.namespace,
        app.dest,
        {"app/shared.yaml": cm("shared", {"v": "2"}), "app/own.yaml": cm("own", {"v": "1"})},
        ["FailOnSharedResource=true"],
    )
    try:
        key = ResourceKey("", "ConfigMap", app.dest, "shared")
        both = f"part of applications {app.namespace}/{app.name} and {app.namespace}/{other_name}"
        cmp = await app.engine.compare(other)
        warnings = [c for c in cmp.conditions if c.type == "SharedResourceWarning"]
        assert len(warnings) == 1 and both in warnings[0].message, cmp.conditions
        assert (
            cmp.resources[key].message
            == f"tracked by application {app.namespace}/{app.name}, not this app"
        )

        res = await app.engine.sync(other)
        assert not res.ok and both in res.message
        assert {(r.key.name, r.action) for r in res.results} == {("shared", "failed")}
        after = await kube.get("v1", "ConfigMap", "shared", app.dest)
        assert after is not None
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert await kube.get("v1", "ConfigMap", "own", app.dest) is None  # nothing applied
        st = (await app.engine.get_app(other_name, app.namespace)).status
        assert any(
            c["type"] == "SharedResourceWarning" and both in c["message"] for c in st["conditions"]
        )
        assert not any(i["name"] == "shared" for i in st.get("inventory") or [])
        # The owner is unaffected.
        assert (await app.engine.compare(await app.get())).sync_status == SyncStatus.SYNCED

        # Handing it over, as the message says: out of the first app's Git, then unmark it.
        app.repo.commit({"app/shared.yaml": None, "app/keep.yaml": cm("keep", {})})
        assert (await app.engine.sync(await app.get())).ok
        await kube.merge_patch(
            after, {"metadata": {"annotations": {"tether.dev/tracking-id": None}}}
        )
        res = await app.engine.sync(await app.engine.get_app(other_name, app.namespace))
        assert res.ok, res.message
        now = await kube.get("v1", "ConfigMap", "shared", app.dest)
        assert now is not None and now["data"] == {"v": "2"}
        assert now["metadata"]["annotations"]["tether.dev/tracking-id"].startswith(
            f"{app.namespace}_{other_name}:"
        )
    finally:
        await kube.delete(API_VERSION, "Application", other_name, app.namespace)


async def test_object_left_by_a_deleted_app_is_adopted(
    app: AppFixture, kube: KubeClient, git_server: GitServer
) -> None:
    app.repo.commit({"app/left.yaml": cm("left", {"v": "1"})})
    assert (await app.engine.sync(await app.create())).ok
    await kube.delete(API_VERSION, "Application", app.name, app.namespace)  # --orphan
    heir_name = f"heir-{uuid.uuid4().hex[:6]}"
    heir = await second_app(
        app.engine, git_server, heir_name, app.namespace, app.dest, {"app/l.yaml": cm("left", {})}
    )
    try:
        res = await app.engine.sync(heir)
        assert res.ok, res.message
        live = await kube.get("v1", "ConfigMap", "left", app.dest)
        assert live is not None
        assert live["metadata"]["annotations"]["tether.dev/tracking-id"].startswith(
            f"{app.namespace}_{heir_name}:"
        )
    finally:
        await kube.delete(API_VERSION, "Application", heir_name, app.namespace)


async def test_objects_labelled_in_the_older_form_stay_found_synced_and_owned(
    app: AppFixture, kube: KubeClient
) -> None:
    app.repo.commit({"app/a.yaml": cm("a", {"v": "1"})})
    assert (await app.engine.sync(await app.create())).ok
    live = await kube.get("v1", "ConfigMap", "a", app.dest)
    assert live is not None
    # As an earlier tether labelled it: the app name alone.
    await kube.merge_patch(live, {"metadata": {"labels": {"tether.dev/app": app.name}}})
    a = await app.get()
    listed, _ = await kube.list("v1", "ConfigMap", app.dest, label_selector=label_selector(a))
    assert [o["metadata"]["name"] for o in listed] == ["a"], "not found by its older label"
    plain = Engine(kube, app.engine.git)  # no watch cache: it finds objects by that label
    cmp = await plain.compare(a)
    assert cmp.sync_status == SyncStatus.SYNCED, [d.changed_paths for d in cmp.diffs()]
    rs = cmp.resources[ResourceKey("", "ConfigMap", app.dest, "a")]
    assert rs.diff.status == ResourceDiffStatus.SYNCED
    # Still the app's to delete.
    assert await plain.delete_owned(a) == [ResourceKey("", "ConfigMap", app.dest, "a")]
