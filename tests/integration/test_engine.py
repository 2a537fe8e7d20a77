"""The engine core against the real control plane and git server: sync, diff, prune, health."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from devcluster.gitserver import GitServer, RepoHandle

from tether.api.application import API_VERSION, Application, crd_manifests, new_application
from tether.engine import Engine
from tether.kube import KubeClient
from tether.model import HealthStatus, ResourceDiffStatus, ResourceKey, SyncStatus
from tether.source import GitCache

REPO = Path(__file__).resolve().parents[2]
TETHER = str(REPO / ".venv" / "bin" / "tether")
APPS_NS = "tether-system"


def cm(name: str, data: dict[str, str], annotations: dict[str, str] | None = None) -> str:
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})


def deployment(
    name: str, image: str = "nginx:1.27", replicas: int = 2, deadline: int | None = None
) -> str:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080}]}]
            },
        },
    }
    if deadline is not None:
        spec["progressDeadlineSeconds"] = deadline
    return yaml.safe_dump(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}
    )


SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


@pytest.fixture(scope="session")
async def engine(kube: KubeClient, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    for crd in crd_manifests():
        await kube.apply(crd)
    await kube.wait_for_resource(API_VERSION, "Application")
    await kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APPS_NS}})
    return Engine(kube, GitCache(tmp_path_factory.mktemp("gitcache")))


@pytest.fixture(scope="session")
async def repo_secret(kube: KubeClient, git_server: GitServer, engine: Engine) -> str:
    """Credentials for every repo on the test server, as a labelled Secret."""
    base = git_server.http_url("x").rsplit("/", 1)[0]
    data = {"url": base, "username": "git", "password": git_server.token}
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "test-git-creds",
                "namespace": APPS_NS,
                "labels": {"tether.dev/secret-type": "repository"},
            },
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
    )
    return base


class AppFixture:
    def __init__(
        self, engine: Engine, repo: RepoHandle, name: str, dest: str, namespace: str = APPS_NS
    ) -> None:
        self.engine, self.repo, self.name, self.dest = engine, repo, name, dest
        self.namespace = namespace
        """Where the Application lives (its repository credentials must be there too)."""

    async def create(self, **kw: Any) -> Application:
        obj = new_application(
            self.name,
            self.namespace,
            repo_url=kw.pop("repo_url", self.repo.http_url),
            path=kw.pop("path", "app"),
            dest_namespace=self.dest,
            **kw,
        )
        await self.engine.kube.apply(obj)
        return await self.get()

    async def get(self) -> Application:
        return await self.engine.get_app(self.name, self.namespace)


@pytest.fixture
async def app(
    engine: Engine, repo_secret: str, git_repo: RepoHandle, namespace: str
) -> AsyncIterator[AppFixture]:
    fx = AppFixture(engine, git_repo, f"app-{uuid.uuid4().hex[:8]}", namespace)
    yield fx
    await engine.kube.delete(API_VERSION, "Application", fx.name, APPS_NS, propagation="Background")


async def wait_health(
    engine: Engine, a: AppFixture, want: HealthStatus, timeout: float = 60
) -> HealthStatus:
    cmp = await engine.wait_healthy(await a.get(), timeout)
    deadline = asyncio.get_running_loop().time() + timeout
    while cmp.health.status != want and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        cmp = await engine.compare(await a.get())
    return cmp.health.status


# ---- create → sync → healthy ----------------------------------------------------------------


async def test_create_sync_healthy(engine: Engine, app: AppFixture, kube: KubeClient) -> None:
    sha = app.repo.commit(
        {
            "app/cm.yaml": cm("settings", {"mode": "blue"}),
            "app/deploy.yaml": deployment("web"),
            "app/svc.yaml": SERVICE,
        },
        message="first version",
        author=("Alice", "alice@example.com"),
    )
    a = await app.create()
    res = await engine.sync(a)
    assert res.ok, res.message
    assert {r.action for r in res.results} == {"created"}
    assert len(res.results) == 3

    assert await wait_health(engine, app, HealthStatus.HEALTHY) == HealthStatus.HEALTHY
    a = await app.get()
    await engine.write_status(a, await engine.compare(a))
    st = (await app.get()).status
    assert st["sync"] == {"status": "Synced", "revision": sha}
    assert st["health"]["status"] == "Healthy"
    assert {(i["kind"], i["name"]) for i in st["inventory"]} == {
        ("ConfigMap", "settings"),
        ("Deployment", "web"),
        ("Service", "web"),
    }
    assert st["history"][0]["revision"] == sha
    assert st["history"][0]["author"] == "Alice <alice@example.com>"
    assert st["history"][0]["message"] == "first version"
    assert st["operationState"]["phase"] == "Succeeded"
    live = await kube.get("v1", "ConfigMap", "settings", app.dest)
    assert live is not None
    assert live["metadata"]["labels"]["tether.dev/app"] == f"{APPS_NS}_{app.name}"
    assert live["metadata"]["annotations"]["tether.dev/tracking-id"] == (
        f"{APPS_NS}_{app.name}:/ConfigMap:{app.dest}/settings"
    )

    # A second sync with nothing changed writes nothing.
    before = kube.write_requests
    res2 = await engine.sync(await app.get(), write_status=False)
    assert res2.ok and not res2.changed()
    assert kube.write_requests == before


async def test_git_change_shows_out_of_sync_then_syncs(engine: Engine, app: AppFixture) -> None:
    app.repo.commit({"app/cm.yaml": cm("settings", {"mode": "blue"})})
    a = await app.create()
    assert (await engine.sync(a)).ok
    sha2 = app.repo.commit(
        {"app/cm.yaml": cm("settings", {"mode": "green"})}, message="switch to green"
    )
    cmp = await engine.compare(await app.get())
    assert cmp.revision == sha2
    assert cmp.sync_status == SyncStatus.OUT_OF_SYNC
    d = cmp.resources[ResourceKey("", "ConfigMap", app.dest, "settings")].diff
    assert d.status == ResourceDiffStatus.OUT_OF_SYNC
    assert d.changed_paths == ["data.mode"]
    assert "-  mode: blue" in d.diff_text and "+  mode: green" in d.diff_text
    res = await engine.sync(await app.get())
    assert res.ok and [r.action for r in res.changed()] == ["configured"]
    assert (await engine.compare(await app.get())).sync_status == SyncStatus.SYNCED


async def test_live_drift_detected_and_corrected(
    engine: Engine, app: AppFixture, kube: KubeClient
) -> None:
    app.repo.commit({"app/deploy.yaml": deployment("web", replicas=2)})
    assert (await engine.sync(await app.create())).ok
    live = await kube.get("apps/v1", "Deployment", "web", app.dest)
    assert live is not None
    await kube.merge_patch(live, {"spec": {"replicas": 5}})
    cmp = await engine.compare(await app.get())
    d = cmp.resources[ResourceKey("apps", "Deployment", app.dest, "web")].diff
    assert d.status == ResourceDiffStatus.OUT_OF_SYNC
    assert d.changed_paths == ["spec.replicas"]
    assert (await engine.sync(await app.get())).ok
    live = await kube.get("apps/v1", "Deployment", "web", app.dest)
    assert live is not None and live["spec"]["replicas"] == 2


async def test_prune_only_when_enabled_and_prune_false_respected(
    engine: Engine, app: AppFixture, kube: KubeClient
) -> None:
    keep = {"tether.dev/sync-options": "Prune=false"}
    app.repo.commit(
        {
            "app/a.yaml": cm("a", {"x": "1"}),
            "app/b.yaml": cm("b", {"x": "1"}),
            "app/c.yaml": cm("c", {"x": "1"}, annotations=keep),
            "app/d.yaml": cm("d", {"x": "1"}),
            "app/e.yaml": cm("e", {"x": "1"}),
        }
    )
    assert (await engine.sync(await app.create())).ok
    app.repo.commit({"app/b.yaml": None, "app/c.yaml": None})

    res = await engine.sync(await app.get())  # prune off
    assert res.ok
    skipped = {r.key.name: r.action for r in res.results if r.action in ("skipped", "kept")}
    assert skipped == {"b": "skipped", "c": "kept"}
    assert await kube.get("v1", "ConfigMap", "b", app.dest) is not None
    cmp = await engine.compare(await app.get())
    assert cmp.resources[ResourceKey("", "ConfigMap", app.dest, "b")].diff.status == (
        ResourceDiffStatus.EXTRANEOUS
    )
    assert cmp.sync_status == SyncStatus.OUT_OF_SYNC

    res = await engine.sync(await app.get(), prune=True)
    assert res.ok, res.message
    assert [r.key.name for r in res.results if r.action == "pruned"] == ["b"]

    async def b_gone() -> bool:
        return await kube.get("v1", "ConfigMap", "b", app.dest) is None

    for _ in range(50):
        if await b_gone():
            break
        await asyncio.sleep(0.2)
    assert await b_gone()
    assert await kube.get("v1", "ConfigMap", "c", app.dest) is not None  # Prune=false


async def test_mass_prune_blocked(engine: Engine, app: AppFixture, kube: KubeClient) -> None:
    app.repo.commit({f"app/{n}.yaml": cm(n, {"x": "1"}) for n in "abcd"})
    assert (await engine.sync(await app.create())).ok
    app.repo.commit({"app/a.yaml": None, "app/b.yaml": None, "app/c.yaml": None})
    res = await engine.sync(await app.get(), prune=True)
    assert not res.ok
    assert "3 of the 4" in res.message
    st = (await app.get()).status
    assert any(c["type"] == "PruneBlocked" for c in st["conditions"])
    for n in "abcd":
        assert await kube.get("v1", "ConfigMap", n, app.dest) is not None
    # An empty render never wipes the app either.
    app.repo.commit({"app/d.yaml": None, "app/README.md": "nothing here"})
    res = await engine.sync(await app.get(), prune=True)
    assert not res.ok and "empty" in res.message
    assert await kube.get("v1", "ConfigMap", "d", app.dest) is not None
    # Explicitly allowed, it goes through.
    res = await engine.sync(await app.get(), prune=True, allow_mass_prune=True)
    assert res.ok, res.message
    assert len([r for r in res.results if r.action == "pruned"]) == 4


async def test_object_owned_by_another_app_is_never_pruned(
    engine: Engine, app: AppFixture, kube: KubeClient, git_server: GitServer
) -> None:
    app.repo.commit(
        {
            "app/shared.yaml": cm("shared", {"v": "1"}),
            "app/mine.yaml": cm("mine", {"v": "1"}),
            "app/mine2.yaml": cm("mine2", {"v": "1"}),
        }
    )
    assert (await engine.sync(await app.create())).ok
    # "shared" is handed over to a second app (unmarked, then applied by it): its tracking
    # id now names the other app.
    other_repo = git_server.create_repo(f"other-{uuid.uuid4().hex[:6]}")
    other_repo.commit({"app/shared.yaml": cm("shared", {"v": "2"})})
    other = AppFixture(engine, other_repo, f"other-{uuid.uuid4().hex[:6]}", app.dest)
    shared = await kube.get("v1", "ConfigMap", "shared", app.dest)
    assert shared is not None
    await kube.merge_patch(shared, {"metadata": {"annotations": {"tether.dev/tracking-id": None}}})
    try:
        assert (await engine.sync(await other.create())).ok
        app.repo.commit({"app/shared.yaml": None})
        res = await engine.sync(await app.get(), prune=True)
        assert res.ok, res.message
        kept = [r for r in res.results if r.key.name == "shared"]
        assert kept and kept[0].action == "kept" and other.name in kept[0].message
        live = await kube.get("v1", "ConfigMap", "shared", app.dest)
        assert live is not None and live["data"] == {"v": "2"}
    finally:
        await kube.delete(API_VERSION, "Application", other.name, APPS_NS)


async def test_render_error_applies_nothing(
    engine: Engine, app: AppFixture, kube: KubeClient
) -> None:
    app.repo.commit(
        {
            "app/good.yaml": cm("good", {"v": "1"}),
            "app/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [\n",
        }
    )
    res = await engine.sync(await app.create())
    assert not res.ok
    assert "bad.yaml" in res.message
    assert await kube.get("v1", "ConfigMap", "good", app.dest) is None
    st = (await app.get()).status
    assert st["conditions"][0]["type"] == "RenderError"
    assert "bad.yaml" in st["conditions"][0]["message"]


@pytest.mark.parametrize("case", ["bad-url", "bad-credentials", "unknown-revision"])
async def test_source_errors_become_conditions(
    engine: Engine, app: AppFixture, kube: KubeClient, git_server: GitServer, case: str
) -> None:
    app.repo.commit({"app/cm.yaml": cm("x", {"v": "1"})})
    if case == "bad-url":
        a = await app.create(repo_url="http://127.0.0.1:9/nothing-here.git")
        expect = "127.0.0.1:9"
    elif case == "bad-credentials":
        wrong = f"http://localhost:{git_server.http_port}/{app.repo.name}.git"
        name = f"wrong-{uuid.uuid4().hex[:6]}"
        await kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": name,
                    "namespace": APPS_NS,
                    "labels": {"tether.dev/secret-type": "repository"},
                },
                "stringData": {"url": wrong, "username": "git", "password": "not-the-token"},
            }
        )
        a = await app.create(repo_url=wrong)
        expect = "authentication"
    else:
        a = await app.create(revision="no-such-branch")
        expect = "no-such-branch"
    res = await engine.sync(a)
    assert not res.ok
    st = (await app.get()).status
    assert st["sync"]["status"] == "Unknown"
    cond = st["conditions"][0]
    assert cond["type"] == "SourceError", cond
    assert expect in cond["message"]
    assert "not-the-token" not in json.dumps(st)
    assert git_server.token not in json.dumps(st)


async def test_secret_values_masked_everywhere(
    engine: Engine, app: AppFixture, kube: KubeClient
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "stringData": {"password": "hunter2-original"},
    }
    app.repo.commit({"app/secret.yaml": yaml.safe_dump(secret)})
    a = await app.create()
    cmp = await engine.compare(a)
    missing = cmp.resources[ResourceKey("", "Secret", app.dest, "db")].diff
    assert missing.status == ResourceDiffStatus.MISSING
    assert "hunter2" not in missing.diff_text
    assert (await engine.sync(a)).ok
    secret["stringData"] = {"password": "hunter2-changed"}
    app.repo.commit({"app/secret.yaml": yaml.safe_dump(secret)})
    cmp = await engine.compare(await app.get())
    d = cmp.resources[ResourceKey("", "Secret", app.dest, "db")].diff
    assert d.status == ResourceDiffStatus.OUT_OF_SYNC
    encoded = [
        base64.b64encode(v.encode()).decode() for v in ("hunter2-original", "hunter2-changed")
    ]
    for text in (d.diff_text, json.dumps((await app.get()).obj)):
        assert "hunter2" not in text
        assert not any(e in text for e in encoded)
    env = {**os.environ, "KUBECONFIG": os.environ["KUBECONFIG"]}
    for args in (
        ["app", "diff", app.name],
        ["app", "diff", app.name, "-o", "json"],
        ["app", "get", app.name, "-o", "yaml"],
        ["app", "sync", app.name, "--dry-run"],
    ):
        r = subprocess.run(
            [TETHER, *args], capture_output=True, text=True, env=env, timeout=60, check=False
        )
        assert r.returncode in (0, 1), r.stderr
        assert "hunter2" not in r.stdout + r.stderr
        assert not any(e in r.stdout + r.stderr for e in encoded)
    r = subprocess.run(
        [TETHER, "app", "diff", app.name, "--no-color"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert r.returncode == 1
    assert "password" in r.stdout and "********" in r.stdout


async def test_deployment_progressing_then_healthy(engine: Engine, app: AppFixture) -> None:
    app.repo.commit({"app/deploy.yaml": deployment("web", replicas=3)})
    a = await app.create()
    assert (await engine.sync(a)).ok
    seen = (await engine.compare(await app.get())).health.status
    assert seen in (HealthStatus.PROGRESSING, HealthStatus.HEALTHY)
    assert await wait_health(engine, app, HealthStatus.HEALTHY) == HealthStatus.HEALTHY


async def test_failing_deployment_becomes_degraded(engine: Engine, app: AppFixture) -> None:
    app.repo.commit(
        {"app/deploy.yaml": deployment("bad", image="example/crashloop:1", replicas=1, deadline=2)}
    )
    assert (await engine.sync(await app.create())).ok
    status = await wait_health(engine, app, HealthStatus.DEGRADED, timeout=60)
    assert status == HealthStatus.DEGRADED
    cmp = await engine.compare(await app.get())
    assert "progress" in cmp.health.message.lower() or "deadline" in cmp.health.message.lower()


async def test_cli_diff_exit_codes(engine: Engine, app: AppFixture, kube: KubeClient) -> None:
    app.repo.commit({"app/cm.yaml": cm("settings", {"mode": "blue"})})
    await app.create()
    env = {**os.environ}

    def run(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TETHER, *a], capture_output=True, text=True, env=env, timeout=60, check=False
        )

    r = run("app", "diff", app.name)
    assert r.returncode == 1 and "settings" in r.stdout
    r = run("app", "sync", app.name, "--timeout", "30")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("app", "diff", app.name)
    assert r.returncode == 0, r.stdout
    r = run("app", "diff", "no-such-app")
    assert r.returncode == 2 and "not found" in r.stderr
    r = run("app", "get", app.name, "-o", "json")
    obj = json.loads(r.stdout)
    assert obj["status"]["sync"]["status"] == "Synced"
    r = run("app", "list")
    assert app.name in r.stdout
    r = run("app", "delete", app.name)
    assert r.returncode == 0, r.stderr
    assert "ConfigMap" in r.stdout and "settings" in r.stdout
    for _ in range(50):
        if await kube.get("v1", "ConfigMap", "settings", app.dest) is None:
            break
        await asyncio.sleep(0.2)
    assert await kube.get("v1", "ConfigMap", "settings", app.dest) is None
    assert await kube.get(API_VERSION, "Application", app.name, APPS_NS) is None


async def test_api_server_rejects_malformed_applications(engine: Engine, kube: KubeClient) -> None:
    bad = {
        "apiVersion": API_VERSION,
        "kind": "Application",
        "metadata": {"name": f"bad-{uuid.uuid4().hex[:6]}", "namespace": APPS_NS},
        "spec": {"source": {"path": "x"}, "destination": {}},
    }
    with pytest.raises(Exception, match="repoURL"):
        await kube.apply(bad)
    bad["spec"] = {
        "source": {"repoURL": "https://g/x"},
        "destination": {},
        "syncPolicy": {"retry": {"backoff": {"duration": "soon"}}},
    }
    with pytest.raises(Exception, match="duration"):
        await kube.apply(bad)


async def test_dry_run_creates_namespace_and_writes_nothing(
    engine: Engine, app: AppFixture, kube: KubeClient
) -> None:
    app.dest = f"t-new-{uuid.uuid4().hex[:6]}"
    app.repo.commit({"app/cm.yaml": cm("settings", {"mode": "blue"})})
    a = await app.create(sync_options=["CreateNamespace=true"])
    res = await engine.sync(a, dry_run=True)
    assert res.ok, res.message
    assert {(r.key.kind, r.action) for r in res.results} == {
        ("Namespace", "created"),
        ("ConfigMap", "created"),
    }
    assert await kube.get("v1", "Namespace", app.dest) is None
    assert (await app.get()).status == {}  # a dry run writes no status either
    res = await engine.sync(await app.get())
    assert res.ok, res.message
    assert await kube.get("v1", "ConfigMap", "settings", app.dest) is not None
    await kube.delete("v1", "Namespace", app.dest, propagation="Background")


async def test_invalid_object_fails_before_anything_is_applied(
    engine: Engine, app: AppFixture, kube: KubeClient
) -> None:
    bad = yaml.safe_load(deployment("web"))
    bad["spec"]["replicas"] = "many"
    app.repo.commit(
        {"app/cm.yaml": cm("first", {"v": "1"}), "app/deploy.yaml": yaml.safe_dump(bad)}
    )
    res = await engine.sync(await app.create())
    assert not res.ok
    assert "deploy.yaml" in res.message and "Deployment" in res.message
    assert await kube.get("v1", "ConfigMap", "first", app.dest) is None
