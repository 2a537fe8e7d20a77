"""Reading Projects as identities with and without the right to: a real ServiceAccount that
may not get ``projects.tether.dev`` falls back to the built-in default for ``default`` (it
applies with its own rights anyway) and is refused for a named project; the read-only
ClusterRole of ``deploy/namespaced/projects.yaml`` lets it read them."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from cluster_helpers import WAIT, eventually
from identities import may, service_account_token, token_kubeconfig
from tether.api.project import PROJECT_API_VERSION, PROJECT_KIND
from tether.errors import KubeError
from tether.kube import KubeClient
from tether.project import ProjectSource, ProjectViolation

REPO = Path(__file__).resolve().parents[2]


async def test_an_identity_that_cannot_read_projects(
    kube: KubeClient, kubeconfig: str, namespace: str, tmp_path: Path
) -> None:
    await kube.wait_for_resource(PROJECT_API_VERSION, PROJECT_KIND)
    token = await service_account_token(kube, namespace, "no-projects")
    config = token_kubeconfig(kubeconfig, token, tmp_path / "limited.kubeconfig")
    limited = await KubeClient.connect(str(config))
    try:
        projects = ProjectSource(limited)
        default = await projects.get("default")
        assert default.builtin and default.source_repos == ("*",)
        with pytest.raises(ProjectViolation, match=r'cannot read project "team-a"') as caught:
            await projects.get("team-a")
        assert caught.value.rules == ("project",)
        assert "get projects.tether.dev" in caught.value.hint
    finally:
        await limited.close()


async def test_the_namespaced_install_reads_projects(
    kube: KubeClient, kubeconfig: str, namespace: str, tmp_path: Path
) -> None:
    """deploy/namespaced/projects.yaml, bound to a test account: it reads a Project."""
    await kube.wait_for_resource(PROJECT_API_VERSION, PROJECT_KIND)
    token = await service_account_token(kube, namespace, "reader")
    suffix = uuid.uuid4().hex[:8]
    docs = [d for d in yaml.safe_load_all((REPO / "deploy/namespaced/projects.yaml").read_text())]
    role, binding = (d for d in docs if d)
    role["metadata"]["name"] = binding["roleRef"]["name"] = f"projects-reader-{suffix}"
    binding["metadata"]["name"] = f"projects-reader-{suffix}"
    binding["subjects"] = [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}]
    name = f"p-{suffix}"
    project = {
        "apiVersion": PROJECT_API_VERSION,
        "kind": PROJECT_KIND,
        "metadata": {"name": name},
        "spec": {"sourceRepos": ["https://git.example.com/team-a/*"]},
    }
    await kube.create(project)
    await kube.apply(role)
    await kube.apply(binding)
    config = token_kubeconfig(kubeconfig, token, tmp_path / "reader.kubeconfig")
    limited = await KubeClient.connect(str(config))
    try:
        user = f"system:serviceaccount:{namespace}:reader"
        attributes = {"verb": "get", "group": "tether.dev", "resource": "projects"}
        await eventually(lambda: may(kube, user, attributes), WAIT, "the binding in force")
        read = await ProjectSource(limited).get(name)
        assert read.name == name and read.raw_repos == ("https://git.example.com/team-a/*",)
        assert not read.builtin
    finally:
        await limited.close()
        for api_version, kind, obj_name in (
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", binding["metadata"]["name"]),
            ("rbac.authorization.k8s.io/v1", "ClusterRole", role["metadata"]["name"]),
            (PROJECT_API_VERSION, PROJECT_KIND, name),
        ):
            try:
                await kube.delete(api_version, kind, obj_name)
            except KubeError as e:
                if e.status != 404:
                    raise
