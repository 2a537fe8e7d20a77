"""An authentication failure says which repository Secret's credentials were refused, or
that no Secret matched the repository (so nothing was sent), against the real git server."""

from __future__ import annotations

import base64

import pytest
from devcluster.gitserver import GitServer, RepoHandle

from tether.api.application import Application, new_application
from tether.engine import Engine
from tether.errors import SourceError
from tether.kube import KubeClient
from tether.source import REASON_AUTH, GitCache


def app_for(repo: RepoHandle, namespace: str) -> Application:
    return Application.from_obj(new_application("web", namespace, repo_url=repo.http_url, path="."))


async def auth_error(engine: Engine, app: Application) -> SourceError:
    cmp = await engine.compare(app)
    assert isinstance(cmp.error, SourceError), cmp.error
    assert cmp.error.reason == REASON_AUTH
    return cmp.error


async def test_no_matching_secret_is_named_as_the_cause(
    kube: KubeClient,
    namespace: str,
    git_repo: RepoHandle,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    git_repo.commit({"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"})
    engine = Engine(kube, GitCache(tmp_path_factory.mktemp("git")))
    e = await auth_error(engine, app_for(git_repo, namespace))
    assert "no credentials were sent: no repository Secret's url matched it" in e.message
    assert "tether.dev/secret-type=repository" in e.hint


async def test_the_secret_whose_credentials_were_refused_is_named(
    kube: KubeClient,
    namespace: str,
    git_server: GitServer,
    git_repo: RepoHandle,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    git_repo.commit({"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"})
    wrong = "not-the-token-" + base64.b16encode(b"abcd").decode()
    data = {"url": git_repo.http_url, "username": "git", "password": wrong}
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "stale-token",
                "namespace": namespace,
                "labels": {"tether.dev/secret-type": "repository"},
            },
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
    )
    engine = Engine(kube, GitCache(tmp_path_factory.mktemp("git")))
    e = await auth_error(engine, app_for(git_repo, namespace))
    assert f"the credentials of Secret {namespace}/stale-token" in e.message
    assert f"Secret {namespace}/stale-token" in e.hint
    assert wrong not in str(e) and git_server.token not in str(e)
