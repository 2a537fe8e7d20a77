"""Drift in lists is judged by the merge keys the real API server uses: volumeMounts by
mountPath, container ports by containerPort and protocol, RoleBinding subjects as one whole."""

from __future__ import annotations

from test_engine import AppFixture, app, engine, repo_secret  # noqa: F401  (fixtures)

from cluster_helpers import WEB_DEPLOYMENT_HEAD
from tether.engine import Engine
from tether.kube import KubeClient
from tether.model import ResourceDiffStatus, ResourceKey

DEPLOYMENT = (
    WEB_DEPLOYMENT_HEAD
    + """\
    spec:
      volumes: [{name: data, emptyDir: {}}]
      containers:
        - name: web
          image: registry.example.com/web:1
          ports:
            - {name: http, containerPort: 8080}
            - {name: dns, containerPort: 53, protocol: UDP}
          volumeMounts:
            - {name: data, mountPath: /srv/data}
"""
)

ROLEBINDING = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: web-view}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
  - {kind: ServiceAccount, name: web}
"""


def web_container(**fields: object) -> dict[str, object]:
    """An apply configuration of just the web container, for another field manager."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", **fields}]}}},
    }


async def web_drift(eng: Engine, fx: AppFixture) -> tuple[ResourceDiffStatus, list[str]]:
    cmp = await eng.compare(await fx.get())
    diff = cmp.resources[ResourceKey("apps", "Deployment", fx.dest, "web")].diff
    return diff.status, diff.changed_paths


async def test_volume_mounts_and_ports_drift_is_keyed_as_the_server_merges(
    engine: Engine,  # noqa: F811
    app: AppFixture,  # noqa: F811
    kube: KubeClient,
) -> None:
    app.repo.commit({"app/deploy.yaml": DEPLOYMENT})
    assert (await engine.sync(await app.create())).ok
    assert await web_drift(engine, app) == (ResourceDiffStatus.SYNCED, [])

    # Another manager mounts the same volume a second time: the server merges it in by
    # mountPath, next to Git's mount. Not drift: no sync would remove it.
    debug = web_container(volumeMounts=[{"name": "data", "mountPath": "/debug"}])
    debug["metadata"]["namespace"] = app.dest  # type: ignore[index]
    await kube.apply(debug, field_manager="debugger", force=False)
    live = await kube.get("apps/v1", "Deployment", "web", app.dest)
    assert live is not None
    mounts = live["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert sorted(m["mountPath"] for m in mounts) == ["/debug", "/srv/data"]
    assert await web_drift(engine, app) == (ResourceDiffStatus.SYNCED, [])

    # Someone renames the UDP port by hand: drift, named by the port's server keys.
    ports = [{"containerPort": 53, "protocol": "UDP", "name": "domain"}]
    renamed = web_container(ports=ports)
    renamed["metadata"]["namespace"] = app.dest  # type: ignore[index]
    await kube.apply(renamed, field_manager="kubectl-edit", force=True)

    status, paths = await web_drift(engine, app)
    assert status is ResourceDiffStatus.OUT_OF_SYNC
    assert paths == [
        "spec.template.spec.containers[name=web].ports[containerPort=53,protocol=UDP].name"
    ]

    assert (await engine.sync(await app.get())).ok
    assert await web_drift(engine, app) == (ResourceDiffStatus.SYNCED, [])


async def test_a_subject_added_by_hand_to_a_role_binding_is_drift(
    engine: Engine,  # noqa: F811
    app: AppFixture,  # noqa: F811
    kube: KubeClient,
) -> None:
    app.repo.commit({"app/rb.yaml": ROLEBINDING})
    assert (await engine.sync(await app.create())).ok
    live = await kube.get("rbac.authorization.k8s.io/v1", "RoleBinding", "web-view", app.dest)
    assert live is not None
    subjects = [*live["subjects"], {"kind": "User", "name": "mallory"}]
    await kube.merge_patch(live, {"subjects": subjects}, field_manager="kubectl-edit")

    cmp = await engine.compare(await app.get())
    diff = cmp.resources[
        ResourceKey("rbac.authorization.k8s.io", "RoleBinding", app.dest, "web-view")
    ].diff

    assert diff.status is ResourceDiffStatus.OUT_OF_SYNC
    assert diff.changed_paths == ["subjects[1]"]
    assert "mallory" in diff.diff_text
