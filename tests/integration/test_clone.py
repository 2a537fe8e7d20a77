"""``tether app clone`` and ``tether app sync --dest-namespace`` on the real control plane and
git server: an older commit reproduced in another namespace while the original stays as it
is, the refusals that keep a clone off what the original owns (nothing created), and the
Helm release name kept so the render is the original's."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from devcluster.gitserver import RepoHandle

from cluster_helpers import cm_yaml, new_app, run_tether
from source_apps import tree_files
from tether.api.application import API_VERSION
from tether.kube import KubeClient
from tether.service.clone_spec import CLONED_FROM_LABEL, CLONED_REVISIONS_ANNOTATION

POLL = "1h"
HELM_CHARTS = Path(__file__).resolve().parents[1] / "fixtures" / "helm" / "repo"


@pytest.fixture
async def staging(kube: KubeClient) -> AsyncIterator[str]:
    """A second namespace, where clones deploy."""
    name = f"stg-{uuid.uuid4().hex[:8]}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    await kube.delete("v1", "Namespace", name, propagation="Background")


async def app_obj(kube: KubeClient, ns: str, name: str) -> dict[str, Any] | None:
    return await kube.get(API_VERSION, "Application", name, ns)


async def original(
    kube: KubeClient, kubeconfig: str, home: str, repo: RepoHandle, dest: str, name: str = "web"
) -> dict[str, Any]:
    """An auto-synced app with render parameters, synced to the branch tip by the command."""
    obj = new_app(name, home, repo.http_url, dest, "app", POLL, auto_sync=True, prune=True)
    obj["spec"]["source"]["directory"] = {"recurse": True, "exclude": "*.txt"}
    obj["spec"]["syncPolicy"]["syncOptions"] = ["ServerSideApply=true"]
    obj["spec"]["ignoreDifferences"] = [{"kind": "ConfigMap", "jsonPointers": ["/data/free"]}]
    await kube.apply(obj)
    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", name, "--timeout", "60")
    assert code == 0, out
    got = await app_obj(kube, home, name)
    assert got is not None
    return got


async def test_clone_at_an_older_commit_leaves_the_original_untouched(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    staging: str,
    git_repo: RepoHandle,
) -> None:
    old = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"mode": "old"})}, message="old")
    new = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"mode": "new"})}, message="new")
    orig = await original(kube, kubeconfig, home, git_repo, namespace)
    assert orig["status"]["sync"]["revision"] == new
    live = await kube.get("v1", "ConfigMap", "settings", namespace)
    assert live is not None and live["data"] == {"mode": "new"}

    code, out = await run_tether(
        kubeconfig,
        "-n",
        home,
        "app",
        "clone",
        "web",
        "web-repro",
        "--revision",
        old[:10],
        "--dest-namespace",
        staging,
        "--timeout",
        "60",
    )
    assert code == 0, out
    assert "cloned web into Application web-repro" in out
    assert old in out, "the full commit the clone is at is printed"
    assert "automated sync removed" in out and "fixed commit" in out
    assert "Succeeded" in out

    # The old content in the staging namespace; the original's object not written to.
    copy = await kube.get("v1", "ConfigMap", "settings", staging)
    assert copy is not None and copy["data"] == {"mode": "old"}
    after = await kube.get("v1", "ConfigMap", "settings", namespace)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
    assert (await app_obj(kube, home, "web") or {})["spec"] == orig["spec"]

    clone = await app_obj(kube, home, "web-repro")
    assert clone is not None
    spec, ospec = clone["spec"], orig["spec"]
    assert spec["source"]["targetRevision"] == old  # resolved to the full sha
    assert {k: v for k, v in spec["source"].items() if k != "targetRevision"} == {
        k: v for k, v in ospec["source"].items() if k != "targetRevision"
    }
    assert spec["destination"]["namespace"] == staging
    assert spec["ignoreDifferences"] == ospec["ignoreDifferences"]
    assert spec["syncPolicy"]["syncOptions"] == ospec["syncPolicy"]["syncOptions"]
    assert "automated" not in spec["syncPolicy"]
    assert clone["metadata"]["labels"][CLONED_FROM_LABEL] == "web"
    assert clone["metadata"]["annotations"][CLONED_REVISIONS_ANNOTATION] == old
    assert clone["status"]["sync"]["revision"] == old


async def test_clone_refused_for_a_cluster_scoped_object_creates_nothing(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    staging: str,
    git_repo: RepoHandle,
) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": f"reader-{uuid.uuid4().hex[:6]}"},
        "rules": [],
    }
    git_repo.commit(
        {"app/cm.yaml": cm_yaml("settings", {"a": "1"}), "app/role.yaml": yaml.safe_dump(role)}
    )
    obj = new_app("ops", home, git_repo.http_url, namespace, "app", POLL, auto_sync=False)
    await kube.apply(obj)

    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "clone", "ops", "ops-copy", "--dest-namespace", staging
    )
    assert code == 2, out
    assert f"ClusterRole {role['metadata']['name']}" in out
    assert "app/role.yaml:1" in out and "is cluster-scoped" in out
    assert "Nothing was created" in out
    assert await app_obj(kube, home, "ops-copy") is None
    assert await kube.get("v1", "ConfigMap", "settings", staging) is None


async def test_clone_refused_for_an_object_in_another_namespace_creates_nothing(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    staging: str,
    git_repo: RepoHandle,
) -> None:
    pinned = yaml.safe_load(cm_yaml("shared", {"a": "1"}))
    pinned["metadata"]["namespace"] = namespace
    git_repo.commit(
        {"app/cm.yaml": cm_yaml("settings", {"a": "1"}), "app/shared.yaml": yaml.safe_dump(pinned)}
    )
    obj = new_app("svc", home, git_repo.http_url, namespace, "app", POLL, auto_sync=False)
    await kube.apply(obj)

    code, out = await run_tether(
        kubeconfig,
        "-n",
        home,
        "app",
        "sync",
        "svc",
        "--revision",
        "main",
        "--dest-namespace",
        staging,
    )
    assert code == 2, out
    assert f"ConfigMap shared (app/shared.yaml:1) is in namespace {namespace}" in out
    assert await app_obj(kube, home, f"svc-{staging}") is None
    # The original's own destination is refused too, before anything is rendered.
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "clone", "svc", "svc-2", "--dest-namespace", namespace
    )
    assert code == 2 and "would take over the original's objects" in out, out
    assert await app_obj(kube, home, "svc-2") is None


async def test_sync_with_dest_namespace_clones_into_name_ns_and_never_retargets(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    staging: str,
    git_repo: RepoHandle,
) -> None:
    first = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"v": "1"})})
    second = git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"v": "2"})})
    orig = await original(kube, kubeconfig, home, git_repo, namespace, name="api")

    code, out = await run_tether(
        kubeconfig,
        "-n",
        home,
        "app",
        "sync",
        "api",
        "--revision",
        first,
        "--dest-namespace",
        staging,
        "--timeout",
        "60",
    )
    assert code == 0, out
    clone_name = f"api-{staging}"
    assert f"Application {clone_name}" in out
    assert "is not retargeted" in out
    after = await app_obj(kube, home, "api")
    assert after is not None and after["spec"] == orig["spec"]
    assert after["status"]["sync"]["revision"] == second
    copy = await kube.get("v1", "ConfigMap", "settings", staging)
    assert copy is not None and copy["data"] == {"v": "1"}

    # Again at another revision: the same clone is brought to it.
    code, out = await run_tether(
        kubeconfig,
        "-n",
        home,
        "app",
        "sync",
        "api",
        "--revision",
        second,
        "--dest-namespace",
        staging,
        "--timeout",
        "60",
    )
    assert code == 0, out
    assert "re-cloned api" in out
    clone = await app_obj(kube, home, clone_name)
    assert clone is not None and clone["spec"]["source"]["targetRevision"] == second
    copy = await kube.get("v1", "ConfigMap", "settings", staging)
    assert copy is not None and copy["data"] == {"v": "2"}

    # A second clone into that namespace would take the first one's objects over: refused.
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "clone", "api", "api-2", "--dest-namespace", staging
    )
    assert code == 2, out
    assert f"ConfigMap settings is Application {home}/{clone_name}'s" in out
    assert await app_obj(kube, home, "api-2") is None
    again = await kube.get("v1", "ConfigMap", "settings", staging)
    assert again is not None
    assert again["metadata"]["resourceVersion"] == copy["metadata"]["resourceVersion"]


async def test_clone_name_taken_by_another_app_is_refused(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    staging: str,
    git_repo: RepoHandle,
) -> None:
    git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"v": "1"})})
    await kube.apply(new_app("a", home, git_repo.http_url, namespace, "app", POLL, auto_sync=False))
    other = new_app("b", home, git_repo.http_url, staging, "app", POLL, auto_sync=False)
    await kube.apply(other)
    before = await app_obj(kube, home, "b")
    assert before is not None

    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "clone", "a", "b", "--dest-namespace", staging
    )
    assert code == 2, out
    assert f"Application {home}/b exists and is not a clone" in out
    now = await app_obj(kube, home, "b")
    assert now is not None
    assert now["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_a_helm_clone_keeps_the_original_release_name(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    staging: str,
    git_repo: RepoHandle,
) -> None:
    sha = git_repo.commit(tree_files(HELM_CHARTS), message="charts")
    obj = new_app("gb", home, git_repo.http_url, namespace, "helm-guestbook", POLL)
    obj["spec"]["source"]["helm"] = {"valueFiles": ["values-production.yaml"]}
    await kube.apply(obj)

    code, out = await run_tether(
        kubeconfig,
        "-n",
        home,
        "-o",
        "json",
        "app",
        "clone",
        "gb",
        "gb-repro",
        "--revision",
        "main",
        "--dest-namespace",
        staging,
        "--dry-run",
    )
    assert code == 0, out
    plan = json.loads(out)
    assert plan["dryRun"] is True and plan["revisions"] == [sha]
    helm = plan["application"]["spec"]["source"]["helm"]
    assert helm == {"valueFiles": ["values-production.yaml"], "releaseName": "gb"}
    # Named as the original's release names them, in the staging namespace.
    assert {(o["kind"], o["name"], o["namespace"]) for o in plan["objects"]} == {
        ("Deployment", "gb-helm-guestbook", staging),
        ("Service", "gb-helm-guestbook", staging),
    }
    assert await app_obj(kube, home, "gb-repro") is None, "a dry run creates nothing"


async def test_several_sources_from_a_history_id_or_the_synced_revisions(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    staging: str,
    git_repo: RepoHandle,
) -> None:
    def files(v: str) -> dict[str, str | bytes | None]:
        return {
            "front/cm.yaml": cm_yaml("front", {"v": v}),
            "back/cm.yaml": cm_yaml("back", {"v": v}),
        }

    one = git_repo.commit(files("1"))
    obj = new_app("duo", home, git_repo.http_url, namespace, "front", POLL, auto_sync=False)
    source = obj["spec"].pop("source")
    obj["spec"]["sources"] = [source, {**source, "path": "back"}]
    await kube.apply(obj)
    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "duo")
    assert code == 0, out
    two = git_repo.commit(files("2"))
    code, out = await run_tether(kubeconfig, "-n", home, "app", "sync", "duo")
    assert code == 0, out
    history = (await app_obj(kube, home, "duo") or {})["status"]["history"]
    first = next(e for e in history if e["revisions"] == [one, one])

    # A commit: the first source at it, the other as the original has it synced.
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "clone", "duo", "duo-mix", "--revision", one,
        "--dest-namespace", staging, "--no-sync", "--dry-run", "-o", "json",
    )  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["revisions"] == [one, two]

    # A history ID: every source at that entry's revisions.
    code, out = await run_tether(
        kubeconfig, "-n", home, "app", "clone", "duo", "duo-old", "--revision",
        str(first["id"]), "--dest-namespace", staging, "--timeout", "60",
    )  # fmt: skip
    assert code == 0, out
    assert f"revisions of history entry {first['id']}" in out
    clone = await app_obj(kube, home, "duo-old")
    assert clone is not None
    assert [s["targetRevision"] for s in clone["spec"]["sources"]] == [one, one]
    for name in ("front", "back"):
        cm = await kube.get("v1", "ConfigMap", name, staging)
        assert cm is not None and cm["data"] == {"v": "1"}
