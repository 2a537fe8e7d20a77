"""Repositories laid out like Argo CD's public examples with waves and hooks (sync-waves,
pre-post-sync, helm-hooks) sync as they are, from the real git server, through the real
engine and the ``tether`` command, on the real control plane with Jobs run by the node
simulator.

Order is read from the API server's watch (``bench/timeline.py``): each change carries a
resourceVersion, one sequence for all kinds, so "the frontend was created after the
migration Job completed" compares two of them. What the operation recorded
(``status.operationState.syncResult.resources``: sync phase, wave, hook phase) is checked
too, and every app ends Synced and Healthy."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from bench.timeline import Timeline, deployment_available, job_complete, job_failed
from devcluster.gitserver import GitServer, RepoHandle

from cluster_helpers import WAIT, eventually, release_applications, run_tether
from source_apps import APPS_NS, make_app, tree_files
from tether.api.application import API_VERSION, Application
from tether.engine import Engine
from tether.kube import KubeClient
from tether.model import HealthStatus, SyncStatus

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"
WATCHED = (
    ("batch/v1", "Job"),
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
)


def example_repo(
    git_server: GitServer, example: str, changes: dict[str, str] | None = None
) -> RepoHandle:
    """A repository holding ``example`` under its own name, as in Argo CD's repository;
    ``changes`` replaces files of it (paths relative to the example)."""
    repo = git_server.create_repo(f"{example}-{uuid.uuid4().hex[:8]}")
    files: dict[str, str | bytes | None] = {
        f"{example}/{path}": data for path, data in tree_files(EXAMPLES / example).items()
    }
    files.update({f"{example}/{path}": text for path, text in (changes or {}).items()})
    repo.commit(files, message=f"the {example} example")
    return repo


@pytest.fixture
async def timeline(kube: KubeClient, namespace: str) -> AsyncIterator[Timeline]:
    tl = await Timeline(kube, namespace).start(*WATCHED)
    yield tl
    await tl.stop()


@pytest.fixture
async def apps(engine: Engine) -> AsyncIterator[list[Application]]:
    """Applications a test makes; deleted afterwards (what they deployed goes with the
    test's namespace)."""
    made: list[Application] = []
    yield made
    for app in made:
        await release_applications(engine.kube, APPS_NS, app.name)
        await engine.kube.delete(API_VERSION, "Application", app.name, APPS_NS)


async def operation_state(kube: KubeClient, app: Application) -> dict[str, Any]:
    obj = await kube.get(API_VERSION, "Application", app.name, app.namespace)
    assert obj is not None
    return dict((obj.get("status") or {}).get("operationState") or {})


def row(op: dict[str, Any], kind: str, name: str, *, prefix: bool = False) -> dict[str, Any]:
    """The operation's record of ``kind``/``name`` (a name prefix with ``prefix``)."""
    rows = (op.get("syncResult") or {}).get("resources") or []
    found = [
        r
        for r in rows
        if r.get("kind") == kind
        and (str(r.get("name")).startswith(name) if prefix else r.get("name") == name)
    ]
    assert len(found) == 1, (kind, name, rows)
    return dict(found[0])


def placed(r: dict[str, Any]) -> tuple[str, int]:
    return str(r.get("syncPhase")), int(r.get("wave") or 0)


async def synced_and_healthy(engine: Engine, app: Application) -> set[tuple[str, str]]:
    """Waits until the app compares Synced and Healthy; the (kind, name) it is made of."""

    async def check() -> set[tuple[str, str]] | None:
        cmp = await engine.compare(await engine.get_app(app.name, app.namespace))
        ok = cmp.sync_status == SyncStatus.SYNCED and cmp.health.status == HealthStatus.HEALTHY
        return {(k.kind, k.name) for k in cmp.resources} if ok else None

    found: set[tuple[str, str]] = await eventually(check, WAIT, f"{app.name} Synced and Healthy")
    return found


# ---- sync-waves ---------------------------------------------------------------------------


async def test_sync_waves_apply_wave_by_wave_each_waiting_for_the_last(
    engine: Engine,
    git_server: GitServer,
    namespace: str,
    timeline: Timeline,
    apps: list[Application],
) -> None:
    repo = example_repo(git_server, "sync-waves")
    app = await make_app(engine, repo, namespace, {"path": "sync-waves"}, prefix="waves")
    apps.append(app)

    res = await engine.sync(app)
    assert res.ok, res.message

    tl = timeline
    page_up = await tl.created("Job", "maintenance-page-up-", prefix=True)
    page_up_done = await tl.reached("Job", page_up.name, job_complete)
    config = await tl.created("ConfigMap", "backend-config")
    backend = await tl.created("Deployment", "backend")
    backend_svc = await tl.created("Service", "backend-svc")
    backend_up = await tl.reached("Deployment", "backend", deployment_available)
    migration = await tl.created("Job", "upgrade-sql-schema")
    migrated = await tl.reached("Job", "upgrade-sql-schema", job_complete)
    frontend = await tl.created("Deployment", "frontend")
    frontend_svc = await tl.created("Service", "frontend")
    frontend_up = await tl.reached("Deployment", "frontend", deployment_available)
    page_down = await tl.created("Job", "maintenance-page-down-", prefix=True)

    # PreSync: the hook ran to completion before wave -1 began.
    assert page_up_done.rv < config.rv
    # Wave -1 before wave 0.
    assert config.rv < min(backend.rv, backend_svc.rv)
    # Wave 1 only once wave 0 was healthy (both backend replicas available).
    assert backend_up.rv < migration.rv
    # Wave 2 only once the migration Job of wave 1 completed.
    assert migrated.rv < min(frontend.rv, frontend_svc.rv)
    # Wave 3's hook only once the frontend was available.
    assert frontend_up.rv < page_down.rv
    # Both hooks deleted once they succeeded (HookSucceeded).
    await tl.deleted("Job", page_up.name)
    await tl.deleted("Job", page_down.name)

    op = await operation_state(engine.kube, app)
    assert op["phase"] == "Succeeded", op
    assert placed(row(op, "ConfigMap", "backend-config")) == ("Sync", -1)
    assert placed(row(op, "Deployment", "backend")) == ("Sync", 0)
    assert placed(row(op, "Service", "backend-svc")) == ("Sync", 0)
    assert placed(row(op, "Job", "upgrade-sql-schema")) == ("Sync", 1)
    assert placed(row(op, "Deployment", "frontend")) == ("Sync", 2)
    assert placed(row(op, "Service", "frontend")) == ("Sync", 2)
    up = row(op, "Job", "maintenance-page-up-", prefix=True)
    assert placed(up) == ("PreSync", 0)
    assert (up["name"], up["hookType"], up["hookPhase"]) == (page_up.name, "PreSync", "Succeeded")
    down = row(op, "Job", "maintenance-page-down-", prefix=True)
    assert placed(down) == ("Sync", 3)
    assert (down["name"], down["hookType"], down["hookPhase"]) == (
        page_down.name,
        "Sync",
        "Succeeded",
    )

    # Hooks are not part of the app: it is made of the six objects, Synced and Healthy.
    assert await synced_and_healthy(engine, app) == {
        ("ConfigMap", "backend-config"),
        ("Deployment", "backend"),
        ("Service", "backend-svc"),
        ("Job", "upgrade-sql-schema"),
        ("Deployment", "frontend"),
        ("Service", "frontend"),
    }


# ---- pre-post-sync ------------------------------------------------------------------------


async def test_pre_post_sync_hooks_run_around_the_app_and_go_when_done(
    engine: Engine,
    git_server: GitServer,
    namespace: str,
    timeline: Timeline,
    apps: list[Application],
) -> None:
    repo = example_repo(git_server, "pre-post-sync")
    app = await make_app(engine, repo, namespace, {"path": "pre-post-sync"}, prefix="hooks")
    apps.append(app)

    res = await engine.sync(app)
    assert res.ok, res.message

    tl = timeline
    before = await tl.created("Job", "pre-post-sync-before")
    before_done = await tl.reached("Job", "pre-post-sync-before", job_complete)
    ui = await tl.created("Deployment", "pre-post-sync-guestbook-ui")
    svc = await tl.created("Service", "pre-post-sync-guestbook-ui")
    ui_up = await tl.reached("Deployment", "pre-post-sync-guestbook-ui", deployment_available)
    after = await tl.created("Job", "pre-post-sync-after")
    await tl.reached("Job", "pre-post-sync-after", job_complete)

    assert before.rv < before_done.rv < min(ui.rv, svc.rv)  # PreSync done before the app
    assert ui_up.rv < after.rv  # PostSync once the app is healthy
    await tl.deleted("Job", "pre-post-sync-before")  # HookSucceeded
    await tl.deleted("Job", "pre-post-sync-after")
    # The Job watch reports changes in order: up to the last hook's deletion, no SyncFail
    # hook was created; and the operation has ended, so none will be.
    assert tl.find("Job", "pre-post-sync-on-fail") is None, tl.summary()
    assert tl.added("Job") == ["pre-post-sync-before", "pre-post-sync-after"]
    assert await engine.kube.get("batch/v1", "Job", "pre-post-sync-on-fail", namespace) is None

    op = await operation_state(engine.kube, app)
    assert op["phase"] == "Succeeded", op
    pre = row(op, "Job", "pre-post-sync-before")
    assert (placed(pre), pre["hookType"], pre["hookPhase"]) == (
        ("PreSync", 0),
        "PreSync",
        "Succeeded",
    )
    post = row(op, "Job", "pre-post-sync-after")
    assert (placed(post), post["hookType"], post["hookPhase"]) == (
        ("PostSync", 0),
        "PostSync",
        "Succeeded",
    )
    assert placed(row(op, "Deployment", "pre-post-sync-guestbook-ui")) == ("Sync", 0)
    rows = op["syncResult"]["resources"]
    assert not [r for r in rows if r.get("syncPhase") == "SyncFail"], rows

    assert await synced_and_healthy(engine, app) == {
        ("Deployment", "pre-post-sync-guestbook-ui"),
        ("Service", "pre-post-sync-guestbook-ui"),
    }


def failing_pre_sync_job() -> str:
    """The example's PreSync Job, made to fail at once: the node simulator fails its pod."""
    job = yaml.safe_load((EXAMPLES / "pre-post-sync" / "pre-sync-job.yaml").read_text())
    job["spec"]["backoffLimit"] = 0
    job["spec"]["template"]["metadata"] = {"annotations": {"sim.tether.dev/behavior": "fail"}}
    return str(yaml.safe_dump(job))


async def test_a_failed_pre_sync_hook_runs_the_sync_fail_hook_and_deploys_nothing(
    engine: Engine,
    git_server: GitServer,
    namespace: str,
    timeline: Timeline,
    apps: list[Application],
) -> None:
    repo = example_repo(git_server, "pre-post-sync", {"pre-sync-job.yaml": failing_pre_sync_job()})
    app = await make_app(engine, repo, namespace, {"path": "pre-post-sync"}, prefix="hookfail")
    apps.append(app)

    res = await engine.sync(app)
    assert not res.ok
    assert "pre-post-sync-before" in res.message, res.message

    tl = timeline
    failed = await tl.reached("Job", "pre-post-sync-before", job_failed)
    on_fail = await tl.created("Job", "pre-post-sync-on-fail")
    await tl.reached("Job", "pre-post-sync-on-fail", job_complete)
    assert failed.rv < on_fail.rv  # SyncFail ran after the PreSync hook failed
    await tl.deleted("Job", "pre-post-sync-on-fail")  # HookSucceeded: it succeeded

    # The operation ended: nothing of the Sync phase or PostSync was applied.
    for kind, name in (
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
    ):
        assert await engine.kube.get(kind, name, "pre-post-sync-guestbook-ui", namespace) is None
    assert await engine.kube.get("batch/v1", "Job", "pre-post-sync-after", namespace) is None
    # HookSucceeded keeps a hook that failed, for its logs.
    assert await engine.kube.get("batch/v1", "Job", "pre-post-sync-before", namespace)

    op = await operation_state(engine.kube, app)
    assert op["phase"] == "Failed", op
    assert "pre-post-sync-before" in op["message"], op
    pre = row(op, "Job", "pre-post-sync-before")
    assert (placed(pre), pre["hookPhase"]) == (("PreSync", 0), "Failed")
    fail = row(op, "Job", "pre-post-sync-on-fail")
    assert (placed(fail), fail["hookType"], fail["hookPhase"]) == (
        ("SyncFail", 0),
        "SyncFail",
        "Succeeded",
    )


# ---- helm-hooks ---------------------------------------------------------------------------

RELEASE = "hooks"
FULL = f"{RELEASE}-helm-hooks"


async def test_helm_hooks_install_then_upgrade(
    engine: Engine,
    kube: KubeClient,
    git_server: GitServer,
    namespace: str,
    timeline: Timeline,
    apps: list[Application],
    kubeconfig: str,
) -> None:
    repo = example_repo(git_server, "helm-hooks")
    source = {"path": "helm-hooks", "helm": {"releaseName": RELEASE}}
    app = await make_app(engine, repo, namespace, source, prefix="helmhooks")
    apps.append(app)
    tl = timeline

    # The first deployment: pre-install and post-install hooks, by weight.
    code, out = await run_tether(kubeconfig, "app", "sync", app.name, "-n", APPS_NS)
    assert code == 0, out

    script = await tl.created("ConfigMap", f"{FULL}-migration-script")
    init = await tl.created("Job", f"{FULL}-db-init")
    init_done = await tl.reached("Job", f"{FULL}-db-init", job_complete)
    migrate = await tl.created("Job", f"{FULL}-db-migrate")
    migrate_done = await tl.reached("Job", f"{FULL}-db-migrate", job_complete)
    web = await tl.created("Deployment", FULL)
    web_up = await tl.reached("Deployment", FULL, deployment_available)
    smoke = await tl.created("Job", f"{FULL}-smoke-test")
    await tl.reached("Job", f"{FULL}-smoke-test", job_complete)

    assert script.rv < init.rv  # weight -10 before -5
    assert init_done.rv < migrate.rv  # -5 done before 0 starts
    assert migrate_done.rv < web.rv  # pre-install hooks done before the release's objects
    assert web_up.rv < smoke.rv  # post-install once the release is healthy
    await tl.deleted("Job", f"{FULL}-db-migrate")  # hook-succeeded
    await tl.deleted("Job", f"{FULL}-smoke-test")  # hook-succeeded
    init_job = await kube.get("batch/v1", "Job", f"{FULL}-db-init", namespace)
    assert init_job is not None  # before-hook-creation: stays until the next time it runs
    assert await kube.get("v1", "ConfigMap", f"{FULL}-migration-script", namespace)
    # A test hook is for `helm test` only.
    assert await kube.get("v1", "Pod", f"{FULL}-test-connection", namespace) is None

    op = await operation_state(kube, app)
    assert op["phase"] == "Succeeded", op
    assert op["firstInstall"] is True, op
    assert placed(row(op, "ConfigMap", f"{FULL}-migration-script")) == ("PreSync", -10)
    init_row = row(op, "Job", f"{FULL}-db-init")
    assert (placed(init_row), init_row["hookType"]) == (("PreSync", -5), "pre-install")
    migrate_row = row(op, "Job", f"{FULL}-db-migrate")
    assert (placed(migrate_row), migrate_row["hookType"]) == (
        ("PreSync", 0),
        "pre-install,pre-upgrade",
    )
    assert placed(row(op, "Deployment", FULL)) == ("Sync", 0)
    smoke_row = row(op, "Job", f"{FULL}-smoke-test")
    assert (placed(smoke_row), smoke_row["hookType"]) == (
        ("PostSync", 5),
        "post-install,post-upgrade",
    )
    assert await synced_and_healthy(engine, app) == {("Deployment", FULL), ("Service", FULL)}

    # An upgrade: pre-upgrade and post-upgrade hooks; the pre-install-only Job does not run.
    values = yaml.safe_load((EXAMPLES / "helm-hooks" / "values.yaml").read_text())
    values["image"]["tag"] = "1.27.3"
    repo.commit({"helm-hooks/values.yaml": yaml.safe_dump(values)}, message="nginx 1.27.3")
    _, mark = await kube.list("batch/v1", "Job", namespace)
    code, out = await run_tether(kubeconfig, "app", "sync", app.name, "-n", APPS_NS)
    assert code == 0, out

    after = int(mark)
    old_script = await tl.deleted("ConfigMap", f"{FULL}-migration-script", after=after)
    new_script = await tl.created("ConfigMap", f"{FULL}-migration-script", after=after)
    migrate2 = await tl.created("Job", f"{FULL}-db-migrate", after=after)
    migrate2_done = await tl.reached("Job", f"{FULL}-db-migrate", job_complete, after=after)

    def new_image(obj: dict[str, Any]) -> bool:
        containers = obj["spec"]["template"]["spec"]["containers"]
        return bool(containers[0]["image"] == "nginx:1.27.3")

    rolled = await tl.reached("Deployment", FULL, new_image, after=after)
    rolled_up = await tl.reached(
        "Deployment", FULL, lambda o: new_image(o) and deployment_available(o), after=after
    )
    smoke2 = await tl.created("Job", f"{FULL}-smoke-test", after=after)
    await tl.deleted("Job", f"{FULL}-smoke-test", after=smoke2.rv)

    assert old_script.rv < new_script.rv < migrate2.rv  # before-hook-creation, then by weight
    assert migrate2_done.rv < rolled.rv  # pre-upgrade done before the new image
    assert rolled_up.rv < smoke2.rv  # post-upgrade once the new release is healthy
    assert tl.find("Job", f"{FULL}-db-init", types=("ADDED", "DELETED"), after=after) is None
    still = await kube.get("batch/v1", "Job", f"{FULL}-db-init", namespace)
    assert still is not None
    assert still["metadata"]["uid"] == init_job["metadata"]["uid"]  # not run again

    op = await operation_state(kube, app)
    assert op["phase"] == "Succeeded", op
    assert op["firstInstall"] is False, op
    rows = op["syncResult"]["resources"]
    assert not [r for r in rows if r.get("name") == f"{FULL}-db-init"], rows
    assert row(op, "Job", f"{FULL}-db-migrate")["hookPhase"] == "Succeeded"
    assert row(op, "Job", f"{FULL}-smoke-test")["hookPhase"] == "Succeeded"
    assert await synced_and_healthy(engine, app) == {("Deployment", FULL), ("Service", FULL)}
