"""Jsonnet apps from a real git server: Argo CD's jsonnet-guestbook layout rendered from a
clone, and apps with ext vars, TLAs and libraries synced through the engine to the real
control plane; a program that reaches outside the repository applies nothing."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from devcluster.gitserver import GitServer, RepoHandle

from source_apps import make_app, synced_and_healthy
from tether.api.source import Source
from tether.engine import Engine
from tether.kube import KubeClient
from tether.render.base import RenderRequest
from tether.render.directory import DirectoryRenderer
from tether.sandbox import Runner

# Argo CD's example app, file for file: a program that imports its parameters.
GUESTBOOK_UI = """\
local params = import 'params.libsonnet';

[
   {
      "apiVersion": "v1",
      "kind": "Service",
      "metadata": {
         "name": params.name
      },
      "spec": {
         "ports": [
            {
               "port": params.servicePort,
               "targetPort": params.containerPort
            }
         ],
         "selector": {
            "app": params.name
         },
         "type": params.type
      }
   },
   {
      "apiVersion": "apps/v1",
      "kind": "Deployment",
      "metadata": {
         "name": params.name
      },
      "spec": {
         "replicas": params.replicas,
         "revisionHistoryLimit": 3,
         "selector": {
            "matchLabels": {
               "app": params.name
            },
         },
         "template": {
            "metadata": {
               "labels": {
                  "app": params.name
               }
            },
            "spec": {
               "containers": [
                  {
                     "image": params.image,
                     "name": params.name,
                     "ports": [
                     {
                        "containerPort": params.containerPort
                     }
                     ]
                  }
               ]
            }
         }
      }
   }
]
"""
PARAMS = """\
{
  containerPort: 80,
  image: "gcr.io/heptio-images/ks-guestbook-demo:0.2",
  name: "jsonnet-guestbook-ui",
  replicas: 1,
  servicePort: 80,
  // The local control plane has no load balancer to give an address to.
  type: "ClusterIP",
}
"""

# A program with parameters, a shared library and a plain YAML file beside it.
WEB = """\
local k = import 'k.libsonnet';

function(replicas, tier='backend')
  k.list([
    k.deployment('web', std.extVar('image'), replicas, {tier: tier}),
    k.configMap('web-settings', {tier: tier, env: std.extVar('env')}),
  ])
"""
K_LIB = """\
{
  list(items):: {apiVersion: 'v1', kind: 'List', items: items},
  configMap(name, data):: {
    apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: name}, data: data,
  },
  deployment(name, image, replicas, labels):: {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {name: name, labels: labels},
    spec: {
      replicas: replicas,
      selector: {matchLabels: {app: name}},
      template: {
        metadata: {labels: {app: name} + labels},
        spec: {containers: [{name: name, image: image}]},
      },
    },
  },
}
"""
EXTRA_YAML = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain-yaml\ndata:\n  k: v\n"

FILES = {
    "jsonnet-guestbook/guestbook-ui.jsonnet": GUESTBOOK_UI,
    "jsonnet-guestbook/params.libsonnet": PARAMS,
    "web/web.jsonnet": WEB,
    "web/extra.yaml": EXTRA_YAML,
    "vendor/k8s/k.libsonnet": K_LIB,
    "escape/app.jsonnet": "local x = importstr '../../../../etc/hostname';\n"
    "{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'leak'}, data: {x: x}}\n",
}


@pytest.fixture(scope="module")
def repo(git_server: GitServer) -> RepoHandle:
    handle = git_server.create_repo(f"jsonnet-{uuid.uuid4().hex[:8]}")
    handle.commit(dict(FILES), message="jsonnet apps")
    return handle


async def test_the_guestbook_renders_from_a_clone(repo: RepoHandle, tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", f"file://{repo.path}", str(checkout)], check=True)
    source = Source(repo_url=repo.http_url, path="jsonnet-guestbook")
    request = RenderRequest(app="apps/guestbook", source=source, root=checkout, path=source.path)
    manifests = await DirectoryRenderer().render(request, Runner())
    assert [(m.obj["kind"], m.obj["metadata"]["name"], m.source_file) for m in manifests] == [
        ("Service", "jsonnet-guestbook-ui", "jsonnet-guestbook/guestbook-ui.jsonnet"),
        ("Deployment", "jsonnet-guestbook-ui", "jsonnet-guestbook/guestbook-ui.jsonnet"),
    ]
    deployment = manifests[1].obj
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "gcr.io/heptio-images/ks-guestbook-demo:0.2"


async def test_the_guestbook_syncs_synced_and_healthy(
    engine: Engine, repo: RepoHandle, namespace: str
) -> None:
    app = await make_app(engine, repo, namespace, {"path": "jsonnet-guestbook"}, prefix="js")
    assert await synced_and_healthy(engine, app) == {
        ("Service", "jsonnet-guestbook-ui"),
        ("Deployment", "jsonnet-guestbook-ui"),
    }


async def test_ext_vars_tlas_and_libs_reach_the_cluster(
    engine: Engine, repo: RepoHandle, namespace: str, kube: KubeClient
) -> None:
    jsonnet = {
        "extVars": [
            {"name": "image", "value": "registry.example.com/web:1.4"},
            {"name": "env", "value": "'prod' + '-eu'", "code": True},
        ],
        "tlas": [
            {"name": "replicas", "value": "1 + 1", "code": True},
            {"name": "tier", "value": "frontend"},
        ],
        "libs": ["vendor/k8s"],
    }
    app = await make_app(
        engine, repo, namespace, {"path": "web", "directory": {"jsonnet": jsonnet}}, prefix="js"
    )
    assert await synced_and_healthy(engine, app) == {
        ("ConfigMap", "plain-yaml"),
        ("Deployment", "web"),
        ("ConfigMap", "web-settings"),
    }
    web = await kube.get("apps/v1", "Deployment", "web", namespace)
    assert web is not None
    assert web["spec"]["replicas"] == 2
    assert web["metadata"]["labels"]["tier"] == "frontend"
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.example.com/web:1.4"
    )
    settings = await kube.get("v1", "ConfigMap", "web-settings", namespace)
    assert settings is not None and settings["data"] == {"tier": "frontend", "env": "prod-eu"}


async def test_an_import_outside_the_repository_applies_nothing(
    engine: Engine, repo: RepoHandle, namespace: str, kube: KubeClient
) -> None:
    app = await make_app(engine, repo, namespace, {"path": "escape"}, prefix="js")
    res = await engine.sync(app)
    assert not res.ok
    assert "escape/app.jsonnet" in res.message
    assert "outside the repository" in res.message
    assert await kube.get("v1", "ConfigMap", "leak", namespace) is None
