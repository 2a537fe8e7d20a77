"""Robustness of the continuous engine on the real control plane and git server: Git going
away, the API server restarting mid-sync, the controller killed mid-sync, webhook floods,
the shipped RBAC, and a leader that dies."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from devcluster.cluster import Cluster
from devcluster.gitserver import GitServer, RepoHandle
from devcluster.procs import free_port
from test_deploy import SYSTEM_NS, apply_for_real

from admission_hold import AdmissionHold
from cluster_helpers import (
    WAIT,
    WEB_DEPLOYMENT,
    ControllerProcess,
    app_status,
    cm_yaml,
    condition,
    eventually,
    github_push,
    new_app,
    release_applications,
    runtime_options,
    synced_to,
    widget_crd,
)
from identities import service_account_token, token_kubeconfig
from tether import metrics
from tether.api.application import API_VERSION
from tether.audit import SqliteAuditStore
from tether.controller.leader import parse_micro_time
from tether.controller.runtime import Runtime
from tether.errors import KubeError
from tether.kube import KubeClient

# ---- helpers ------------------------------------------------------------------------------


def many_configmaps(n: int, pad_kib: int = 0) -> dict[str, str]:
    """``n`` ConfigMaps; ``pad_kib`` makes each that large, so applying them takes a while."""
    pad = "x" * 1023 + "\n"
    return {
        f"app/cm-{i:03d}.yaml": cm_yaml(f"cm-{i:03d}", {"i": str(i), "pad": pad * pad_kib})
        for i in range(n)
    }


async def tolerant(check: Callable[[], Awaitable[Any]]) -> Any:
    """``check()``, or None while the API server is unreachable (around a restart)."""
    try:
        return await check()
    except KubeError:
        return None


async def live_uids(kube: KubeClient, ns: str) -> dict[str, str]:
    """Name → uid of the ConfigMaps tether manages in ``ns``."""
    items, _ = await kube.list("v1", "ConfigMap", ns, label_selector="tether.dev/app")
    return {o["metadata"]["name"]: o["metadata"]["uid"] for o in items}


async def repo_secret(kube: KubeClient, ns: str, name: str, url: str, password: str) -> None:
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": {"tether.dev/secret-type": "repository"},
            },
            "stringData": {"url": url, "username": "git", "password": password},
        }
    )


# ---- 1. Git server down, credentials revoked -----------------------------------------------


def git_errors() -> float:
    """Failed git requests the in-process controller counted (tether_git_request_errors)."""
    return sum(
        sample.value
        for family in metrics.REGISTRY.collect()
        if family.name == "tether_git_request_errors"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


def poller_looks() -> float:
    """ls-remote calls the in-process controller's poller made (its duration histogram)."""
    labels = {"operation": "ls-remote"}
    value = metrics.REGISTRY.get_sample_value("tether_git_request_duration_seconds_count", labels)
    return value or 0.0


async def more_failed_polls(n: int) -> None:
    """Returns once ``n`` more git requests have failed: polls that ran and were refused."""
    target = git_errors() + n

    async def reached() -> bool:
        return git_errors() >= target

    await eventually(reached, WAIT, f"{n} more failed polls")


@pytest.fixture
def own_git_server(tmp_path: Path) -> Iterator[GitServer]:
    """A git server of this test's own (the session one is shared), on a fixed port so that
    it comes back at the same URL after a stop."""
    server = GitServer(tmp_path / "gs", http_port=free_port()).start()
    try:
        yield server
    finally:
        GitServer(tmp_path / "gs").stop()


async def test_git_down_or_credentials_revoked_keeps_the_app_and_recovers(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    own_git_server: GitServer,
    tmp_path: Path,
) -> None:
    gs = own_git_server
    port = gs.http_port
    repo = gs.create_repo("robust")
    sha = repo.commit(many_configmaps(5), message="five")
    url = repo.http_url  # the server forgets its port once stopped: keep the URL
    base = f"http://127.0.0.1:{port}"
    await repo_secret(kube, home, "own-git-creds", base, gs.token)
    await kube.apply(new_app("steady", home, url, namespace, interval="1s"))

    async with Runtime(runtime_options(home, tmp_path, kubeconfig)):
        await eventually(lambda: synced_to(kube, home, "steady", sha), WAIT, "initial sync")
        before = await live_uids(kube, namespace)
        assert len(before) == 5
        inventory = (await app_status(kube, home, "steady"))["inventory"]

        async def source_error(reason: str) -> dict[str, Any] | None:
            cond = condition(await app_status(kube, home, "steady"), "SourceError")
            return cond if cond and cond.get("reason") == reason else None

        async def kept_last_state() -> None:
            st = await app_status(kube, home, "steady")
            assert await live_uids(kube, namespace) == before, "objects changed or pruned"
            assert st["sync"]["revision"] == sha
            assert st["inventory"] == inventory
            op = st["operationState"]
            assert (op["phase"], op["revision"]) == ("Succeeded", sha)

        # (a) The git server goes away: the poll (every 1 s) fails, and the app says why.
        await asyncio.to_thread(gs.stop)
        cond = await eventually(
            lambda: source_error("RepositoryUnreachable"), WAIT, "SourceError: unreachable"
        )
        assert url in cond["message"], cond
        await more_failed_polls(2)  # they change nothing
        await kept_last_state()
        # Back at the same URL: it recovers by itself.
        await asyncio.to_thread(GitServer(tmp_path / "gs", http_port=port).start)
        await eventually(lambda: synced_to(kube, home, "steady", sha), WAIT, "recovery")
        assert await live_uids(kube, namespace) == before

        # (b) The credentials are revoked: the condition names authentication.
        await repo_secret(kube, home, "own-git-creds", base, "revoked-" + uuid.uuid4().hex)
        cond = await eventually(
            lambda: source_error("AuthenticationFailed"), WAIT, "SourceError: authentication"
        )
        assert "authentication" in cond["message"].lower(), cond
        assert gs.token not in str(await app_status(kube, home, "steady"))
        await more_failed_polls(2)
        await kept_last_state()
        await repo_secret(kube, home, "own-git-creds", base, gs.token)
        await eventually(lambda: synced_to(kube, home, "steady", sha), WAIT, "recovery")
        assert await live_uids(kube, namespace) == before


# ---- 2. kube-apiserver restarted mid-sync ---------------------------------------------------


async def test_api_server_restart_mid_sync_converges(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    n = 150
    sha = git_repo.commit(many_configmaps(n, pad_kib=40), message="bulk")
    await kube.apply(new_app("bulk", home, git_repo.http_url, namespace))
    # A real admission webhook holds the 21st create: the API server goes down mid-sync
    # for certain, however fast or slow this machine is.
    hold = AdmissionHold(kube, namespace, "configmaps", hold_at=21, label="tether.dev/app")
    await hold.start(tmp_path)
    try:
        async with Runtime(runtime_options(home, tmp_path, kubeconfig)):
            await asyncio.wait_for(hold.held.wait(), WAIT)

            async def some_exist() -> bool:
                return bool(await live_uids(kube, namespace))

            await eventually(some_exist, WAIT, "a ConfigMap created before the held one")
            before_down = set(await live_uids(kube, namespace))
            assert before_down and hold.held_name not in before_down
            try:
                await asyncio.to_thread(Cluster().restart_apiserver, down_for=2)
            except BaseException:
                await asyncio.to_thread(Cluster().up)  # never leave the shared cluster down
                raise
            # The held create died with the API server; the controller's retries pass.
            await hold.stop()

            async def converged() -> bool:
                return len(await live_uids(kube, namespace)) == n and bool(
                    await synced_to(kube, home, "bulk", sha)
                )

            await eventually(
                lambda: tolerant(converged), WAIT, f"all {n} applied after the restart"
            )
    finally:
        await hold.stop()
    print(f"\n[apiserver restart] {len(before_down)}/{n} ConfigMaps existed when it stopped")


# ---- 3. the controller killed (SIGKILL) mid-sync --------------------------------------------


def integrity_check(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        con.close()


async def test_controller_killed_mid_sync_resumes_and_keeps_the_audit_db(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    n = 300
    sha = git_repo.commit(many_configmaps(n, pad_kib=8), message="three hundred")
    await kube.apply(new_app("big", home, git_repo.http_url, namespace))
    # The API server holds the 21st create in the namespace at a real admission webhook:
    # the controller is then mid-sync for certain, however fast or slow this machine is.
    hold = AdmissionHold(kube, namespace, "configmaps", hold_at=21, label="tether.dev/app")
    await hold.start(tmp_path)
    try:
        ctl = ControllerProcess(tmp_path, "ctl", kubeconfig, home)
        processes.append(ctl.start())
        try:
            await asyncio.wait_for(hold.held.wait(), WAIT)
        except TimeoutError:
            raise AssertionError("the controller created nothing\n" + ctl.tail()) from None

        async def some_exist() -> bool:
            return bool(await live_uids(kube, namespace))

        await eventually(some_exist, WAIT, "a ConfigMap created before the held one")
        ctl.kill()
        live = set(await live_uids(kube, namespace))
        # Killed mid-sync: some objects exist, the held one cannot, and nothing exists that
        # the webhook did not let through.
        assert live and hold.held_name not in live
        assert live <= set(hold.admitted), (live, hold.admitted)
        st = await app_status(kube, home, "big")
        # The marker written at the start of the sync is still there: nobody finished it.
        assert st["operationState"]["phase"] == "Running", st["operationState"]
        assert st["operationState"]["revision"] == sha
        assert integrity_check(ctl.audit_db) == "ok"
    finally:
        await hold.stop()
    existing = len(live)

    restarted = ControllerProcess(tmp_path, "ctl", kubeconfig, home)
    processes.append(restarted.start())

    async def converged() -> bool:
        return len(await live_uids(kube, namespace)) == n and bool(
            await synced_to(kube, home, "big", sha)
        )

    try:
        await eventually(converged, WAIT, f"all {n} objects after the restart")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{restarted.tail()}") from None
    assert integrity_check(restarted.audit_db) == "ok"

    async def audited() -> list[Any]:
        store = SqliteAuditStore(restarted.audit_db)
        try:
            return [r for r in store.query(app=f"{home}/big") if r.kind == "sync"]
        finally:
            store.close()

    # The audit record is appended beside the end's Event, after the end status is written.
    syncs = await eventually(audited, WAIT, "the sync's audit record")
    # Only the restarted process finished a sync; the killed one never recorded one.
    assert [(r.revision, r.result) for r in syncs] == [(sha, "Succeeded")], syncs
    print(f"\n[SIGKILL] {existing}/{n} ConfigMaps existed when the controller was killed")


# ---- 4. a flood of webhooks for many apps on one repository ---------------------------------


async def test_webhook_flood_for_many_apps_costs_one_fetch(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    apps = [f"svc-{i}" for i in range(10)]

    def files(version: str) -> dict[str, str]:
        return {f"apps/{a}/cm.yaml": cm_yaml(a, {"version": version}) for a in apps}

    first = git_repo.commit(files("1"), message="v1")
    for a in apps:
        await kube.apply(new_app(a, home, git_repo.http_url, namespace, path=f"apps/{a}"))
    polls_before = poller_looks()
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
        assert rt.controller is not None
        git = rt.controller.engine.git

        async def all_synced(sha: str) -> bool:
            for a in apps:
                if not await synced_to(kube, home, a, sha):
                    return False
            return True

        async def poller_looked() -> bool:
            return poller_looks() > polls_before

        await eventually(lambda: all_synced(first), WAIT, "initial sync of 10 apps")
        # The poller's first look at the repository (shortly after start) is behind us too.
        await eventually(poller_looked, WAIT, "the poller's first look")
        fetches, ls_remotes = git.fetch_count, git.ls_remote_count

        second = await asyncio.to_thread(git_repo.commit, files("2"), message="v2")
        body, headers = github_push(git_repo, second)
        url = f"http://127.0.0.1:{rt.port}/api/webhook"
        async with aiohttp.ClientSession() as http:

            async def send() -> tuple[int, Any]:
                async with http.post(url, data=body, headers=headers) as resp:
                    return resp.status, await resp.json()

            answers = await asyncio.gather(*(send() for _ in range(30)))
        assert answers == [(200, {"status": "accepted", "apps": 10})] * 30
        await eventually(lambda: all_synced(second), WAIT, "10 apps synced to the new commit")
        for a in apps:
            cm = await kube.get("v1", "ConfigMap", a, namespace)
            assert cm is not None and cm["data"]["version"] == "2"
        fetched = git.fetch_count - fetches
        listed = git.ls_remote_count - ls_remotes
    print(f"\n[webhook flood] 30 webhooks x 10 apps: {fetched} fetch, {listed} ls-remote")
    assert fetched == 1
    assert listed <= 3


# ---- 5. the shipped RBAC is enough ----------------------------------------------------------


def app_rbac_and_custom_resources(group: str) -> dict[str, str]:
    """What apps commonly ship besides workloads: a CRD and a custom resource of it, and a
    Role (allowing to list Secrets) bound to the app's own ServiceAccount."""
    crd = widget_crd(group, "widgets", "Widget")
    widget = {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {"name": "gear"},
        "spec": {"size": 12},
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "reads-secrets"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "reads-secrets"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "reads-secrets",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "web"}],
    }
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web"}}
    return {
        f"app/{name}.yaml": yaml.safe_dump(obj)
        for name, obj in (
            ("crd", crd),
            ("widget", widget),
            ("role", role),
            ("binding", binding),
            ("account", account),
        )
    }


async def test_the_shipped_rbac_runs_the_controller_for_apps_shipping_rbac_and_crds(
    kube: KubeClient,
    kubeconfig: str,
    namespace: str,
    git_server: GitServer,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    await apply_for_real(kube, "base/namespace.yaml", "base/serviceaccount.yaml", "rbac.yaml")
    await apply_for_real(kube, "crds/application.yaml")
    await kube.wait_for_resource(API_VERSION, "Application")
    token = await service_account_token(kube, SYSTEM_NS, "tether-controller")
    config = token_kubeconfig(kubeconfig, token, tmp_path / "sa.kubeconfig")
    name = f"rbac-{uuid.uuid4().hex[:8]}"
    group = f"{name}.example.com"
    secret_name = f"{name}-repo"
    sha = git_repo.commit(
        {
            **app_rbac_and_custom_resources(group),
            "app/cm.yaml": cm_yaml("settings", {"color": "blue"}),
            "app/secret.yaml": yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "token"},
                    "stringData": {"token": "s3cr3t"},
                }
            ),
            "app/deploy.yaml": WEB_DEPLOYMENT,
        },
        message="rbac",
    )
    # The whole repository URL: the longest prefix wins over other tests' Secrets here.
    await repo_secret(kube, SYSTEM_NS, secret_name, git_repo.http_url, git_server.token)
    await kube.apply(new_app(name, SYSTEM_NS, git_repo.http_url, namespace, self_heal=True))
    try:
        opts = runtime_options(SYSTEM_NS, tmp_path, str(config))
        async with Runtime(opts):
            await eventually(lambda: synced_to(kube, SYSTEM_NS, name, sha), WAIT, "synced")
            for kind, obj_name in (("ConfigMap", "settings"), ("Secret", "token")):
                assert await kube.get("v1", kind, obj_name, namespace) is not None
            assert await kube.get("apps/v1", "Deployment", "web", namespace) is not None
            widget = await kube.get(f"{group}/v1", "Widget", "gear", namespace)
            assert widget is not None and widget["spec"] == {"size": 12}
            rbac = "rbac.authorization.k8s.io/v1"
            assert await kube.get(rbac, "Role", "reads-secrets", namespace) is not None
            assert await kube.get(rbac, "RoleBinding", "reads-secrets", namespace) is not None

            live = await kube.get("v1", "ConfigMap", "settings", namespace)
            assert live is not None
            await kube.merge_patch(live, {"data": {"color": "red"}}, field_manager="intruder")

            async def healed() -> bool:
                cm = await kube.get("v1", "ConfigMap", "settings", namespace)
                return bool(cm and cm["data"]["color"] == "blue")

            await eventually(healed, WAIT, "self-heal of a live edit")

            async def reasons() -> set[str]:
                events, _ = await kube.list("v1", "Event", SYSTEM_NS)
                got = {e["reason"] for e in events if e["involvedObject"]["name"] == name}
                want = {"SyncStarted", "SyncSucceeded", "DriftDetected", "DriftCorrected"}
                return got if want <= got else set()

            await eventually(reasons, WAIT, "events written with the ServiceAccount")
            await eventually(lambda: synced_to(kube, SYSTEM_NS, name, sha), WAIT, "synced")
    finally:
        await release_applications(kube, SYSTEM_NS, name)  # no controller left to finalize it
        await kube.delete(API_VERSION, "Application", name, SYSTEM_NS)
        await kube.delete("v1", "Secret", secret_name, SYSTEM_NS)
        await kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", f"widgets.{group}")


# ---- 6. HA: the standby takes over from a killed leader -------------------------------------


async def lease_spec(kube: KubeClient, namespace: str) -> dict[str, Any]:
    lease = await kube.get("coordination.k8s.io/v1", "Lease", "tether-controller", namespace)
    assert lease is not None
    spec: dict[str, Any] = lease["spec"]
    return spec


async def test_standby_takes_over_once_the_killed_leaders_lease_expires(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    processes: list[ControllerProcess],
) -> None:
    first = git_repo.commit({"app/cm.yaml": cm_yaml("ha", {"v": "1"})}, message="v1")
    await kube.apply(new_app("ha", home, git_repo.http_url, namespace))
    ctls = {
        ident: ControllerProcess(
            tmp_path, ident, kubeconfig, home, "--leader-elect", "--identity", ident
        )
        for ident in ("replica-a", "replica-b")
    }
    for c in ctls.values():
        processes.append(c.start())

    async def holder() -> str:
        lease = await kube.get("coordination.k8s.io/v1", "Lease", "tether-controller", home)
        return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")

    def logs() -> str:
        return "\n".join(c.tail() for c in ctls.values())

    async def leads(c: ControllerProcess, want: float) -> bool:
        return await c.metric("tether_leader") == want

    try:
        leader = await eventually(holder, WAIT, "a leader")
        assert leader in ctls, leader
        (standby,) = set(ctls) - {leader}
        await eventually(lambda: synced_to(kube, home, "ha", first), WAIT, "synced by the leader")
        # Exactly one leads: each process says so on /metrics.
        await eventually(lambda: leads(ctls[standby], 0), WAIT, f"{standby} serving, standing by")
        assert await leads(ctls[leader], 1)
        assert await holder() == leader
    except AssertionError as e:
        raise AssertionError(f"{e}\n{logs()}") from None

    ctls[leader].kill()
    # The killed leader's last word: nobody renews this Lease any more.
    last = await lease_spec(kube, home)
    assert last["holderIdentity"] == leader
    second = git_repo.commit({"app/cm.yaml": cm_yaml("ha", {"v": "2"})}, message="v2")
    try:
        new = await eventually(
            lambda: _holder_other_than(holder, leader), WAIT, "another holder of the Lease"
        )
        await eventually(lambda: synced_to(kube, home, "ha", second), WAIT, "the new commit")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{logs()}") from None
    assert new == standby
    # It took over as soon as allowed and not before: a new term, begun once the dead
    # leader's lease (its last renewal plus the lease duration) had run out.
    taken = await lease_spec(kube, home)
    renewed = parse_micro_time(last["renewTime"])
    assert renewed is not None
    expired_at = renewed + timedelta(seconds=int(last["leaseDurationSeconds"]))
    acquired_at = parse_micro_time(taken["acquireTime"])
    assert acquired_at is not None and acquired_at >= expired_at, (last, taken)
    assert taken["leaseTransitions"] == int(last.get("leaseTransitions") or 0) + 1
    print(f"\n[HA] {standby} took over {acquired_at - expired_at} after the lease expired")
    cm = await kube.get("v1", "ConfigMap", "ha", namespace)
    assert cm is not None and cm["data"]["v"] == "2"
    # The sync of the new commit was the standby's own work. Its Event is written beside
    # the audit record, after the end status the wait above saw: wait for it too.

    async def synced_by() -> set[str]:
        events, _ = await kube.list("v1", "Event", home)
        return {
            str(e.get("reportingInstance"))
            for e in events
            if e["reason"] == "SyncSucceeded" and second[:10] in e.get("message", "")
        }

    by = await eventually(synced_by, WAIT, "the SyncSucceeded Event of the new commit")
    assert by == {standby}, by


async def _holder_other_than(holder: Callable[[], Awaitable[str]], old: str) -> str:
    h = await holder()
    return h if h and h != old else ""
