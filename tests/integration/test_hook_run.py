"""HookRunner against the real control plane: hook Jobs run by the node simulator to their end,
generateName instances, BeforeHookCreation, and the HookSucceeded / HookFailed delete policies."""

from __future__ import annotations

from typing import Any

from cluster_helpers import WAIT, eventually
from tether.api.application import Application, new_application
from tether.kube import KubeClient
from tether.model import Manifest, Obj
from tether.sync.hook_run import HookRunner
from tether.sync.hooks import Hook, hook_of, mark
from tether.sync.state import HOOK_FAILED, HOOK_RUNNING, HOOK_SUCCEEDED, TaskRecord


def app_in(ns: str) -> Application:
    return Application.from_obj(
        new_application(
            "hooked", ns, repo_url="http://example.invalid/r.git", path="app", dest_namespace=ns
        )
    )


def job(
    ns: str, *, name: str = "", generate: str = "", fail: bool = False, policy: str = ""
) -> Obj:
    ann = {"tether.dev/hook-delete-policy": policy} if policy else {}
    meta: dict[str, Any] = {"namespace": ns, "annotations": {"tether.dev/hook": "PreSync", **ann}}
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = generate
    pod_meta = {"annotations": {"sim.tether.dev/behavior": "fail"}} if fail else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": pod_meta,
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "run", "image": "busybox", "command": ["true"]}],
                },
            },
        },
    }


def hook(app: Application, obj: Obj) -> Hook:
    h = hook_of(Manifest(mark(app, obj), "hooks/job.yaml", 3), first_install=False)
    assert h is not None
    return h


async def gone(kube: KubeClient, ns: str, name: str) -> bool:
    return await kube.get("batch/v1", "Job", name, ns) is None


async def run_to_end(runner: HookRunner, rec: TaskRecord) -> TaskRecord:
    async def ended() -> TaskRecord | None:
        nonlocal rec
        rec = await runner.observe(rec)
        return rec if rec.hook_phase != HOOK_RUNNING else None

    out: TaskRecord = await eventually(ended, WAIT, f"{rec.key} to end")
    return out


async def test_a_job_hook_runs_to_succeeded(kube: KubeClient, namespace: str) -> None:
    app = app_in(namespace)
    runner = HookRunner(kube, app)
    rec = await runner.start(hook(app, job(namespace, name="migrate")), "PreSync", 0)
    assert (rec.action, rec.hook_phase, rec.hook_type) == ("created", HOOK_RUNNING, "PreSync")
    assert rec.key.name == "migrate" and rec.version == "v1"
    done = await run_to_end(runner, rec)
    assert done.hook_phase == HOOK_SUCCEEDED, done.message
    # BeforeHookCreation (the default) keeps the instance until the next run.
    assert await kube.get("batch/v1", "Job", "migrate", namespace) is not None


async def test_a_failing_job_hook_fails_with_the_reason(kube: KubeClient, namespace: str) -> None:
    app = app_in(namespace)
    runner = HookRunner(kube, app)
    rec = await runner.start(hook(app, job(namespace, name="bad", fail=True)), "PreSync", 0)
    done = await run_to_end(runner, rec)
    assert done.hook_phase == HOOK_FAILED
    assert "BackoffLimitExceeded" in done.message


async def test_generate_name_gives_new_names_and_removes_the_previous(
    kube: KubeClient, namespace: str
) -> None:
    app = app_in(namespace)
    runner = HookRunner(kube, app)
    h = hook(app, job(namespace, generate="seed-"))
    first = await runner.start(h, "PreSync", 0)
    assert first.key.name.startswith("seed-") and first.key.name != "seed-"
    await run_to_end(runner, first)
    second = await runner.start(h, "PreSync", 0)
    assert second.key.name.startswith("seed-") and second.key.name != first.key.name
    assert await kube.get("batch/v1", "Job", first.key.name, namespace) is None
    items, _ = await kube.list("batch/v1", "Job", namespace)
    assert [o["metadata"]["name"] for o in items] == [second.key.name]


async def test_a_fixed_name_hook_is_replaced(kube: KubeClient, namespace: str) -> None:
    app = app_in(namespace)
    runner = HookRunner(kube, app)
    h = hook(app, job(namespace, name="again"))
    first = await runner.start(h, "PreSync", 0)
    uid = (await kube.get("batch/v1", "Job", "again", namespace) or {})["metadata"]["uid"]
    await run_to_end(runner, first)
    second = await runner.start(h, "PreSync", 0)
    assert second.hook_phase == HOOK_RUNNING, second.message
    now = await kube.get("batch/v1", "Job", "again", namespace)
    assert now is not None and now["metadata"]["uid"] != uid


async def test_hook_succeeded_deletes_it_on_success(kube: KubeClient, namespace: str) -> None:
    app = app_in(namespace)
    runner = HookRunner(kube, app)
    obj = job(namespace, name="tidy", policy="HookSucceeded")
    done = await run_to_end(runner, await runner.start(hook(app, obj), "PostSync", 1))
    assert (done.hook_phase, done.action) == (HOOK_SUCCEEDED, "deleted")
    assert "deleted (HookSucceeded)" in done.message
    await eventually(lambda: gone(kube, namespace, "tidy"), WAIT, "the hook Job to go")


async def test_hook_failed_deletes_it_on_failure(kube: KubeClient, namespace: str) -> None:
    app = app_in(namespace)
    runner = HookRunner(kube, app)
    obj = job(namespace, name="oops", fail=True)
    # Argo CD's spelling of the policy is read too.
    obj["metadata"]["annotations"]["argocd.argoproj.io/hook-delete-policy"] = "HookFailed"
    done = await run_to_end(runner, await runner.start(hook(app, obj), "PreSync", 0))
    assert (done.hook_phase, done.action) == (HOOK_FAILED, "deleted")
    assert "deleted (HookFailed)" in done.message
    await eventually(lambda: gone(kube, namespace, "oops"), WAIT, "the hook Job to go")


async def test_a_config_map_hook_succeeds_at_once(kube: KubeClient, namespace: str) -> None:
    app = app_in(namespace)
    runner = HookRunner(kube, app)
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "marker",
            "namespace": namespace,
            "annotations": {"tether.dev/hook": "Sync"},
        },
        "data": {"a": "b"},
    }
    rec = await runner.start(hook(app, obj), "Sync", 0)
    done = await runner.observe(rec)
    assert done.hook_phase == HOOK_SUCCEEDED


async def test_creation_error_fails_with_the_file(kube: KubeClient, namespace: str) -> None:
    app = app_in(namespace)
    runner = HookRunner(kube, app)
    obj = job(namespace, name="Not_A_Name")
    rec = await runner.start(hook(app, obj), "PreSync", 0)
    assert rec.hook_phase == HOOK_FAILED
    assert rec.message.startswith("hooks/job.yaml:3: cannot create it")


async def test_dry_run_writes_nothing(kube: KubeClient, namespace: str) -> None:
    app = app_in(namespace)
    runner = HookRunner(kube, app)
    rec = await runner.start(hook(app, job(namespace, name="dry")), "PreSync", 0, dry_run=True)
    assert rec.action == "would run"
    assert await kube.get("batch/v1", "Job", "dry", namespace) is None
