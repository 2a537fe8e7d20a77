"""Apps with several sources on the real control plane and git server: polling and webhooks
follow every repository an app reads, and status and history carry one revision per source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from devcluster.chartrepo import ChartRepo, write_chart
from devcluster.gitserver import RepoHandle

from cluster_helpers import (
    WAIT,
    app_status,
    cm_yaml,
    eventually,
    first_polls_done,
    github_push,
    new_app,
    run_tether,
    runtime_options,
)
from helm_repos import CHART as GREETER
from tether.api.application import API_VERSION, KIND
from tether.controller.runtime import Runtime
from tether.kube import KubeClient
from tether.model import Obj
from tether.source import helm_http
from tether.source.helm_repo import clear_index_cache

CHART = {
    "chart/Chart.yaml": yaml.safe_dump(
        {"apiVersion": "v2", "name": "settings", "version": "0.1.0", "type": "application"}
    ),
    "chart/values.yaml": "color: grey\n",
    "chart/templates/cm.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
        "data:\n  color: {{ .Values.color | quote }}\n"
    ),
}


def values_yaml(color: str) -> dict[str, str]:
    return {"env/prod/values.yaml": f"color: {color}\n"}


def two_source_app(
    name: str, ns: str, chart: RepoHandle, values: RepoHandle, dest: str, interval: str
) -> Obj:
    """A chart from one repository with its values file from another (Argo CD's ``ref``)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": ns,
            "annotations": {"tether.dev/refresh-interval": interval},
        },
        "spec": {
            "sources": [
                {
                    "repoURL": chart.http_url,
                    "targetRevision": "main",
                    "path": "chart",
                    "helm": {"valueFiles": ["$values/env/prod/values.yaml"]},
                },
                {"repoURL": values.http_url, "targetRevision": "main", "ref": "values"},
            ],
            "destination": {"namespace": dest},
            "syncPolicy": {"automated": {"prune": True}},
        },
    }


async def live_color(kube: KubeClient, ns: str) -> str:
    cm = await kube.get("v1", "ConfigMap", "settings", ns)
    return str(((cm or {}).get("data") or {}).get("color", ""))


async def synced_at(
    kube: KubeClient, home: str, name: str, revisions: list[str]
) -> dict[str, Any] | None:
    """The status once the app is Synced with exactly these per-source revisions."""
    st = await app_status(kube, home, name)
    sync = st.get("sync") or {}
    ok = (
        sync.get("status") == "Synced"
        and sync.get("revisions") == revisions
        and (st.get("operationState") or {}).get("phase") == "Succeeded"
    )
    return st if ok else None


def second_repo(git_repo: RepoHandle) -> RepoHandle:
    return git_repo.server.create_repo(git_repo.name + "-values")


async def test_a_commit_to_the_values_repository_alone_resyncs_the_app_by_polling(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    values = second_repo(git_repo)
    chart_sha = git_repo.commit(CHART)
    first = values.commit(values_yaml("blue"))
    await kube.apply(two_source_app("web", home, git_repo, values, namespace, interval="1s"))
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
        st = await eventually(
            lambda: synced_at(kube, home, "web", [chart_sha, first]), WAIT, "first sync"
        )
        assert st["sync"]["revision"] == chart_sha
        assert len(st["sourceTypes"]) == 2 and st["sourceTypes"][0] == "Helm"
        assert await live_color(kube, namespace) == "blue"

        second = values.commit(values_yaml("green"))
        st = await eventually(
            lambda: synced_at(kube, home, "web", [chart_sha, second]), WAIT, "values commit polled"
        )
        assert await live_color(kube, namespace) == "green"
        entry = st["history"][0]
        assert entry["revisions"] == [chart_sha, second]
        assert entry["trigger"] == "poll"
        assert [s["repoURL"] for s in entry["sources"]] == [git_repo.http_url, values.http_url]
        assert entry["sources"][0]["path"] == "chart"
        assert entry["sources"][1]["ref"] == "values"
        # The audit trail records each source's revision too.
        assert rt.store is not None
        store = rt.store

        async def audited() -> Any:
            recs = await store.query(app=f"{home}/web")
            return next(
                (
                    r
                    for r in recs
                    if r.kind == "sync"
                    and r.revision == chart_sha
                    and r.details.get("revisions") == [chart_sha, second]
                ),
                None,
            )

        rec = await eventually(audited, WAIT, "audit record")
        assert rec.details["sources"][1]["repoURL"] == values.http_url


async def test_a_push_webhook_for_the_values_repository_resyncs_the_app(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    values = second_repo(git_repo)
    chart_sha = git_repo.commit(CHART)
    first = values.commit(values_yaml("blue"))
    # Polled hourly: only the webhook can bring the new commit in within the test.
    await kube.apply(two_source_app("web", home, git_repo, values, namespace, interval="1h"))
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
        await eventually(
            lambda: synced_at(kube, home, "web", [chart_sha, first]), WAIT, "first sync"
        )
        await first_polls_done(rt, (home, "web"), git_repo.http_url, values.http_url)
        second = values.commit(values_yaml("green"))
        body, headers = github_push(values, second)
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://127.0.0.1:{rt.port}/api/webhook", data=body, headers=headers
            ) as resp,
        ):
            assert resp.status == 200, await resp.text()
            assert (await resp.json()) == {"status": "accepted", "apps": 1}
        st = await eventually(
            lambda: synced_at(kube, home, "web", [chart_sha, second]), WAIT, "webhook sync"
        )
        assert st["history"][0]["trigger"] == "webhook"
        assert await live_color(kube, namespace) == "green"


async def test_app_get_and_history_show_each_sources_revision(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    values = second_repo(git_repo)
    chart_sha = git_repo.commit(CHART)
    first = values.commit(values_yaml("blue"))
    await kube.apply(two_source_app("web", home, git_repo, values, namespace, interval="1h"))
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)):
        await eventually(
            lambda: synced_at(kube, home, "web", [chart_sha, first]), WAIT, "first sync"
        )
    code, out = await run_tether(kubeconfig, "app", "get", "web", "-n", home)
    assert code == 0, out
    assert chart_sha[:10] in out and first[:10] in out
    assert values.http_url in out
    code, out = await run_tether(kubeconfig, "app", "history", "web", "-n", home)
    assert code == 0, out
    assert f"{chart_sha[:10]},{first[:10]}" in out
    code, out = await run_tether(kubeconfig, "app", "history", "web", "-n", home, "-o", "json")
    assert code == 0, out
    assert json.loads(out)[0]["revisions"] == [chart_sha, first]


async def test_a_repository_two_apps_spell_differently_is_polled_once(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    sha = git_repo.commit({"app/cm.yaml": cm_yaml("one", {"v": "1"})})
    for name, url in (
        ("plain", git_repo.http_url),
        ("dotgit", git_repo.http_url.removesuffix(".git") + ".git/"),
    ):
        await kube.apply(new_app(name, home, url, namespace, auto_sync=False))
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
        ctl = rt.controller
        assert ctl is not None
        targets = ctl.poller.targets()
        assert len(targets) == 1
        # A change seen on the one poll refreshes both apps.
        assert ctl.refresh_repo(git_repo.http_url, "poll") == 2
        await eventually(lambda: _both_compared(kube, home, sha), WAIT, "both apps compared")


async def _both_compared(kube: KubeClient, home: str, sha: str) -> bool:
    revs = [
        ((await app_status(kube, home, n)).get("sync") or {}).get("revision")
        for n in ("plain", "dotgit")
    ]
    return revs == [sha, sha]


async def test_a_new_chart_version_in_a_helm_repository_is_picked_up_at_the_poll_interval(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    chart_repo: ChartRepo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The index is re-read once it is older than this (a minute by default).
    monkeypatch.setattr(helm_http, "INDEX_TTL", 0.5)
    clear_index_cache()
    obj: Obj = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": "greeter",
            "namespace": home,
            "annotations": {"tether.dev/refresh-interval": "1s"},
        },
        "spec": {
            "source": {"repoURL": chart_repo.url, "chart": GREETER, "targetRevision": "1.2.*"},
            "destination": {"namespace": namespace},
            "syncPolicy": {"automated": {"prune": True}},
        },
    }
    await kube.apply(obj)

    async def deployed(version: str) -> dict[str, Any] | None:
        st = await app_status(kube, home, "greeter")
        ok = (st.get("sync") or {}).get("status") == "Synced" and (
            st.get("operationState") or {}
        ).get("revision") == version
        return st if ok else None

    async with Runtime(runtime_options(home, tmp_path, kubeconfig)):
        st = await eventually(lambda: deployed("1.2.4"), WAIT, "1.2.4 deployed")
        assert st["sourceTypes"] == ["Helm"]
        src = write_chart(tmp_path / "src", GREETER, config_value="hello from 1.2.9")
        archive = ChartRepo(tmp_path / "pkg").add_chart(src, "1.2.9")
        archive.rename(chart_repo.root / archive.name)
        chart_repo.index()
        st = await eventually(lambda: deployed("1.2.9"), WAIT, "1.2.9 deployed by polling")
    # Nothing but time brought 1.2.9 in (no webhook, no manual refresh). Usually the poll
    # sees it first ("poll"); a reconcile for another reason (a live event of the app's own
    # objects) made after the index went stale sees it as well, and records "auto".
    assert st["history"][0]["trigger"] in ("poll", "auto")
    cm = await kube.get("v1", "ConfigMap", "greeter-cm", namespace)
    assert cm is not None and cm["data"]["greeting"] == "hello from 1.2.9"
