"""Applications of every source type through the engine, on the real control plane and git
server: a Kustomize overlay, a Helm chart in Git, a Jsonnet directory, a chart with values
from a second repository, a chart from a Helm repository; a broken render that leaves what
is deployed untouched; the render cache across commits; and ``tether render``."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from devcluster.chartrepo import ChartRepo
from devcluster.gitserver import GitServer, RepoHandle

from helm_repos import CHART, chart_repo, chart_repo_factory  # noqa: F401  (fixtures)
from source_apps import APPS_NS, apply_app, git_server_secret, synced_healthy, unique_name
from source_apps import git_source as source
from tether.api.application import API_VERSION, Application
from tether.engine import Engine
from tether.kube import KubeClient
from tether.model import SyncStatus
from tether.render.cache import RenderCache
from tether.source import GitCache

REPO = Path(__file__).resolve().parents[2]
TETHER = str(REPO / ".venv" / "bin" / "tether")


def cm(name: str, **data: str) -> str:
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
    )


def deployment(name: str) -> str:
    labels = {"app": name}
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                },
            },
        }
    )


KUSTOMIZE_TREE = {
    "base/kustomization.yaml": "resources: [settings.yaml, web.yaml]\n",
    "base/settings.yaml": cm("settings", mode="base"),
    "base/web.yaml": deployment("web"),
    "overlays/prod/kustomization.yaml": (
        "resources: [../../base]\nnamePrefix: prod-\n"
        "patches:\n- patch: |-\n    - op: replace\n      path: /data/mode\n      value: prod\n"
        "  target: {kind: ConfigMap, name: settings}\n"
    ),
}

CHART_TREE = {
    "chart/Chart.yaml": "apiVersion: v2\nname: greeter\nversion: 0.1.0\n",
    "chart/values.yaml": "greeting: hello\ncolour: blue\n",
    "chart/values-prod.yaml": "greeting: hello from prod\n",
    "chart/templates/configmap.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
        "  colour: {{ .Values.colour | quote }}\n"
        "  namespace: {{ .Release.Namespace | quote }}\n"
    ),
}

JSONNET_TREE = {
    "jsonnet/params.libsonnet": "{ replicas: 1 }\n",
    "jsonnet/main.jsonnet": (
        "local params = import 'params.libsonnet';\n"
        "[{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'from-jsonnet' },\n"
        "   data: { env: std.extVar('env'), replicas: std.toString(params.replicas) } }]\n"
    ),
}


@pytest.fixture(scope="module")
async def git_creds(kube: KubeClient, git_server: GitServer, engine: Engine) -> str:
    """Credentials for every repository on the test server, as a labelled Secret."""
    return await git_server_secret(kube, git_server, APPS_NS, "sources-git-creds")


class Apps:
    """Creates Applications for one test and deletes them afterwards."""

    def __init__(self, engine: Engine, dest: str) -> None:
        self.engine, self.dest, self.names = engine, dest, list[str]()

    async def create(self, **spec: Any) -> Application:
        name = unique_name("src")
        self.names.append(name)
        return await apply_app(self.engine, name, self.dest, spec)


@pytest.fixture
async def apps(engine: Engine, git_creds: str, namespace: str) -> AsyncIterator[Apps]:
    made = Apps(engine, namespace)
    yield made
    for name in made.names:
        await engine.kube.delete(API_VERSION, "Application", name, APPS_NS)


async def data_of(kube: KubeClient, name: str, namespace: str) -> dict[str, str]:
    obj = await kube.get("v1", "ConfigMap", name, namespace)
    assert obj is not None, f"ConfigMap {namespace}/{name} was not applied"
    return dict(obj.get("data") or {})


# ---- one source of each type -------------------------------------------------------------


async def test_kustomize_overlay_with_application_overrides(
    engine: Engine, apps: Apps, git_repo: RepoHandle, kube: KubeClient, namespace: str
) -> None:
    sha = git_repo.commit(KUSTOMIZE_TREE)
    kustomize = {"commonLabels": {"team": "web"}, "images": ["nginx=nginx:1.27.1"]}
    app = await apps.create(source=source(git_repo, path="overlays/prod", kustomize=kustomize))
    cmp = await synced_healthy(engine, app)
    assert cmp.desired is not None
    [rev] = cmp.desired.source_revisions
    assert (rev.type, rev.revision, rev.path) == ("Kustomize", sha, "overlays/prod")
    assert await data_of(kube, "prod-settings", namespace) == {"mode": "prod"}
    web = await kube.get("apps/v1", "Deployment", "prod-web", namespace)
    assert web is not None
    assert web["metadata"]["labels"]["team"] == "web"
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27.1"


async def test_helm_chart_in_git_with_value_files_and_parameters(
    engine: Engine, apps: Apps, git_repo: RepoHandle, kube: KubeClient, namespace: str
) -> None:
    git_repo.commit(CHART_TREE)
    helm = {
        "valueFiles": ["values-prod.yaml"],
        "parameters": [{"name": "colour", "value": "green"}],
    }
    app = await apps.create(source=source(git_repo, path="chart", helm=helm))
    cmp = await synced_healthy(engine, app)
    assert cmp.desired is not None and cmp.desired.source_revisions[0].type == "Helm"
    # The release is named after the Application, in its destination namespace.
    got = await data_of(kube, f"{app.name}-greeting", namespace)
    assert got == {"greeting": "hello from prod", "colour": "green", "namespace": namespace}


async def test_jsonnet_directory_with_ext_vars(
    engine: Engine, apps: Apps, git_repo: RepoHandle, kube: KubeClient, namespace: str
) -> None:
    git_repo.commit(JSONNET_TREE)
    jsonnet = {"extVars": [{"name": "env", "value": "staging"}]}
    app = await apps.create(source=source(git_repo, path="jsonnet", directory={"jsonnet": jsonnet}))
    await synced_healthy(engine, app)
    assert await data_of(kube, "from-jsonnet", namespace) == {"env": "staging", "replicas": "1"}


PLAIN_JSONNET = {
    **JSONNET_TREE,
    "jsonnet/main.jsonnet": JSONNET_TREE["jsonnet/main.jsonnet"].replace(
        "std.extVar('env')", "'-'"
    ),
}


async def test_jsonnet_is_detected_without_a_directory_block(
    engine: Engine, apps: Apps, git_repo: RepoHandle
) -> None:
    git_repo.commit(PLAIN_JSONNET)
    app = await apps.create(source=source(git_repo, path="jsonnet"))
    cmp = await engine.compare(app)
    assert cmp.error is None, cmp.conditions
    assert cmp.desired is not None and cmp.desired.source_revisions[0].type == "Jsonnet"
    assert [m.obj["metadata"]["name"] for m in cmp.desired.manifests] == ["from-jsonnet"]


# ---- several sources ---------------------------------------------------------------------


async def test_chart_from_one_repository_values_from_another(
    engine: Engine,
    apps: Apps,
    git_server: GitServer,
    git_repo: RepoHandle,
    kube: KubeClient,
    namespace: str,
) -> None:
    chart_sha = git_repo.commit(CHART_TREE)
    values = git_server.create_repo(f"values-{uuid.uuid4().hex[:8]}")
    values_sha = values.commit({"envs/prod/greeter.yaml": "greeting: from the values repo\n"})
    app = await apps.create(
        sources=[
            source(git_repo, path="chart", helm={"valueFiles": ["$values/envs/prod/greeter.yaml"]}),
            source(values, ref="values"),
        ]
    )
    cmp = await synced_healthy(engine, app)
    got = await data_of(kube, f"{app.name}-greeting", namespace)
    assert got["greeting"] == "from the values repo"
    assert cmp.desired is not None
    assert [(r.revision, r.type) for r in cmp.desired.source_revisions] == [
        (chart_sha, "Helm"),
        (values_sha, ""),
    ]
    assert cmp.revision == chart_sha

    # A commit to the values repository alone changes what the app wants.
    values.commit({"envs/prod/greeter.yaml": "greeting: changed\n"})
    cmp = await engine.compare(await engine.get_app(app.name, APPS_NS))
    assert cmp.sync_status == SyncStatus.OUT_OF_SYNC
    await synced_healthy(engine, await engine.get_app(app.name, APPS_NS))
    assert (await data_of(kube, f"{app.name}-greeting", namespace))["greeting"] == "changed"


async def test_chart_from_a_helm_repository_with_values_from_git(
    engine: Engine,
    apps: Apps,
    chart_repo: ChartRepo,  # noqa: F811
    git_repo: RepoHandle,
    kube: KubeClient,
    namespace: str,
) -> None:
    git_repo.commit({"greeter/values.yaml": "greeting: hello from git\n"})
    chart = {
        "repoURL": chart_repo.url,
        "chart": CHART,
        "targetRevision": "~1.2.0",
        "helm": {"valueFiles": ["$values/greeter/values.yaml"], "releaseName": "greeter"},
    }
    app = await apps.create(sources=[chart, source(git_repo, ref="values")])
    cmp = await synced_healthy(engine, app)
    data = await data_of(kube, "greeter-cm", namespace)
    assert data == {"greeting": "hello from git", "chartVersion": "1.2.4"}
    assert cmp.desired is not None
    first = cmp.desired.source_revisions[0]
    assert (first.revision, first.chart, first.type) == ("1.2.4", CHART, "Helm")


# ---- failures and the cache --------------------------------------------------------------


async def test_a_broken_render_applies_and_prunes_nothing(
    engine: Engine, apps: Apps, git_repo: RepoHandle, kube: KubeClient, namespace: str
) -> None:
    git_repo.commit(KUSTOMIZE_TREE)
    app = await apps.create(
        source=source(git_repo, path="overlays/prod"),
        syncPolicy={"automated": {"prune": True}},
    )
    await synced_healthy(engine, app)
    before = {
        name: (await kube.get(api, kind, name, namespace) or {})["metadata"]["resourceVersion"]
        for api, kind, name in (
            ("v1", "ConfigMap", "prod-settings"),
            ("apps/v1", "Deployment", "prod-web"),
        )
    }
    # A patch kustomize itself cannot apply: the error is the tool's own.
    broken = KUSTOMIZE_TREE["overlays/prod/kustomization.yaml"].replace(
        "path: /data/mode", "path: /data/missing/deeper"
    )
    git_repo.commit({"overlays/prod/kustomization.yaml": broken})
    app = await engine.get_app(app.name, APPS_NS)
    res = await engine.sync(app)
    assert not res.ok
    assert res.comparison is not None and res.comparison.error is not None
    message = str(res.comparison.error)
    assert "kustomize" in message and "overlays/prod/kustomization.yaml" in message, message
    assert "/data/missing/deeper" in message, message
    assert not res.results
    after = {
        name: (await kube.get(api, kind, name, namespace) or {})["metadata"]["resourceVersion"]
        for api, kind, name in (
            ("v1", "ConfigMap", "prod-settings"),
            ("apps/v1", "Deployment", "prod-web"),
        )
    }
    assert after == before
    st = (await engine.get_app(app.name, APPS_NS)).status
    assert any("/data/missing/deeper" in c["message"] for c in st["conditions"]), st


async def test_a_commit_elsewhere_in_the_repository_renders_nothing_again(
    kube: KubeClient, git_creds: str, git_repo: RepoHandle, namespace: str, tmp_path: Path
) -> None:
    cache = RenderCache(64)
    engine = Engine(kube, GitCache(tmp_path / "git"), render_cache=cache)
    git_repo.commit({**KUSTOMIZE_TREE, "other/cm.yaml": cm("other", a="1")})
    apps = Apps(engine, namespace)
    try:
        app = await apps.create(source=source(git_repo, path="overlays/prod"))
        await engine.compare(app)
        assert (cache.renders_total, cache.hits_total) == (1, 0)
        await engine.compare(app)
        assert (cache.renders_total, cache.hits_total) == (1, 1)
        git_repo.commit({"other/cm.yaml": cm("other", a="2")})
        cmp = await engine.compare(app)
        assert cmp.error is None
        assert (cache.renders_total, cache.hits_total) == (1, 2)
        git_repo.commit({"base/settings.yaml": cm("settings", mode="base", extra="x")})
        await engine.compare(app)
        assert (cache.renders_total, cache.hits_total) == (2, 2)
    finally:
        for name in apps.names:
            await kube.delete(API_VERSION, "Application", name, APPS_NS)


# ---- tether render -----------------------------------------------------------------------


def tether_render(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TETHER, "render", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_tether_render_says_what_it_detected(tmp_path: Path, git_repo: RepoHandle) -> None:
    for rel, text in {**KUSTOMIZE_TREE, **CHART_TREE, **PLAIN_JSONNET}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    out = tether_render("--repo", str(tmp_path), "--path", "overlays/prod")
    assert out.returncode == 0, out.stderr
    assert "rendered as Kustomize (overlays/prod)" in out.stderr
    names = {d["metadata"]["name"] for d in yaml.safe_load_all(out.stdout)}
    assert names == {"prod-settings", "prod-web"}

    out = tether_render("--repo", str(tmp_path), "--path", "chart", "--set", "colour=red")
    assert out.returncode == 0, out.stderr
    assert "rendered as Helm (chart)" in out.stderr
    (doc,) = yaml.safe_load_all(out.stdout)
    assert doc["data"]["colour"] == "red"

    out = tether_render("--repo", str(tmp_path), "--path", "jsonnet", "-o", "json")
    assert out.returncode == 0, out.stderr
    assert "rendered as Jsonnet (jsonnet)" in out.stderr
    assert [i["metadata"]["name"] for i in json.loads(out.stdout)["items"]] == ["from-jsonnet"]

    git_repo.commit(KUSTOMIZE_TREE)
    out = tether_render("--repo", f"file://{git_repo.path}", "--path", "./overlays/prod/")
    assert out.returncode == 0, out.stderr
    assert "rendered as Kustomize (overlays/prod)" in out.stderr

    out = tether_render("--repo", str(tmp_path), "--path", "base", "--recurse")
    assert out.returncode == 0, out.stderr
    assert "rendered as Kustomize (base)" in out.stderr


# ---- cluster facts -----------------------------------------------------------------------


async def test_cluster_facts_are_what_the_api_server_serves(kube: KubeClient) -> None:
    from tether.kube.server_info import cluster_facts, forget

    forget(kube)
    version, apis = await cluster_facts(kube)
    assert version == "1.20.2"
    assert {"v1", "v1/ConfigMap", "apps/v1", "apps/v1/Deployment", "batch/v1/Job"} <= set(apis)
    assert "autoscaling/v2" not in apis and "policy/v1/PodDisruptionBudget" not in apis
    # Served again from the per-process cache: no new requests.
    before = sum(kube.requests.values())
    assert await cluster_facts(kube) == (version, apis)
    assert sum(kube.requests.values()) == before


async def test_the_api_server_keeps_every_source_field(engine: Engine) -> None:
    """The CRD declares every field the sources read: nothing is pruned on the way in."""
    full_source = {
        "repoURL": "https://git.example.com/team/apps.git",
        "targetRevision": "main",
        "path": "web",
        "name": "web",
        "kustomize": {
            "images": ["web=registry.example.com/web:1.4.2"],
            "namePrefix": "p-",
            "nameSuffix": "-s",
            "commonLabels": {"team": "web"},
            "commonAnnotations": {"owner": "ops"},
            "namespace": "web",
            "replicas": [{"name": "web", "count": 3}, {"name": "api", "count": "2"}],
            "patches": [{"patch": "- op: add\n", "target": {"kind": "Deployment"}}],
            "components": ["../components/tls"],
        },
        "verify": {"mode": "gpg", "secretRef": {"name": "keys"}, "configMapRef": {"name": "k"}},
    }
    chart = {
        "repoURL": "oci://registry.example.com/charts",
        "chart": "redis",
        "targetRevision": "18.1.*",
        "helm": {
            "valueFiles": ["$values/redis.yaml"],
            "values": "a: 1\n",
            "valuesObject": {"nested": {"list": [1, "two", {"three": True}]}},
            "parameters": [{"name": "image.tag", "value": "7", "forceString": True}],
            "releaseName": "cache",
            "namespace": "cache",
            "skipCrds": True,
            "passCredentials": False,
            "ignoreMissingValueFiles": True,
        },
    }
    jsonnet_src = {
        "repoURL": "https://git.example.com/team/values.git",
        "path": "jsonnet",
        "ref": "values",
        "directory": {
            "recurse": True,
            "include": "*.jsonnet",
            "exclude": "test-*",
            "jsonnet": {
                "extVars": [{"name": "env", "value": "prod"}],
                "tlas": [{"name": "n", "value": "2", "code": True}],
                "libs": ["vendor"],
            },
        },
    }
    name = f"fields-{uuid.uuid4().hex[:8]}"
    spec = {"sources": [full_source, chart, jsonnet_src], "destination": {"namespace": "x"}}
    obj = {
        "apiVersion": API_VERSION,
        "kind": "Application",
        "metadata": {"name": name, "namespace": APPS_NS},
        "spec": spec,
    }
    try:
        stored = await engine.kube.apply(obj)
        assert stored["spec"] == spec
        app = Application.from_obj(stored)
        assert [s.explicit_type for s in app.sources] == ["Kustomize", "Helm", "Directory"]
    finally:
        await engine.kube.delete(API_VERSION, "Application", name, APPS_NS)


# ---- signed commits ----------------------------------------------------------------------


async def test_only_signed_commits_render(
    engine: Engine,
    apps: Apps,
    git_repo: RepoHandle,
    kube: KubeClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    from signing import new_ssh_key

    alice = new_ssh_key(tmp_path / "ssh", "alice@example.com")
    keys = f"keys-{uuid.uuid4().hex[:8]}"
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": keys, "namespace": APPS_NS},
            "data": {"allowed_signers": alice.allowed_line + "\n"},
        }
    )
    try:
        git_repo.commit({"app/cm.yaml": cm("signed", v="1")}, sign=alice.sign_options())
        verify = {"mode": "ssh", "configMapRef": {"name": keys}}
        app = await apps.create(source=source(git_repo, path="app", verify=verify))
        await synced_healthy(engine, app)
        unsigned = git_repo.commit({"app/cm.yaml": cm("signed", v="2")}, message="no sig")
        res = await engine.sync(await engine.get_app(app.name, APPS_NS))
        assert not res.ok and not res.results
        assert res.comparison is not None
        err = res.comparison.error
        assert err is not None and err.condition_type == "SignatureError"
        assert unsigned[:7] in str(err)
        assert await data_of(kube, "signed", namespace) == {"v": "1"}
    finally:
        await kube.delete("v1", "ConfigMap", keys, APPS_NS)


async def test_every_rendering_source_adds_its_objects_and_a_clash_is_named(
    engine: Engine, apps: Apps, git_repo: RepoHandle, kube: KubeClient, namespace: str
) -> None:
    git_repo.commit(
        {
            **KUSTOMIZE_TREE,
            "plain/extra.yaml": cm("extra", from_="plain"),
            "clash/settings.yaml": cm("prod-settings", mode="clash"),
        }
    )
    app = await apps.create(
        sources=[source(git_repo, path="overlays/prod"), source(git_repo, path="plain")]
    )
    cmp = await synced_healthy(engine, app)
    assert cmp.desired is not None
    assert [r.type for r in cmp.desired.source_revisions] == ["Kustomize", "Directory"]
    assert await data_of(kube, "extra", namespace) == {"from_": "plain"}
    assert (await data_of(kube, "prod-settings", namespace))["mode"] == "prod"

    clash = await apps.create(
        sources=[source(git_repo, path="overlays/prod"), source(git_repo, path="clash")]
    )
    cmp = await engine.compare(clash)
    assert cmp.error is not None
    assert "defined twice" in str(cmp.error) and "clash/settings.yaml" in str(cmp.error)
