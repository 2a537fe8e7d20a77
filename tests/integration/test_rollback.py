"""`tether app rollback` on the real control plane and git server (HTTP and SSH): the restoring
commit is written, pushed and synced, and the controller keeps it; refused when the branch
moved; without write access nothing changes and the git commands are printed; --branch leaves
the tracked branch alone; a pinned app is refused; Kustomize, Helm-in-git, Jsonnet and
several-source apps roll back too."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

from devcluster.gitserver import GitServer, RepoHandle

from cluster_helpers import (
    app_status,
    cm_yaml,
    eventually,
    new_app,
    run_tether,
    runtime_options,
    synced_to,
)
from tether.api.application import API_VERSION
from tether.controller.runtime import Runtime
from tether.kube import KubeClient
from tether.model import Obj

BAD_AUTHOR = ("Mallory Example", "mallory@example.com")
ADA = "Ada Lovelace <ada@example.com>"


# ---- helpers ---------


async def write_secret(
    kube: KubeClient, ns: str, name: str, url: str, label: str = "repository", **data: str
) -> None:
    """A Secret that lets tether push to ``url`` (``write: "true"`` on a repository Secret,
    or a ``repository-write`` Secret)."""
    extra = {"write": "true"} if label == "repository" else {}
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": {"tether.dev/secret-type": label},
            },
            "stringData": {"url": url, **extra, **data},
        }
    )


async def http_write_secret(kube: KubeClient, ns: str, repo: RepoHandle) -> None:
    await write_secret(kube, ns, "push", repo.http_url, username="git", password=repo.server.token)


async def tether(kubeconfig: str, *args: str) -> tuple[int, str]:
    return await run_tether(kubeconfig, *args)


async def live_data(kube: KubeClient, ns: str, name: str) -> dict[str, str] | None:
    obj = await kube.get("v1", "ConfigMap", name, ns)
    return None if obj is None else dict(obj.get("data") or {})


async def cli_sync(kubeconfig: str, home: str, name: str) -> None:
    code, out = await tether(kubeconfig, "app", "sync", name, "-n", home, "--timeout", "60")
    assert code == 0, out


def commit_of(repo: RepoHandle, sha: str) -> dict[str, str]:
    fmt = "%an%x00%ae%x00%cn%x00%P%x00%B"
    text = subprocess.run(
        ["git", "--git-dir", str(repo.path), "show", "-s", f"--format={fmt}", sha],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    name, email, committer, parents, body = text.split("\x00", 4)
    return {
        "author": f"{name} <{email}>",
        "committer": committer,
        "parents": parents,
        "message": body,
    }


def files_at(repo: RepoHandle, sha: str) -> set[str]:
    out = subprocess.run(
        ["git", "--git-dir", str(repo.path), "ls-tree", "-r", "--name-only", sha],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


async def refresh(kube: KubeClient, ns: str, name: str) -> None:
    app = await kube.get(API_VERSION, "Application", name, ns)
    assert app is not None
    await kube.merge_patch(
        app, {"metadata": {"annotations": {"tether.dev/refresh": uuid.uuid4().hex}}}
    )


# ---- with the controller: the rollback is deployed and kept ---------


async def test_rollback_writes_pushes_and_the_controller_keeps_it(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path: Path,
) -> None:
    good = git_repo.commit({"app/cm.yaml": cm_yaml("colour", {"colour": "blue"})}, message="blue")
    await http_write_secret(kube, home, git_repo)
    await kube.apply(new_app("shop", home, git_repo.http_url, namespace))
    async with Runtime(runtime_options(home, tmp_path, kubeconfig)):
        await eventually(lambda: synced_to(kube, home, "shop", good), 60, "good deployed")
        bad = git_repo.commit(
            {
                "app/cm.yaml": cm_yaml("colour", {"colour": "red"}),
                "app/extra.yaml": cm_yaml("extra", {"a": "b"}),
            },
            message="Paint it red",
            author=BAD_AUTHOR,
        )
        await refresh(kube, home, "shop")
        await eventually(
            lambda: synced_to(kube, home, "shop", bad), 60, "bad deployed by auto-sync"
        )
        assert await live_data(kube, namespace, "colour") == {"colour": "red"}

        code, out = await tether(
            kubeconfig, "app", "rollback", "shop", "-n", home, "--author", ADA, "-o", "json"
        )
        assert code == 0, out
        body = json.loads(out[out.index("{") :])
        assert body["state"] == "synced" and body["sync"]["phase"] == "Succeeded"
        restoring = git_repo.head()
        assert body["repositories"][0]["commit"] == restoring
        commit = commit_of(git_repo, restoring)
        assert commit["author"] == ADA and commit["committer"] == "tether"
        assert commit["parents"] == bad
        assert commit["message"].startswith('Revert "Paint it red"\n')
        assert f"This reverts commit {bad}." in commit["message"]
        assert "Mallory Example <mallory@example.com>" in commit["message"]
        assert "app/extra.yaml" not in files_at(git_repo, restoring)

        st = await app_status(kube, home, "shop")
        assert st["sync"]["revision"] == restoring
        op = st["operationState"]["operation"]
        assert (op["trigger"], op["initiatedBy"]) == ("rollback", ADA)
        assert await live_data(kube, namespace, "colour") == {"colour": "blue"}
        assert await kube.get("v1", "ConfigMap", "extra", namespace) is None

        # A later commit elsewhere in the repository: the controller compares (its status
        # moves to that commit) and the app stays rolled back, auto-sync on.
        later = git_repo.commit({"docs/README.md": "notes\n"}, message="docs")
        await refresh(kube, home, "shop")
        await eventually(lambda: synced_to(kube, home, "shop", later), 60, "re-compared at later")
        assert await live_data(kube, namespace, "colour") == {"colour": "blue"}
        st = await app_status(kube, home, "shop")
        assert st["history"][0]["revision"] in (restoring, later)  # bad never deployed again


# ---- refusals and the no-credentials mode ---------


async def test_rollback_refused_when_the_branch_moved(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    good = git_repo.commit({"app/cm.yaml": cm_yaml("colour", {"colour": "blue"})}, message="b")
    bad = git_repo.commit({"app/cm.yaml": cm_yaml("colour", {"colour": "red"})}, message="red")
    await http_write_secret(kube, home, git_repo)
    await kube.apply(new_app("moved", home, git_repo.http_url, namespace, auto_sync=False))
    await cli_sync(kubeconfig, home, "moved")
    assert (await app_status(kube, home, "moved"))["sync"]["revision"] == bad
    # Someone pushes after the on-call engineer looked at the app.
    other = git_repo.commit(
        {"app/cm.yaml": cm_yaml("colour", {"colour": "green"})},
        message="Try green",
        author=("Bob Builder", "bob@example.com"),
    )

    code, out = await tether(kubeconfig, "app", "rollback", "moved", "-n", home, "--to", good)
    assert code == 4, out
    assert other[:10] in out and "Try green" in out and "Bob Builder" in out
    assert "nothing was pushed" in out
    assert git_repo.head() == other

    # --expect with a head that is not the branch's: refused the same way.
    code, out = await tether(
        kubeconfig, "app", "rollback", "moved", "-n", home, "--to", good, "--expect", bad
    )
    assert code == 4 and git_repo.head() == other, out


async def test_rollback_without_write_access_prints_the_commands_then_pushes_over_ssh(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    git_server: GitServer,
) -> None:
    ssh = {
        "sshPrivateKey": git_server.ssh_key_path.read_text(),
        "knownHosts": git_server.known_hosts_path.read_text(),
    }
    await write_secret(kube, home, "ssh-read", git_repo.ssh_url, **ssh)
    read_only = await kube.get("v1", "Secret", "ssh-read", home)
    assert read_only is not None
    await kube.merge_patch(read_only, {"stringData": {"write": "false"}})
    good = git_repo.commit({"app/cm.yaml": cm_yaml("colour", {"colour": "blue"})}, message="blue")
    bad = git_repo.commit({"app/cm.yaml": cm_yaml("colour", {"colour": "red"})}, message="red")
    await kube.apply(new_app("manual", home, git_repo.ssh_url, namespace, auto_sync=False))
    await cli_sync(kubeconfig, home, "manual")

    code, out = await tether(kubeconfig, "app", "rollback", "manual", "-n", home, "--to", good)
    assert code == 3, out
    assert "no write access" in out and "nothing was" in out
    assert "git clone --branch main" in out and f"git checkout {good} -- app" in out
    assert 'Revert "red"' in out and f"This reverts commit {bad}." in out
    assert "git push origin HEAD:refs/heads/main" in out
    assert "PRIVATE KEY" not in out
    assert git_repo.head() == bad
    assert (await app_status(kube, home, "manual"))["sync"]["revision"] == bad

    # A Secret holding only the push credential (SSH key) gives write access.
    await write_secret(kube, home, "ssh-push", git_repo.ssh_url, "repository-write", **ssh)
    code, out = await tether(kubeconfig, "app", "rollback", "manual", "-n", home, "--to", good)
    assert code == 0, out
    assert git_repo.head() not in (good, bad)
    assert (await app_status(kube, home, "manual"))["sync"]["revision"] == git_repo.head()
    assert await live_data(kube, namespace, "colour") == {"colour": "blue"}

    # Already there: nothing to do, nothing pushed.
    head = git_repo.head()
    code, out = await tether(kubeconfig, "app", "rollback", "manual", "-n", home, "--to", good)
    assert code == 0 and "nothing to do" in out and git_repo.head() == head, out


async def test_rollback_to_a_branch_leaves_the_tracked_branch_and_does_not_sync(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    good = git_repo.commit({"app/cm.yaml": cm_yaml("colour", {"colour": "blue"})}, message="b")
    bad = git_repo.commit({"app/cm.yaml": cm_yaml("colour", {"colour": "red"})}, message="red")
    await http_write_secret(kube, home, git_repo)
    await kube.apply(new_app("review", home, git_repo.http_url, namespace, auto_sync=False))
    await cli_sync(kubeconfig, home, "review")
    before = await kube.get(API_VERSION, "Application", "review", home)
    assert before is not None

    code, out = await tether(
        kubeconfig, "app", "rollback", "review", "-n", home, "--to", good, "--branch", "rb/red"
    )
    assert code == 0, out
    assert "rb/red" in out and "pull request" in out
    assert git_repo.head() == bad
    proposed = git_repo.head("rb/red")
    assert commit_of(git_repo, proposed)["parents"] == bad
    after = await kube.get(API_VERSION, "Application", "review", home)
    assert after is not None
    assert after["status"]["sync"]["revision"] == bad
    assert after["status"]["operationState"] == before["status"]["operationState"]
    assert await live_data(kube, namespace, "colour") == {"colour": "red"}


# ---- other render types and several sources ---------

KUSTOMIZE = {
    "base/kustomization.yaml": "resources: [cm.yaml]\n",
    "base/cm.yaml": cm_yaml("tier", {"size": "small"}),
    "overlays/prod/kustomization.yaml": ("resources: [../../base]\npatches:\n- path: size.yaml\n"),
}


def size_patch(size: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: tier}}\ndata: {{size: {size}}}\n"


CHART = {
    "chart/Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    "chart/templates/cm.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: helm-cm}\n"
        "data: {replicas: {{ .Values.replicas | quote }}}\n"
    ),
}


async def test_rollback_of_a_kustomize_patch(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    git_repo.commit({**KUSTOMIZE, "overlays/prod/size.yaml": size_patch("large")}, message="k")
    bad = git_repo.commit({"overlays/prod/size.yaml": size_patch("tiny")}, message="shrink")
    await http_write_secret(kube, home, git_repo)
    obj = new_app("kust", home, git_repo.http_url, namespace, path="overlays/prod", auto_sync=False)
    await kube.apply(obj)
    await cli_sync(kubeconfig, home, "kust")
    assert await live_data(kube, namespace, "tier") == {"size": "tiny"}

    code, out = await tether(kubeconfig, "app", "rollback", "kust", "-n", home, "--steps", "1")
    # One sync only so far: --steps 1 has nowhere to go back to, and says so.
    assert code == 2 and "--steps 1" in out, out
    code, out = await tether(kubeconfig, "app", "rollback", "kust", "-n", home, "--to", f"{bad}~1")
    assert code == 0, out
    assert await live_data(kube, namespace, "tier") == {"size": "large"}
    assert f"This reverts commit {bad}." in commit_of(git_repo, git_repo.head())["message"]


async def test_rollback_of_a_helm_chart_in_git_by_steps(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    git_repo.commit({**CHART, "chart/values.yaml": "replicas: 2\n"}, message="chart")
    await http_write_secret(kube, home, git_repo)
    obj = new_app("chart", home, git_repo.http_url, namespace, path="chart", auto_sync=False)
    await kube.apply(obj)
    await cli_sync(kubeconfig, home, "chart")
    bad = git_repo.commit(
        {"chart/values.yaml": "replicas: 0\n", "other/app.yaml": "x: 1\n"},
        message="Scale to zero, and another app",
    )
    await cli_sync(kubeconfig, home, "chart")
    assert await live_data(kube, namespace, "helm-cm") == {"replicas": "0"}

    code, out = await tether(kubeconfig, "app", "rollback", "chart", "-n", home, "-m", "Undo zero")
    assert code == 0, out
    assert await live_data(kube, namespace, "helm-cm") == {"replicas": "2"}
    message = commit_of(git_repo, git_repo.head())["message"]
    # The bad commit also touched another app's files: not a plain revert, and those stay.
    assert message.startswith("Undo zero\n") and bad[:10] in message
    assert "This reverts commit" not in message
    assert "other/app.yaml" in files_at(git_repo, git_repo.head())


async def test_rollback_of_several_sources_writes_the_values_repository(
    kube: KubeClient,
    kubeconfig: str,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    git_server: GitServer,
) -> None:
    values = git_server.create_repo(f"values-{uuid.uuid4().hex[:8]}")
    chart_sha = git_repo.commit({**CHART, "chart/values.yaml": "replicas: 1\n"}, message="chart")
    values.commit({"prod/values.yaml": "replicas: 3\n"}, message="three")
    await write_secret(
        kube,
        home,
        "push-all",
        git_repo.http_url.rsplit("/", 1)[0],
        username="git",
        password=git_server.token,
    )
    obj: Obj = new_app("multi", home, git_repo.http_url, namespace, auto_sync=False)
    spec: dict[str, Any] = obj["spec"]
    spec.pop("source")
    spec["sources"] = [
        {
            "repoURL": git_repo.http_url,
            "targetRevision": "main",
            "path": "chart",
            "helm": {"valueFiles": ["$values/prod/values.yaml"]},
        },
        {"repoURL": values.http_url, "targetRevision": "main", "ref": "values"},
    ]
    await kube.apply(obj)
    await cli_sync(kubeconfig, home, "multi")
    bad = values.commit({"prod/values.yaml": "replicas: 9\n"}, message="nine")
    await cli_sync(kubeconfig, home, "multi")
    assert await live_data(kube, namespace, "helm-cm") == {"replicas": "9"}

    code, out = await tether(kubeconfig, "app", "rollback", "multi", "-n", home)
    assert code == 0, out
    assert git_repo.head() == chart_sha  # nothing of the chart's changed: not written
    assert values.head() != bad
    assert f"This reverts commit {bad}." in commit_of(values, values.head())["message"]
    assert await live_data(kube, namespace, "helm-cm") == {"replicas": "3"}
    st = await app_status(kube, home, "multi")
    assert st["sync"]["revisions"] == [chart_sha, values.head()]


async def test_rollback_of_a_pinned_app_is_refused_with_a_hint_to_unpin(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    good = git_repo.commit({"app/cm.yaml": cm_yaml("colour", {"colour": "blue"})}, message="b")
    bad = git_repo.commit({"app/cm.yaml": cm_yaml("colour", {"colour": "red"})}, message="red")
    await http_write_secret(kube, home, git_repo)
    obj = new_app("pinned", home, git_repo.http_url, namespace, auto_sync=False)
    obj["spec"]["pin"] = {"revisions": [bad], "by": "bob@laptop", "at": "", "reason": "hold"}
    await kube.apply(obj)

    code, out = await tether(kubeconfig, "app", "rollback", "pinned", "-n", home, "--to", good)
    assert code == 2, out
    assert "pinned by bob@laptop" in out and "tether app unpin pinned" in out
    assert git_repo.head() == bad


async def test_rollback_of_a_jsonnet_app(
    kube: KubeClient, kubeconfig: str, home: str, namespace: str, git_repo: RepoHandle
) -> None:
    program = (
        "local p = import 'params.libsonnet';\n"
        "{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'jn'}, data: {level: p.level}}\n"
    )
    good = git_repo.commit(
        {"jn/main.jsonnet": program, "jn/params.libsonnet": "{level: 'info'}\n"}, message="jn"
    )
    await http_write_secret(kube, home, git_repo)
    await kube.apply(new_app("jn", home, git_repo.http_url, namespace, path="jn", auto_sync=False))
    await cli_sync(kubeconfig, home, "jn")
    bad = git_repo.commit({"jn/params.libsonnet": "{level: 'trace'}\n"}, message="trace")
    await cli_sync(kubeconfig, home, "jn")
    assert await live_data(kube, namespace, "jn") == {"level": "trace"}

    # History ID 1 (no audit trail is reachable here: the status's history IDs apply).
    code, out = await tether(kubeconfig, "app", "rollback", "jn", "-n", home, "--to", "1")
    assert code == 0, out
    assert await live_data(kube, namespace, "jn") == {"level": "info"}
    head = git_repo.head()
    assert f"This reverts commit {bad}." in commit_of(git_repo, head)["message"]
    assert files_at(git_repo, head) == files_at(git_repo, good)
