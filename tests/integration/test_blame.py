"""``tether blame`` on the real control plane and git server, with real kustomize and helm:
the commit whose render last changed a field, whether a plain file, a Kustomize patch or a
Helm value set it; commits that touch another app in the same repository are never blamed
(and cost no render); a live value another field manager wrote is shown with its writer."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import yaml
from devcluster.gitserver import GitServer, RepoHandle

from cluster_helpers import REPO, cm_yaml, run_tether
from source_apps import apply_app, git_server_secret, git_source, unique_name
from tether.api.application import Application
from tether.blame.report import BlameReport, FieldBlame
from tether.blame.run import blame
from tether.blame.target import parse_target
from tether.engine import Engine
from tether.kube import KubeClient

IMAGE = "spec.template.spec.containers[name=web].image"
KUBECTL = str(REPO / ".venv" / "bin" / "kubectl")


def deployment(image: str, replicas: int = 1, name: str = "web") -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": name, "image": image}]},
                },
            },
        }
    )


async def app_on(
    engine: Engine, kube: KubeClient, git_server: GitServer, repo: RepoHandle, ns: str, **src: Any
) -> Application:
    await git_server_secret(kube, git_server, ns, "git-creds")
    return await apply_app(
        engine, unique_name("blame"), ns, {"source": git_source(repo, **src)}, ns
    )


async def synced(engine: Engine, app: Application) -> Application:
    res = await engine.sync(app)
    assert res.ok, res.message
    return await engine.get_app(app.name, app.namespace)


def row(report: BlameReport, path: str) -> FieldBlame:
    found = [f for f in report.fields if f.path == path]
    assert found, [f.path for f in report.fields]
    return found[0]


async def test_plain_file_field_blamed_on_its_commit_not_on_other_apps_commits(
    engine: Engine, kube: KubeClient, git_server: GitServer, git_repo: RepoHandle, namespace: str
) -> None:
    first = git_repo.commit(
        {"app/web.yaml": deployment("nginx:1.25", replicas=2)},
        message="web: first",
        author=("Alice", "alice@example.com"),
    )
    git_repo.commit({"other/cm.yaml": cm_yaml("other", {"a": "1"})}, message="other app")
    bump = git_repo.commit(
        {"app/web.yaml": deployment("nginx:1.27", replicas=2)},
        message="web: nginx 1.27",
        author=("Bob", "bob@example.com"),
    )
    other = git_repo.commit({"other/cm.yaml": cm_yaml("other", {"a": "2"})}, message="other 2")
    app = await synced(
        engine, await app_on(engine, kube, git_server, git_repo, namespace, path="app")
    )
    assert app.status["sync"]["revision"] == other
    # A commit after the synced one is not looked at: blame explains what is deployed.
    git_repo.commit({"app/web.yaml": deployment("nginx:9.9", replicas=2)}, message="not synced")

    report = await blame(engine.kube, engine.desired, app, parse_target("deployment/web"), 50)

    image = row(report, IMAGE)
    assert (image.value, image.commit.sha) == ("nginx:1.27", bump)
    assert image.commit.author == "Bob <bob@example.com>"
    assert image.commit.message == "web: nginx 1.27"
    assert not image.at_or_before
    replicas = row(report, "spec.replicas")
    # The branch's first commit set it: that commit, not "at or before".
    assert (replicas.value, replicas.commit.sha, replicas.at_or_before) == (2, first, False)
    # Four commits, two distinct contents of app/: two renders, the rest from the cache.
    assert report.sources[0]["history"] == 4
    assert (report.renders, report.reused) == (2, 2)
    assert all(f.live is None for f in report.fields), "live matches Git"
    assert report.live

    # Exactly as deep as the branch: its first commit is reached, and named plainly.
    exact = await blame(engine.kube, engine.desired, app, parse_target("deployment/web"), 4)
    assert not row(exact, "spec.replicas").at_or_before
    assert exact.sources[0]["branchStartReached"]

    # Two commits deep, the replicas' origin lies beyond: history depth reached.
    shallow = await blame(engine.kube, engine.desired, app, parse_target("Deployment/web"), 2)
    replicas = row(shallow, "spec.replicas")
    assert (replicas.commit.sha, replicas.at_or_before) == (bump, True)
    assert replicas.commit_text == f"at or before {bump[:10]} (history depth reached)"


async def test_kustomize_patch_changed_after_the_base_is_blamed(
    engine: Engine, kube: KubeClient, git_server: GitServer, git_repo: RepoHandle, namespace: str
) -> None:
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 2},
    }
    kustomization = {
        "resources": ["../base"],
        "patches": [{"path": "replicas.yaml"}],
    }
    git_repo.commit(
        {
            "base/web.yaml": deployment("nginx:1.25"),
            "base/kustomization.yaml": yaml.safe_dump({"resources": ["web.yaml"]}),
            "prod/kustomization.yaml": yaml.safe_dump(kustomization),
            "prod/replicas.yaml": yaml.safe_dump(patch),
        },
        message="base and prod overlay",
    )
    base_bump = git_repo.commit(
        {"base/web.yaml": deployment("nginx:1.27")}, message="base: nginx 1.27"
    )
    scale = git_repo.commit(
        {"prod/replicas.yaml": yaml.safe_dump({**patch, "spec": {"replicas": 3}})},
        message="prod: 3 replicas",
        author=("Carol", "carol@example.com"),
    )
    app = await synced(
        engine, await app_on(engine, kube, git_server, git_repo, namespace, path="prod")
    )

    report = await blame(engine.kube, engine.desired, app, parse_target("deployment/web"), 50)

    replicas = row(report, "spec.replicas")
    assert (replicas.value, replicas.commit.sha) == (3, scale)
    assert replicas.commit.author == "Carol <carol@example.com>"
    image = row(report, IMAGE)
    assert (image.value, image.commit.sha) == ("nginx:1.27", base_bump)


CHART = yaml.safe_dump({"apiVersion": "v2", "name": "web", "version": "0.1.0"})
TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: {{ .Values.image | quote }}
"""


async def test_helm_value_changed_without_the_template_is_blamed(
    engine: Engine, kube: KubeClient, git_server: GitServer, git_repo: RepoHandle, namespace: str
) -> None:
    chart = git_repo.commit(
        {
            "chart/Chart.yaml": CHART,
            "chart/templates/web.yaml": TEMPLATE,
            "chart/values.yaml": yaml.safe_dump({"replicas": 1, "image": "nginx:1.25"}),
        },
        message="chart",
    )
    values = git_repo.commit(
        {"chart/values.yaml": yaml.safe_dump({"replicas": 4, "image": "nginx:1.25"})},
        message="chart: 4 replicas",
        author=("Dan", "dan@example.com"),
    )
    git_repo.commit({"docs/README.md": "unrelated\n"}, message="docs")
    app = await synced(
        engine,
        await app_on(
            engine, kube, git_server, git_repo, namespace, path="chart", helm={"releaseName": "web"}
        ),
    )

    report = await blame(engine.kube, engine.desired, app, parse_target("deployment/web"), 50)

    replicas = row(report, "spec.replicas")
    assert (replicas.value, replicas.commit.sha) == (4, values)
    assert row(report, IMAGE).commit.sha == chart
    assert (report.renders, report.reused) == (2, 1)


async def test_live_value_written_by_another_manager_is_shown_with_its_writer(
    engine: Engine,
    kube: KubeClient,
    kubeconfig: str,
    git_server: GitServer,
    git_repo: RepoHandle,
    namespace: str,
) -> None:
    sha = git_repo.commit(
        {"app/web.yaml": deployment("nginx:1.27", replicas=2)},
        message="web",
        author=("Eve", "eve@example.com"),
    )
    app = await synced(
        engine, await app_on(engine, kube, git_server, git_repo, namespace, path="app")
    )
    proc = await asyncio.create_subprocess_exec(
        KUBECTL,
        "--kubeconfig",
        kubeconfig,
        "-n",
        namespace,
        "patch",
        "deployment",
        "web",
        "--field-manager=someone",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"replicas": 5}}),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "KUBECONFIG": kubeconfig},
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()

    code, text = await run_tether(
        kubeconfig, "-n", namespace, "blame", app.name, "deployment/web", "-o", "json"
    )
    assert code == 0, text
    report = json.loads(text[text.index("{") :])
    by_field = {f["field"]: f for f in report["fields"]}
    replicas = by_field["spec.replicas"]
    assert (replicas["value"], replicas["commit"]["sha"]) == (2, sha)
    live = replicas["live"]
    assert (live["value"], live["manager"], live["operation"]) == (5, "someone", "Update")
    assert live["time"]
    assert by_field[IMAGE]["live"] is None, "unchanged fields show no live value"

    # The table says the same, and --field limits it to one path.
    code, text = await run_tether(
        kubeconfig, "-n", namespace, "blame", app.name, "deployment/web", "--field", "spec.replicas"
    )
    assert code == 0, text
    lines = [line for line in text.splitlines() if line.startswith(("FIELD", "spec."))]
    assert lines[0].split()[:8] == [
        "FIELD",
        "VALUE",
        "COMMIT",
        "AUTHOR",
        "DATE",
        "MESSAGE",
        "LIVE",
        "MANAGER",
    ]
    assert len(lines) == 2 and lines[1].split()[:3] == ["spec.replicas", "2", sha[:10]]
    assert "someone (Update" in lines[1]
    assert "1 render(s)" in text


async def test_secret_values_never_printed(
    engine: Engine,
    kube: KubeClient,
    kubeconfig: str,
    git_server: GitServer,
    git_repo: RepoHandle,
    namespace: str,
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "stringData": {"password": "hunter2-very-secret"},
    }
    git_repo.commit({"app/db.yaml": yaml.safe_dump(secret)}, message="db secret")
    app = await synced(
        engine, await app_on(engine, kube, git_server, git_repo, namespace, path="app")
    )
    for output in ("json", "table"):
        code, text = await run_tether(
            kubeconfig, "-n", namespace, "blame", app.name, "secret/db", "-o", output
        )
        assert code == 0, text
        assert "hunter2" not in text and "aHVudGVyMi" not in text
        assert "(redacted)" in text


async def test_an_object_the_app_does_not_render_is_named_with_what_it_has(
    engine: Engine,
    kube: KubeClient,
    kubeconfig: str,
    git_server: GitServer,
    git_repo: RepoHandle,
    namespace: str,
) -> None:
    git_repo.commit({"app/web.yaml": deployment("nginx:1.27")}, message="web")
    app = await synced(
        engine, await app_on(engine, kube, git_server, git_repo, namespace, path="app")
    )
    code, text = await run_tether(kubeconfig, "-n", namespace, "blame", app.name, "deployment/nope")
    assert code == 2, text
    assert "renders no deployment/nope" in text
    assert "Deployment/" in text and "/web" in text


async def test_several_sources_blame_the_source_and_commit_that_changed_the_field(
    engine: Engine,
    kube: KubeClient,
    git_server: GitServer,
    git_repo: RepoHandle,
    namespace: str,
) -> None:
    values_repo = git_server.create_repo(f"{git_repo.path.name.removesuffix('.git')}-values")
    git_repo.commit(
        {
            "chart/Chart.yaml": CHART,
            "chart/templates/web.yaml": TEMPLATE,
            "chart/values.yaml": yaml.safe_dump({"replicas": 1, "image": "nginx:1.25"}),
        },
        message="chart",
    )
    values_repo.commit({"prod.yaml": yaml.safe_dump({"replicas": 2})}, message="prod: 2")
    chart_bump = git_repo.commit(
        {"chart/values.yaml": yaml.safe_dump({"replicas": 1, "image": "nginx:1.27"})},
        message="chart: nginx 1.27",
    )
    scale = values_repo.commit(
        {"prod.yaml": yaml.safe_dump({"replicas": 6})},
        message="prod: 6 replicas",
        author=("Fay", "fay@example.com"),
    )
    values_repo.commit({"README.md": "values\n"}, message="readme")
    await git_server_secret(kube, git_server, namespace, "git-creds")
    helm = {"releaseName": "web", "valueFiles": ["$values/prod.yaml"]}
    spec = {
        "sources": [
            git_source(git_repo, path="chart", helm=helm),
            git_source(values_repo, ref="values"),
        ]
    }
    app = await synced(
        engine, await apply_app(engine, unique_name("blame"), namespace, spec, namespace)
    )

    report = await blame(engine.kube, engine.desired, app, parse_target("deployment/web"), 50)

    replicas = row(report, "spec.replicas")
    assert (replicas.value, replicas.source, replicas.commit.sha) == (6, 1, scale)
    assert replicas.commit.author == "Fay <fay@example.com>"
    image = row(report, IMAGE)
    assert (image.value, image.source, image.commit.sha) == ("nginx:1.27", 0, chart_bump)
    assert [s["history"] for s in report.sources] == [2, 3]


async def test_a_commit_that_does_not_render_is_passed_over_and_named(
    engine: Engine,
    kube: KubeClient,
    kubeconfig: str,
    git_server: GitServer,
    git_repo: RepoHandle,
    namespace: str,
) -> None:
    first = git_repo.commit({"app/web.yaml": deployment("nginx:1.25")}, message="web")
    broken = git_repo.commit({"app/web.yaml": "kind: [unclosed\n"}, message="oops")
    fixed = git_repo.commit({"app/web.yaml": deployment("nginx:1.27")}, message="web: fixed")
    app = await synced(
        engine, await app_on(engine, kube, git_server, git_repo, namespace, path="app")
    )

    report = await blame(engine.kube, engine.desired, app, parse_target("deployment/web"), 50)

    assert [(s.commit, s.source) for s in report.skipped] == [(broken, 0)]
    assert row(report, IMAGE).commit.sha == fixed
    assert row(report, "spec.replicas").commit.sha == first
    code, text = await run_tether(kubeconfig, "-n", namespace, "blame", app.name, "deployment/web")
    assert code == 0, text
    assert f"note: source #0 did not render at {broken[:10]}, passed over" in text
