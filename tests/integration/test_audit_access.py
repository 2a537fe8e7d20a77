"""Who may read the audit trail: the controller's /api/v1/audit checks bearer tokens with the
real API server (TokenReview) and answers only with what the caller may list
(SubjectAccessReview on applications.tether.dev); /metrics can move to a listener of its own.

The identities are real ServiceAccounts with real RBAC; the controller is the real runtime.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from identities import grant, service_account_token, token_kubeconfig
from tether.api.application import API_VERSION, crd_manifests
from tether.api.names import FORWARDED_AUTH
from tether.audit import AuditRecord, SqliteAuditStore
from tether.controller.runtime import Runtime, RuntimeOptions
from tether.kube import KubeClient

LIST_APPS = [{"apiGroups": ["tether.dev"], "resources": ["applications"], "verbs": ["list"]}]


@dataclass
class Setup:
    url: str
    metrics_url: str
    team_a: str
    team_b: str
    admin_token: str


def record(app: str, message: str) -> AuditRecord:
    return AuditRecord(id=None, time="", app=app, kind="sync", message=message, result="Succeeded")


@pytest.fixture
async def controller(
    kube: KubeClient, kubeconfig: str, tmp_path: Path
) -> AsyncIterator[tuple[Setup, KubeClient]]:
    for crd in crd_manifests():
        await kube.apply(crd)
    await kube.wait_for_resource(API_VERSION, "Application")
    suffix = uuid.uuid4().hex[:8]
    team_a, team_b, home = f"aa-{suffix}", f"ab-{suffix}", f"ah-{suffix}"
    for ns in (team_a, team_b, home):
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    with SqliteAuditStore(tmp_path / "audit.db") as store:
        store.append(record(f"{team_a}/web", "a1"))
        store.append(record(f"{team_b}/db", "b1"))
        store.append(record(f"{team_a}/api", "a2"))
    opts = RuntimeOptions(
        kubeconfig=kubeconfig,
        namespaces=[home],
        http_host="127.0.0.1",
        http_port=0,
        metrics_host="127.0.0.1",
        metrics_port=0,
        audit_db=tmp_path / "audit.db",
        cache_dir=tmp_path / "git",
    )
    admin_token = await kube.bearer_token()
    assert admin_token
    try:
        async with Runtime(opts) as rt:
            assert rt.metrics_runner is not None
            metrics_port = rt.metrics_runner.addresses[0][1]
            yield (
                Setup(
                    url=f"http://127.0.0.1:{rt.port}",
                    metrics_url=f"http://127.0.0.1:{metrics_port}",
                    team_a=team_a,
                    team_b=team_b,
                    admin_token=admin_token,
                ),
                kube,
            )
    finally:
        for ns in (team_a, team_b, home):
            await kube.delete("v1", "Namespace", ns, propagation="Background")


async def get(
    url: str, token: str | None = None, header: str = "Authorization", **params: str
) -> tuple[int, Any, Any]:
    headers = {header: f"Bearer {token}"} if token is not None else {}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s,
        s.get(url + "/api/v1/audit", params=params, headers=headers) as resp,
    ):
        return resp.status, await resp.json(content_type=None), resp.headers


def messages(body: list[dict[str, Any]]) -> list[str]:
    return sorted(r["message"] for r in body)


async def test_no_token_and_a_bad_token_are_401(controller: tuple[Setup, KubeClient]) -> None:
    setup, _ = controller
    status, body, headers = await get(setup.url)
    assert status == 401 and "bearer token is required" in body["error"]
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, body, _ = await get(setup.url, token="not-a-token")
    assert status == 401 and body["error"] == "the token is not valid"
    status, body, _ = await get(setup.url, token="")
    assert status == 401


async def test_an_account_without_rbac_reads_nothing(controller: tuple[Setup, KubeClient]) -> None:
    setup, kube = controller
    token = await service_account_token(kube, setup.team_a, "nobody")

    status, body, _ = await get(setup.url, token, app=f"{setup.team_a}/web")
    assert status == 403
    assert f"may not list applications.tether.dev in namespace {setup.team_a}" in body["error"]
    assert f"system:serviceaccount:{setup.team_a}:nobody" in body["error"]
    status, body, _ = await get(setup.url, token)
    assert (status, body) == (200, [])


async def test_an_account_allowed_in_one_namespace_reads_only_that_namespace(
    controller: tuple[Setup, KubeClient],
) -> None:
    setup, kube = controller
    token = await service_account_token(kube, setup.team_a, "team-a-reader")
    await grant(kube, setup.team_a, (setup.team_a, "team-a-reader"), LIST_APPS)

    status, body, _ = await get(setup.url, token)
    assert status == 200 and messages(body) == ["a1", "a2"]
    status, body, _ = await get(setup.url, token, app=f"{setup.team_a}/web")
    assert status == 200 and messages(body) == ["a1"]
    status, body, _ = await get(setup.url, token, app=f"{setup.team_b}/db")
    assert status == 403
    # Through the Kubernetes API server's proxy the token travels in the forwarded header.
    status, body, _ = await get(setup.url, token, header=FORWARDED_AUTH)
    assert status == 200 and messages(body) == ["a1", "a2"]


async def test_an_account_allowed_everywhere_reads_everything(
    controller: tuple[Setup, KubeClient],
) -> None:
    setup, _ = controller
    status, body, _ = await get(setup.url, setup.admin_token)
    assert status == 200
    assert messages(body) == ["a1", "a2", "b1"]


@pytest.mark.parametrize("since", ["99999999999h", "1000000000w", "9999-12-31T23:59:59-01:00"])
async def test_a_query_value_out_of_range_is_400_with_a_message(
    controller: tuple[Setup, KubeClient], since: str
) -> None:
    setup, _ = controller
    status, body, _ = await get(setup.url, setup.admin_token, since=since)
    assert status == 400
    assert "out of range" in body["error"] and since in body["error"]


async def tether(kubeconfig: str | Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``tether`` command, run off the event loop (the controller answering it
    runs on the loop)."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(COLUMNS="250", NO_COLOR="1")
    argv = [str(Path(sys.executable).with_name("tether")), "--kubeconfig", str(kubeconfig), *args]
    return await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, env=env, timeout=120
    )


async def test_the_cli_sends_the_kubeconfig_token(
    controller: tuple[Setup, KubeClient], kubeconfig: str, tmp_path: Path
) -> None:
    setup, kube = controller
    token = await service_account_token(kube, setup.team_a, "cli-reader")
    await grant(kube, setup.team_a, (setup.team_a, "cli-reader"), LIST_APPS)
    config = token_kubeconfig(kubeconfig, token, tmp_path / "reader.kubeconfig")

    reader = await tether(config, "-o", "json", "audit", "--server", setup.url)
    assert reader.returncode == 0, reader.stderr
    assert messages(json.loads(reader.stdout)) == ["a1", "a2"]
    admin = await tether(kubeconfig, "-o", "json", "audit", "--server", setup.url)
    assert admin.returncode == 0, admin.stderr
    assert messages(json.loads(admin.stdout)) == ["a1", "a2", "b1"]

    refused = await tether(config, "audit", "--server", setup.url, "--app", f"{setup.team_b}/db")
    assert refused.returncode == 2
    assert (
        f"the tether server at {setup.url} refused: "
        f"system:serviceaccount:{setup.team_a}:cli-reader may not list"
    ) in refused.stderr


async def test_the_cli_reads_tables_and_history_through_the_controller_api(
    controller: tuple[Setup, KubeClient], kubeconfig: str
) -> None:
    setup, _ = controller
    table = await tether(
        kubeconfig, "audit", "--server", setup.url + "/", "--app", f"{setup.team_a}/web"
    )
    assert table.returncode == 0, table.stderr
    rows = table.stdout.splitlines()[1:]
    assert [(r.split()[1], r.split()[2]) for r in rows] == [(f"{setup.team_a}/web", "sync")]
    history = await tether(
        kubeconfig, "-n", setup.team_a, "-o", "json", "app", "history", "api", "--server", setup.url
    )
    assert history.returncode == 0, history.stderr
    assert [h["message"] for h in json.loads(history.stdout)] == ["a2"]

    bad = await tether(kubeconfig, "audit", "--server", setup.url, "--app", "ns/a/extra")
    assert bad.returncode == 2
    assert "error: invalid app 'ns/a/extra'" in bad.stderr
    assert "<namespace>/<name>" in bad.stderr


async def test_metrics_can_be_served_on_a_listener_of_their_own(
    controller: tuple[Setup, KubeClient],
) -> None:
    setup, _ = controller
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        async with s.get(setup.metrics_url + "/metrics") as resp:
            assert resp.status == 200
            assert "tether_audit_records_lost_total" in await resp.text()
        async with s.get(setup.url + "/metrics") as resp:
            assert resp.status == 404
        async with s.get(setup.url + "/healthz") as resp:
            assert resp.status == 200
