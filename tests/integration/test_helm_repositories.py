"""Charts from real Helm repositories: an HTTP chart repository (index.yaml) and an OCI
registry (docker-registry), resolved, pulled and unpacked, credentials sent only where they
belong."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from devcluster.chartrepo import ChartRepo

from helm_repos import CHART, OCI_PASSWORD, OCI_USER, Registry
from tether.api.source import HelmSource, Source
from tether.errors import SourceError
from tether.sandbox import Limits, Runner
from tether.source.credentials import RepoCredentials, from_secret_data
from tether.source.helm_oci import helm_binary, plain_http
from tether.source.helm_repo import (
    clear_index_cache,
    pull_chart,
    repository_env,
    resolve_chart,
)

RepoFactory = Callable[..., ChartRepo]


@pytest.fixture(autouse=True)
def _fresh_index_cache() -> None:
    clear_index_cache()


def chart_source(repo_url: str, revision: str, *, pass_credentials: bool = False) -> Source:
    return Source(
        repo_url=repo_url,
        chart=CHART,
        target_revision=revision,
        path="",
        helm=HelmSource(pass_credentials=True) if pass_credentials else None,
    )


def helm_creds(
    url: str, password: str, kind: str = "helm", name: str = "charts"
) -> RepoCredentials:
    data = {"url": url, "type": kind, "username": "robot", "password": password}
    return from_secret_data(data, f"Secret apps/{name}")


def greeting(chart: Path) -> str:
    return str(yaml.safe_load((chart / "values.yaml").read_text())["greeting"])


# ---- HTTP chart repositories ----------------------------------------------------------


@pytest.mark.parametrize(
    ("revision", "version"),
    [("1.2.3", "1.2.3"), ("1.2.*", "1.2.4"), (">=1.0 <2.0", "1.2.4"), ("*", "2.0.0")],
)
async def test_http_repository_resolves_exact_versions_and_constraints(
    chart_repo: ChartRepo, revision: str, version: str
) -> None:
    assert await resolve_chart(chart_source(chart_repo.url, revision), None, Runner()) == version


async def test_http_repository_pulls_and_unpacks_the_chart(
    chart_repo: ChartRepo, tmp_path: Path
) -> None:
    source = chart_source(chart_repo.url + "/", "1.2.*")
    version = await resolve_chart(source, None, Runner())
    chart = await pull_chart(source, version, None, tmp_path / "chart", Runner())
    assert chart == tmp_path / "chart" / CHART
    assert greeting(chart) == "hello from 1.2.4"
    # One index fetch served both calls.
    assert len(chart_repo.requests_for("/index.yaml")) == 1


async def test_apps_resolving_at_once_share_one_index_fetch(chart_repo: ChartRepo) -> None:
    revisions = ["1.2.3", "1.2.*", "*", "~1.2", ">=2"]
    runner = Runner()
    got = await asyncio.gather(
        *(resolve_chart(chart_source(chart_repo.url, r), None, runner) for r in revisions)
    )
    assert got == ["1.2.3", "1.2.4", "2.0.0", "1.2.4", "2.0.0"]
    assert len(chart_repo.requests_for("/index.yaml")) == 1


async def test_missing_chart_and_version_name_the_repository_and_chart(
    chart_repo: ChartRepo,
) -> None:
    missing = Source(repo_url=chart_repo.url, chart="nginx", target_revision="1.0.0", path="")
    with pytest.raises(SourceError) as e:
        await resolve_chart(missing, None, Runner())
    assert e.value.reason == "ChartNotFound"
    assert f"chart 'nginx' not found in {chart_repo.url}" in str(e.value)
    assert CHART in e.value.hint
    with pytest.raises(SourceError) as e:
        await resolve_chart(chart_source(chart_repo.url, "3.*"), None, Runner())
    assert e.value.reason == "ChartVersionNotFound"
    assert f"chart '{CHART}' in {chart_repo.url} has no version matching '3.*'" in str(e.value)
    assert "it has 2.0.0, 1.3.0-rc.1, 1.2.4, 1.2.3" in e.value.hint


async def test_wrong_password_names_the_secret_not_the_password(
    chart_repo_factory: RepoFactory,
) -> None:
    repo = chart_repo_factory("robot", "right-password-1")
    wrong = "wrong-password-9d8c7b"
    with pytest.raises(SourceError) as e:
        await resolve_chart(chart_source(repo.url, "1.2.3"), helm_creds(repo.url, wrong), Runner())
    assert e.value.reason == "AuthenticationFailed"
    assert "Secret apps/charts" in str(e.value)
    assert wrong not in str(e.value) and wrong not in repr(e.value)
    with pytest.raises(SourceError) as e:
        await resolve_chart(chart_source(repo.url, "1.2.3"), None, Runner())
    assert "no credentials were sent" in str(e.value)
    right = helm_creds(repo.url, "right-password-1")
    assert await resolve_chart(chart_source(repo.url, "1.2.3"), right, Runner()) == "1.2.3"


async def test_credentials_go_only_to_the_repository_host(
    chart_repo_factory: RepoFactory, tmp_path: Path
) -> None:
    """An index whose archives live on another server (another port is another host): that
    server sees no Authorization header, unless passCredentials says so."""
    index_repo = chart_repo_factory("robot", "index-pass")
    archives = chart_repo_factory(charts=False)
    for tgz in index_repo.root.glob("*.tgz"):
        tgz.rename(archives.root / tgz.name)
    archives.index(url=archives.url).rename(index_repo.root / "index.yaml")
    creds = helm_creds(index_repo.url, "index-pass")
    source = chart_source(index_repo.url, "2.0.0")
    chart = await pull_chart(source, "2.0.0", creds, tmp_path / "a", Runner())
    assert greeting(chart) == "hello from 2.0.0"
    assert all(r.authorization.startswith("Basic ") for r in index_repo.requests)
    (download,) = archives.requests_for(f"/{CHART}-2.0.0.tgz")
    assert download.authorization == ""

    passing = chart_source(index_repo.url, "2.0.0", pass_credentials=True)
    await pull_chart(passing, "2.0.0", creds, tmp_path / "b", Runner())
    last = archives.requests_for(f"/{CHART}-2.0.0.tgz")[-1]
    assert last.authorization == index_repo.expected_auth


async def test_a_redirect_to_another_host_drops_the_credentials(
    chart_repo_factory: RepoFactory, tmp_path: Path
) -> None:
    repo = chart_repo_factory("robot", "index-pass")
    other = chart_repo_factory(charts=False)
    name = f"{CHART}-1.2.3.tgz"
    (repo.root / name).rename(other.root / name)
    repo.redirects[f"/{name}"] = f"{other.url}/{name}"
    creds = helm_creds(repo.url, "index-pass")
    await pull_chart(chart_source(repo.url, "1.2.3"), "1.2.3", creds, tmp_path, Runner())
    (download,) = other.requests_for(f"/{name}")
    assert download.authorization == ""


async def test_https_repository_with_an_untrusted_certificate_needs_insecure(
    chart_repo_factory: RepoFactory,
) -> None:
    repo = chart_repo_factory("robot", "tls-pass", tls=True)
    source = chart_source(repo.url, "1.2.3")
    checked = helm_creds(repo.url, "tls-pass")
    with pytest.raises(SourceError) as e:
        await resolve_chart(source, checked, Runner())
    assert e.value.reason == "RepositoryUnreachable"
    assert "certificate" in str(e.value).lower()
    assert not repo.requests
    insecure = from_secret_data(
        {"url": repo.url, "type": "helm", "username": "robot", "password": "tls-pass"}
        | {"insecure": "true"}
    )
    assert await resolve_chart(source, insecure, Runner()) == "1.2.3"


async def test_an_archive_that_does_not_match_its_digest_is_refused(
    chart_repo: ChartRepo, tmp_path: Path
) -> None:
    archive = chart_repo.root / f"{CHART}-1.2.3.tgz"
    data = archive.read_bytes()
    archive.write_bytes(data + b"\0" * 1024)
    dest = tmp_path / "dest"
    with pytest.raises(SourceError) as e:
        await pull_chart(chart_source(chart_repo.url, "1.2.3"), "1.2.3", None, dest, Runner())
    assert e.value.reason == "DigestMismatch"
    assert hashlib.sha256(data).hexdigest() in str(e.value)
    assert not dest.exists()


async def test_an_archive_escaping_its_directory_is_refused(
    chart_repo: ChartRepo, tmp_path: Path
) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, body in ((f"{CHART}/Chart.yaml", b"name: greeter\n"), ("../owned", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    (chart_repo.root / f"{CHART}-1.2.3.tgz").write_bytes(buf.getvalue())
    # helm repo index would skip a broken archive: give the index its true digest by hand.
    index = chart_repo.root / "index.yaml"
    doc = yaml.safe_load(index.read_text())
    (entry,) = [e for e in doc["entries"][CHART] if e["version"] == "1.2.3"]
    entry["digest"] = hashlib.sha256(buf.getvalue()).hexdigest()
    index.write_text(yaml.safe_dump(doc))
    dest = tmp_path / "dest"
    with pytest.raises(SourceError) as e:
        await pull_chart(chart_source(chart_repo.url, "1.2.3"), "1.2.3", None, dest, Runner())
    assert "'../owned' points outside the chart directory" in str(e.value)
    assert not (tmp_path / "owned").exists()


# ---- OCI registries -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("revision", "version"), [("1.2.3", "1.2.3"), ("1.2.*", "1.2.4"), ("~1.2", "1.2.4")]
)
async def test_oci_registry_resolves_exact_tags_and_constraints(
    oci_registry: Registry, revision: str, version: str
) -> None:
    assert await resolve_chart(chart_source(oci_registry.url, revision), None, Runner()) == version


async def test_oci_registry_pulls_with_or_without_the_scheme(
    oci_registry: Registry, tmp_path: Path
) -> None:
    bare = oci_registry.url.removeprefix("oci://")
    source = chart_source(bare, "2.0.0")
    assert await resolve_chart(source, None, Runner()) == "2.0.0"
    chart = await pull_chart(source, "2.0.0", None, tmp_path, Runner())
    assert greeting(chart) == "hello from 2.0.0"


async def test_oci_missing_chart_names_registry_and_chart(oci_registry: Registry) -> None:
    missing = Source(repo_url=oci_registry.url, chart="nginx", target_revision="1.0.0", path="")
    with pytest.raises(SourceError) as e:
        await resolve_chart(missing, None, Runner())
    assert f"chart nginx version '1.0.0' not found in {oci_registry.url}" in str(e.value)
    with pytest.raises(SourceError) as e:
        await resolve_chart(chart_source(oci_registry.url, "7.*"), None, Runner())
    assert e.value.reason == "ChartVersionNotFound"
    assert "no version matching '7.*'" in str(e.value)


async def test_oci_credentials(oci_registry_auth: Registry, tmp_path: Path) -> None:
    url = oci_registry_auth.url
    source = chart_source(url, "1.2.3")
    wrong = "not-the-oci-pass-5e4d"
    with pytest.raises(SourceError) as e:
        await resolve_chart(source, helm_creds(url, wrong, "oci", "registry"), Runner())
    assert e.value.reason == "AuthenticationFailed"
    assert "Secret apps/registry" in str(e.value)
    assert wrong not in str(e.value)
    with pytest.raises(SourceError) as e:
        await resolve_chart(source, None, Runner())
    assert "no credentials were sent" in str(e.value)
    right = from_secret_data(
        {"url": url, "type": "oci", "username": OCI_USER, "password": OCI_PASSWORD}
    )
    assert await resolve_chart(source, right, Runner()) == "1.2.3"
    chart = await pull_chart(source, "1.2.3", right, tmp_path, Runner())
    assert greeting(chart) == "hello from 1.2.3"


# ---- remote dependencies of a chart ----------------------------------------------------


async def test_repository_env_lets_helm_fetch_a_dependency_with_its_credentials(
    chart_repo_factory: RepoFactory, tmp_path: Path
) -> None:
    repo = chart_repo_factory("robot", "dep-pass-42")
    parent = tmp_path / "parent"
    (parent / "templates").mkdir(parents=True)
    (parent / "Chart.yaml").write_text(
        "apiVersion: v2\nname: parent\nversion: 0.1.0\ndependencies:\n"
        f"- name: {CHART}\n  version: 1.2.*\n  repository: {repo.url}\n"
    )
    env = repository_env(tmp_path / "home", [(repo.url, helm_creds(repo.url, "dep-pass-42"))])
    config = Path(env["HELM_REPOSITORY_CONFIG"])
    assert config.stat().st_mode & 0o777 == 0o600
    env |= {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "helm-home")}
    argv = [helm_binary(), "dependency", "build", str(parent)]
    await Runner().run(argv, tool="helm", env=env, limits=Limits(network=True))
    assert [p.name for p in (parent / "charts").iterdir()] == [f"{CHART}-1.2.4.tgz"]
    assert all(r.authorization == repo.expected_auth for r in repo.requests)


async def test_repository_env_holds_an_oci_registry_login_for_dependencies(
    oci_registry_auth: Registry, tmp_path: Path
) -> None:
    url = oci_registry_auth.url
    parent = tmp_path / "parent"
    (parent / "templates").mkdir(parents=True)
    (parent / "Chart.yaml").write_text(
        "apiVersion: v2\nname: parent\nversion: 0.1.0\ndependencies:\n"
        f"- name: {CHART}\n  version: 2.0.0\n  repository: {url}\n"
    )
    creds = from_secret_data({"type": "oci", "username": OCI_USER, "password": OCI_PASSWORD})
    env = repository_env(tmp_path / "home", [(url, creds)])
    env |= {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "helm-home")}
    assert plain_http(url, creds)
    argv = [helm_binary(), "dependency", "build", str(parent), "--plain-http"]
    await Runner().run(argv, tool="helm", env=env, limits=Limits(network=True))
    assert [p.name for p in (parent / "charts").iterdir()] == [f"{CHART}-2.0.0.tgz"]
