"""One bad Application or Secret never stops the others: refused on admission where the
schema can say so, and otherwise contained to its own app, on the real control plane."""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from devcluster.gitserver import GitServer, RepoHandle

from cluster_helpers import (
    WAIT,
    cm_yaml,
    eventually,
    github_push,
    new_app,
    now,
    run_tether,
    runtime_options,
    synced_to,
)
from tether.api.application import new_application
from tether.controller.runtime import Runtime
from tether.errors import KubeError
from tether.kube import KubeClient

DER = bytes.fromhex("308203a2a0030201020214") + b"\xff\xfe\x80\x00"


async def test_the_api_server_refuses_a_repo_url_that_cannot_be_parsed(
    kube: KubeClient,
    home: str,
) -> None:
    for bad in ("http://[oops/x.git", "http://host:port/x.git", "https://host/a b.git"):
        obj = new_application("bad", home, repo_url="https://h/x.git", path="app")
        obj["spec"]["source"]["repoURL"] = bad
        with pytest.raises(KubeError) as err:
            await kube.apply(obj)
        assert err.value.status == 422, err.value
        assert "repoURL" in str(err.value)
    for good in ("http://[::1]:8080/x.git", "git@github.com:org/x.git", "file:///srv/x"):
        obj = new_application("good", home, repo_url=good, path="app")
        await kube.apply(obj, dry_run=True)


async def test_an_unparsable_repo_url_fails_its_own_app_only(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "tether")
    first = git_repo.commit({"app/cm.yaml": cm_yaml("good", {"v": "1"})})
    await kube.apply(new_app("good", home, git_repo.http_url, namespace, interval="1s"))
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
        ctl = rt.controller
        assert ctl is not None
        await eventually(lambda: synced_to(kube, home, "good", first), WAIT, "first sync")
        # An Application stored before the schema refused such URLs, on the same host and
        # path as the good one, as the controller would have it from its watch.
        ghost = copy.deepcopy(ctl.apps[(home, "good")])
        ghost["metadata"]["name"] = "ghost"
        ghost["spec"]["source"]["repoURL"] = "http://[oops/" + git_repo.http_url.rsplit("/")[-1]
        key = (home, "ghost")
        ctl.apps[key] = ghost
        ctl.queue.add(key, "spec")

        # Webhooks still work for everyone else.
        second = git_repo.commit({"app/cm.yaml": cm_yaml("good", {"v": "2"})})
        assert await push(rt.port, git_repo, second) == (200, {"status": "accepted", "apps": 1})
        await eventually(lambda: synced_to(kube, home, "good", second), WAIT, "webhook sync")
        # So does polling.
        third = git_repo.commit({"app/cm.yaml": cm_yaml("good", {"v": "3"})})
        await eventually(lambda: synced_to(kube, home, "good", third), WAIT, "polled commit")
        # The bad app was reconciled to an InvalidSpec, not retried as a crash.
        await eventually(lambda: now(ctl.queue.idle(key)), WAIT, "ghost reconciled")
        assert ctl.liveness_problem() == ""
    assert not [r for r in caplog.records if r.exc_info], "no traceback"
    assert not [r for r in caplog.records if "reconcile of" in r.getMessage()]


async def test_a_binary_secret_value_is_skipped_for_every_app_and_webhook(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_server: GitServer,
    git_repo: RepoHandle,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "tether")
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    # The repository's own Secret (its full URL is the longest prefix: it is the one used),
    # with a DER certificate added by `kubectl create secret --from-file`.
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "with-cert",
                "namespace": home,
                "labels": {"tether.dev/secret-type": "repository"},
            },
            "data": {
                "url": b64(git_repo.http_url.encode()),
                "username": b64(b"git"),
                "password": b64(git_server.token.encode()),
                "ca.der": b64(DER),
            },
        }
    )
    webhook = await kube.get("v1", "Secret", "tether-webhook", home)
    assert webhook is not None
    await kube.merge_patch(webhook, {"data": {"ca.der": b64(DER)}})

    first = git_repo.commit({"app/cm.yaml": cm_yaml("cert", {"v": "1"})})
    await kube.apply(new_app("cert", home, git_repo.http_url, namespace))
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
        await eventually(lambda: synced_to(kube, home, "cert", first), WAIT, "synced")
        second = git_repo.commit({"app/cm.yaml": cm_yaml("cert", {"v": "2"})})
        assert await push(rt.port, git_repo, second) == (200, {"status": "accepted", "apps": 1})
        await eventually(lambda: synced_to(kube, home, "cert", second), WAIT, "webhook sync")

    named = [r.getMessage() for r in caplog.records if "'ca.der'" in r.getMessage()]
    assert any(f"{home}/with-cert" in m for m in named), named
    assert any(f"{home}/tether-webhook" in m for m in named), named
    assert git_server.token not in caplog.text
    # The CLI reads the same Secret: a diff, not a traceback.
    code, out = await asyncio.wait_for(
        run_tether(kubeconfig, "-n", home, "app", "diff", "cert"), WAIT
    )
    assert code == 0, out
    assert "Traceback" not in out and "UnicodeDecodeError" not in out


async def push(port: int, repo: RepoHandle, sha: str) -> tuple[int, Any]:
    """A signed GitHub push delivery to the controller: its status and JSON answer."""
    body, headers = github_push(repo, sha)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}/api/webhook", data=body, headers=headers) as r,
    ):
        return r.status, await r.json()
