"""``tether app pin`` / ``unpin`` with a real controller, control plane and git server: the
app is held at the pinned commit while auto-sync is on and new commits land, loudly
(condition, status, Event, metric, list, get, audit), and follows its branch once unpinned."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
from devcluster.chartrepo import ChartRepo
from devcluster.gitserver import RepoHandle

from cluster_helpers import (
    app_status,
    cm_yaml,
    condition,
    eventually,
    github_push,
    new_app,
    run_tether,
    runtime_options,
    synced_to,
)
from helm_repos import CHART, chart_repo, chart_repo_factory  # noqa: F401  (fixtures)
from tether.api.application import API_VERSION
from tether.controller.runtime import Runtime
from tether.kube import KubeClient


async def live_color(kube: KubeClient, ns: str) -> str:
    o = await kube.get("v1", "ConfigMap", "settings", ns)
    return str((o or {}).get("data", {}).get("color", ""))


async def push(port: int, repo: RepoHandle, sha: str) -> None:
    """The push webhook, as the git host sends it after ``sha`` landed on main."""
    body, headers = github_push(repo, sha)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}/api/webhook", data=body, headers=headers) as resp,
    ):
        assert resp.status == 200, await resp.text()


async def metrics_text(port: int, kube: KubeClient) -> str:
    """/metrics, scraped with the admin's token (a scrape needs one allowed to get it)."""
    headers = {"Authorization": f"Bearer {await kube.bearer_token()}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics", headers=headers) as resp,
    ):
        return await resp.text()


def series(text: str, name: str, ns: str, app: str) -> float | None:
    m = re.search(rf'^{name}\{{name="{app}",namespace="{ns}"\}} (\S+)$', text, re.M)
    if m is None:
        m = re.search(rf'^{name}\{{namespace="{ns}",name="{app}"\}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else None


def pinned_message(status: dict[str, Any]) -> str:
    c = condition(status, "Pinned")
    assert c is not None, status
    return str(c["message"])


async def audit_kinds(rt: Runtime, app: str) -> list[Any]:
    """The pin and unpin records of ``app`` in the controller's audit store."""
    assert rt.store is not None
    recs = await rt.store.query(app=app)
    return [r for r in recs if r.kind in ("pin", "unpin")]


async def events(kube: KubeClient, ns: str, app: str, reason: str) -> list[dict[str, Any]]:
    items, _ = await kube.list("v1", "Event", ns)
    return [e for e in items if e["involvedObject"]["name"] == app and e["reason"] == reason]


async def test_pin_holds_the_app_loudly_while_commits_land_and_unpin_lets_it_go(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    good = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "blue"})}, message="blue")
    bad = git_repo.commit(
        {"app/cm.yaml": cm_yaml("settings", {"color": "green"})},
        message="go green",
        author=("Bob", "bob@example.com"),
    )
    await kube.apply(new_app("shop", home, git_repo.http_url, namespace))

    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
        assert await eventually(lambda: synced_to(kube, home, "shop", bad), what="first sync")
        assert await live_color(kube, namespace) == "green"

        rc, text = await run_tether(
            kubeconfig,
            "app",
            "pin",
            "shop",
            good[:8],
            "--reason",
            "green breaks checkout",
            "-n",
            home,
        )
        assert rc == 0, text
        assert f"application/shop pinned at {good[:7]} by " in text

        # Auto-sync deploys the pinned commit, and the condition says how far behind it is.
        async def held(behind: str) -> dict[str, Any] | None:
            st = await app_status(kube, home, "shop")
            c = condition(st, "Pinned")
            ok = (
                c is not None
                and behind in c["message"]
                and (st.get("sync") or {}) == {"status": "Synced", "revision": good}
            )
            return st if ok else None

        st = await eventually(lambda: held("1 commit behind HEAD (newest "), what="pinned")
        msg = pinned_message(st)
        assert msg.startswith(f"pinned at {good[:7]} by ") and "(green breaks checkout)" in msg
        assert f"(newest {bad[:7]} by Bob)" in msg
        assert st["pin"]["revisions"] == [good] and st["pin"]["behind"] == [1]
        assert st["pin"]["branchHeads"] == [bad]
        assert await live_color(kube, namespace) == "blue"
        live = await kube.get("v1", "ConfigMap", "settings", namespace)
        assert live is not None
        version = live["metadata"]["resourceVersion"]

    # A restarted controller finds the pin announced (status.pin.at): no second Event or
    # audit record, checked below once it has shown it saw the next commit.
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
        # A new commit lands: seen (2 behind) and refused (live does not move).
        newer = git_repo.commit(
            {"app/cm.yaml": cm_yaml("settings", {"color": "red"})},
            message="go red",
            author=("Carol", "carol@example.com"),
        )
        await push(rt.port, git_repo, newer)
        st = await eventually(lambda: held("2 commits behind HEAD (newest "), what="new commit")
        assert f"(newest {newer[:7]} by Carol)" in pinned_message(st)
        live = await kube.get("v1", "ConfigMap", "settings", namespace)
        assert live is not None and live["metadata"]["resourceVersion"] == version

        # Loud: metric, one Event, the list and get lines.
        text = await metrics_text(rt.port, kube)
        assert series(text, "tether_app_pinned", home, "shop") == 1.0
        assert series(text, "tether_app_pin_commits_behind", home, "shop") == 2.0
        assert len(await events(kube, home, "shop", "Pinned")) == 1
        rc, text = await run_tether(kubeconfig, "app", "list", "-n", home)
        assert rc == 0 and f"Synced (pinned {good[:7]}, 2 behind)" in text, text
        rc, text = await run_tether(kubeconfig, "app", "get", "shop", "-n", home)
        assert rc == 0 and "Pinned:" in text and "2 commits behind" in text, text

        # A manual sync to another revision is refused, naming the pin and what to do.
        rc, text = await run_tether(
            kubeconfig, "app", "sync", "shop", "--revision", newer, "--timeout", "30", "-n", home
        )
        assert rc != 0, text
        assert "is pinned at" in text and "tether app unpin shop" in text, text
        live = await kube.get("v1", "ConfigMap", "settings", namespace)
        assert live is not None and live["metadata"]["resourceVersion"] == version

        # Unpin: the app follows its branch again, and the pin leaves no trace but history.
        rc, text = await run_tether(kubeconfig, "app", "unpin", "shop", "-n", home)
        assert rc == 0 and "application/shop unpinned" in text, text

        async def released() -> dict[str, Any] | None:
            st = await synced_to(kube, home, "shop", newer)
            return st if st is not None and "pin" not in st else None

        await eventually(released, what="unpinned app at the branch head")
        assert await live_color(kube, namespace) == "red"
        text = await metrics_text(rt.port, kube)
        assert series(text, "tether_app_pinned", home, "shop") is None
        assert series(text, "tether_app_pin_commits_behind", home, "shop") is None
        assert len(await events(kube, home, "shop", "Unpinned")) == 1
        obj = await kube.get(API_VERSION, "Application", "shop", home)
        assert obj is not None and "pin" not in obj["spec"]

        # Audited once each, with who asked.
        async def pin_records() -> list[Any]:
            recs = await audit_kinds(rt, f"{home}/shop")
            return recs if {r.kind for r in recs} == {"pin", "unpin"} else []

        recs = await eventually(pin_records, what="pin and unpin audit records")
        assert sorted(r.kind for r in recs) == ["pin", "unpin"]
        pin = next(r for r in recs if r.kind == "pin")
        unpin = next(r for r in recs if r.kind == "unpin")
        assert pin.revision == good and pin.message == "green breaks checkout"
        assert "@" in pin.user and unpin.user == pin.user
        assert unpin.revision == good


async def test_pin_several_sources_a_chart_version_and_a_history_id(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    chart_repo: ChartRepo,  # noqa: F811
    tmp_path: Path,
) -> None:
    v1 = git_repo.commit({"greeter/values.yaml": "greeting: one\n"}, message="one")
    obj = new_app("greet", home, git_repo.http_url, namespace)
    del obj["spec"]["source"]
    obj["spec"]["sources"] = [
        {
            "repoURL": chart_repo.url,
            "chart": CHART,
            "targetRevision": "~1.2.0",
            "helm": {"valueFiles": ["$values/greeter/values.yaml"], "releaseName": "greeter"},
        },
        {"repoURL": git_repo.http_url, "targetRevision": "HEAD", "ref": "values"},
    ]
    await kube.apply(obj)

    async def data() -> dict[str, str]:
        o = await kube.get("v1", "ConfigMap", "greeter-cm", namespace)
        return dict((o or {}).get("data") or {})

    async def deployed(greeting: str, version: str, *, pinned: str = "") -> dict[str, Any] | None:
        st = await app_status(kube, home, "greet")
        c = condition(st, "Pinned")
        ok = (
            await data() == {"greeting": greeting, "chartVersion": version}
            and (st.get("sync") or {}).get("status") == "Synced"
            and (c is not None and pinned in c["message"] if pinned else c is None)
        )
        return st if ok else None

    async with Runtime(runtime_options(home, tmp_path, kubeconfig)) as rt:
        await eventually(lambda: deployed("one", "1.2.4"), what="first sync", timeout=60)
        v2 = git_repo.commit({"greeter/values.yaml": "greeting: two\n"}, message="two")
        await push(rt.port, git_repo, v2)
        st = await eventually(lambda: deployed("two", "1.2.4"), what="second sync", timeout=60)
        first = st["history"][-1]
        assert first["revisions"] == ["1.2.4", v1]

        # A history ID: every source back at that deployment.
        rc, text = await run_tether(
            kubeconfig,
            "app",
            "pin",
            "greet",
            str(first["id"]),
            "--reason",
            "two is wrong",
            "-n",
            home,
        )
        assert rc == 0, text
        want = "source 1: chart 1.2.4 is still the newest for '~1.2.0'; source 2: 1 commit "
        st = await eventually(lambda: deployed("one", "1.2.4", pinned=want), what="history pin")
        assert st["pin"]["revisions"] == ["1.2.4", v1] and st["pin"]["behind"] == [-1, 1]
        assert st["pin"]["branchHeads"] == ["1.2.4", v2]

        # Several sources and no history ID: --source says which; the others stay put.
        rc, text = await run_tether(kubeconfig, "app", "pin", "greet", "1.2.3", "-n", home)
        assert rc != 0 and "--source N" in text, text
        rc, text = await run_tether(
            kubeconfig, "app", "pin", "greet", "1.2.3", "--source", "1", "-n", home
        )
        assert rc == 0, text
        want = "source 1: chart 1.2.4 is available for '~1.2.0'; source 2: 1 commit behind"
        st = await eventually(lambda: deployed("one", "1.2.3", pinned=want), what="chart pin")
        assert st["pin"]["revisions"] == ["1.2.3", v1]
        assert len(await events(kube, home, "greet", "Pinned")) == 2  # one per pin

        rc, text = await run_tether(kubeconfig, "app", "unpin", "greet", "-n", home)
        assert rc == 0, text
        await eventually(lambda: deployed("two", "1.2.4"), what="unpinned")
        kinds = [r.kind for r in await audit_kinds(rt, f"{home}/greet")]
        assert sorted(kinds) == ["pin", "pin", "unpin"]


async def test_without_a_controller_sync_deploys_the_pin_and_diff_can_look_past_it(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    good = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "blue"})})
    head = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "green"})})
    await kube.apply(new_app("solo", home, git_repo.http_url, namespace, auto_sync=False))

    rc, text = await run_tether(kubeconfig, "app", "pin", "solo", good, "-n", home)
    assert rc == 0 and "automated sync is off: deploy the pin with 'tether app sync solo'" in text
    obj = await kube.get(API_VERSION, "Application", "solo", home)
    assert obj is not None and obj["spec"]["pin"]["revisions"] == [good]
    fields = {m["manager"] for m in obj["metadata"]["managedFields"] if "f:pin" in str(m)}
    assert fields == {"tether-pin"}  # re-applying the manifest leaves the pin alone

    rc, text = await run_tether(kubeconfig, "app", "sync", "solo", "--timeout", "60", "-n", home)
    assert rc == 0, text
    assert await live_color(kube, namespace) == "blue"
    st = await app_status(kube, home, "solo")
    assert st["sync"] == {"status": "Synced", "revision": good}

    # The diff compares with the pin; asked for the branch, it shows what unpin would do.
    rc, text = await run_tether(kubeconfig, "app", "diff", "solo", "-n", home)
    assert rc == 0, text
    rc, text = await run_tether(
        kubeconfig, "app", "diff", "solo", "--revision", head, "--no-color", "-n", home
    )
    assert rc == 1 and "+  color: green" in text, text

    # Unpinning something that is not pinned says so.
    rc, text = await run_tether(kubeconfig, "app", "unpin", "solo", "-n", home)
    assert rc == 0, text
    rc, text = await run_tether(kubeconfig, "app", "unpin", "solo", "-n", home)
    assert rc == 2 and "is not pinned" in text, text
