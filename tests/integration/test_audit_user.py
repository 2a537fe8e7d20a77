"""Who asked, in the audit trail, on the real control plane, git server and a controller: a
manual sync and a clone's first sync carry the user; ``tether app delete`` stamps who asked
and the ``delete`` record names them, a delete by another client says it came from outside
tether; and a sync the command ran itself (no controller) is recorded once, by the first
controller that sees it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from devcluster.gitserver import RepoHandle

from cluster_helpers import (
    WAIT,
    app_status,
    cm_yaml,
    eventually,
    new_app,
    now,
    run_tether,
    runtime_options,
)
from tether.api.application import API_VERSION, REFRESH_ANNOTATION
from tether.controller.presence import active_controller
from tether.controller.runtime import Runtime
from tether.deletion import REQUESTED_BY_ANNOTATION
from tether.kube import KubeClient
from tether.service import who_asks
from tether.sync.state import OperationRequest

POLL = "1h"


@pytest.fixture
async def staging(kube: KubeClient) -> AsyncIterator[str]:
    name = f"stg-{uuid.uuid4().hex[:8]}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    await kube.delete("v1", "Namespace", name, propagation="Background")


async def records(rt: Runtime, app: str, kind: str) -> list[Any]:
    assert rt.store is not None
    return [r for r in await rt.store.query(app=app) if r.kind == kind]


async def test_manual_sync_clone_and_deletions_are_recorded_with_who_asked(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    staging: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    sha = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"v": "1"})}, message="first")
    await kube.apply(
        new_app("shop", home, git_repo.http_url, namespace, "app", POLL, auto_sync=False)
    )
    user = who_asks()
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
        await eventually(lambda: active_controller(kube, home), WAIT, "the controller present")
        await eventually(lambda: app_status(kube, home, "shop"), WAIT, "its first status")

        # A manual sync, run by the controller: a sync record with the user.
        code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "shop")
        assert code == 0 and "run by controller" in out, out
        (rec,) = await eventually(
            lambda: records(rt, f"{home}/shop", "sync"), WAIT, "the sync record"
        )
        assert (rec.user, rec.trigger, rec.revision, rec.result) == (
            user,
            "manual",
            sha,
            "Succeeded",
        )

        # A clone's first sync: recorded for the clone, with the user.
        code, out = await run_tether(
            kubeconfig, "-n", home, "app", "clone", "shop", "shop-copy", "--dest-namespace", staging
        )
        assert code == 0, out
        (rec,) = await eventually(
            lambda: records(rt, f"{home}/shop-copy", "sync"), WAIT, "the clone's sync record"
        )
        assert rec.user == user and rec.revision == sha

        # tether app delete: the Application carries who asked, and so does the record.
        code, out = await run_tether(kubeconfig, "-n", home, "app", "delete", "shop-copy")
        assert code == 0, out
        (rec,) = await eventually(
            lambda: records(rt, f"{home}/shop-copy", "delete"), WAIT, "the delete record"
        )
        assert rec.user == user and rec.result == "Deleted"
        assert "outside tether" not in rec.message

        # Deleted by another client (as kubectl does): no user, and the message says so.
        obj = await kube.get(API_VERSION, "Application", "shop", home)
        assert obj is not None
        assert REQUESTED_BY_ANNOTATION not in (obj["metadata"].get("annotations") or {})
        await kube.delete(API_VERSION, "Application", "shop", home)
        (rec,) = await eventually(
            lambda: records(rt, f"{home}/shop", "delete"), WAIT, "the kubectl delete record"
        )
        assert rec.user == ""
        assert "deleted outside tether" in rec.message and "audit log" in rec.message
        assert await kube.get("v1", "ConfigMap", "settings", namespace) is None


async def test_a_sync_the_command_ran_is_recorded_once_when_a_controller_starts(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    sha = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"v": "1"})}, message="by hand")
    await kube.apply(
        new_app("tool", home, git_repo.http_url, namespace, "app", POLL, auto_sync=False)
    )
    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "tool")
    assert code == 0 and "run by this command" in out, out
    op = (await app_status(kube, home, "tool"))["operationState"]
    assert op["runBy"] == "cli"
    key = (home, "tool")
    opts = runtime_options(home, tmp_path, kubeconfig)

    async with Runtime(opts) as rt:
        (rec,) = await eventually(
            lambda: records(rt, f"{home}/tool", "sync"), WAIT, "the late sync record"
        )
        assert (rec.user, rec.trigger, rec.revision, rec.result) == (
            who_asks(),
            "manual",
            sha,
            "Succeeded",
        )
        assert rec.message == "by hand"
        assert rec.details["runBy"] == "cli" and rec.details["operation"] == op["operation"]["id"]
        assert rec.details["finishedAt"] == op["finishedAt"]
        assert any(o["name"] == "settings" for o in rec.objects)
        status = await app_status(kube, home, "tool")
        assert status["auditedOperation"] == op["operation"]["id"]

        # Looked at again (a refresh): considered, not recorded twice.
        ctl = rt.controller
        assert ctl is not None
        obj = await kube.get(API_VERSION, "Application", "tool", home)
        assert obj is not None
        token = uuid.uuid4().hex
        await kube.merge_patch(obj, {"metadata": {"annotations": {REFRESH_ANNOTATION: token}}})
        await eventually(
            lambda: now(ctl.state[key].refresh_token == token), WAIT, "the refresh seen"
        )
        await eventually(lambda: now(ctl.queue.idle(key)), WAIT, "the refresh reconciled")
        assert len(await records(rt, f"{home}/tool", "sync")) == 1

    # Another controller on the same audit trail starts, reconciles it, records nothing new.
    async with Runtime(opts) as rt2:
        ctl2 = rt2.controller
        assert ctl2 is not None
        await eventually(lambda: now(key in ctl2.state), WAIT, "the app seen again")
        await eventually(lambda: now(ctl2.queue.idle(key)), WAIT, "the app reconciled")
        assert len(await records(rt2, f"{home}/tool", "sync")) == 1


async def test_a_rollback_sync_is_recorded_as_a_rollback_with_who_asked(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    good = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"v": "good"})}, message="good")
    bad = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"v": "bad"})}, message="bad")
    message = f'Revert "bad"\n\nRestore app/ to {good}.\nThis reverts commit {bad}.\n'
    restoring = git_repo.commit(
        {"app/cm.yaml": cm_yaml("settings", {"v": "good"})}, message=message
    )
    await kube.apply(
        new_app("cart", home, git_repo.http_url, namespace, "app", POLL, auto_sync=False)
    )
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
        await eventually(lambda: app_status(kube, home, "cart"), WAIT, "its first status")
        # The request a rollback leaves on the Application, as any sync request is left.
        obj = await kube.get(API_VERSION, "Application", "cart", home)
        assert obj is not None
        request = OperationRequest(
            trigger="rollback", initiated_by="carol@laptop", revision=restoring
        )
        await kube.merge_patch(obj, {"operation": request.to_dict()})
        (rec,) = await eventually(
            lambda: records(rt, f"{home}/cart", "rollback"), WAIT, "the rollback record"
        )
        assert (rec.user, rec.trigger, rec.revision, rec.result) == (
            "carol@laptop",
            "rollback",
            restoring,
            "Succeeded",
        )
        assert rec.message == 'Revert "bad"'
        assert rec.details["rollback"]["commit"] == restoring
        assert rec.details["rollback"]["restores"] == good
        assert rec.details["rollback"]["reverts"] == [bad]
        assert rec.details["rollback"]["commitMessage"].startswith('Revert "bad"')
        assert await records(rt, f"{home}/cart", "sync") == []
