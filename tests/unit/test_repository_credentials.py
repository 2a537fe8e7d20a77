"""Repository Secrets for Git, Helm and OCI: templates by prefix, matched by type only."""

from __future__ import annotations

from typing import Any

import pytest

from tether.source.credentials import (
    REPO_SECRET_SELECTOR,
    RepoCredentials,
    entries_from_secrets,
    from_secret_data,
    is_oci_url,
    match_chart_credentials,
    match_credentials,
    normalize_oci_url,
    secret_type_problem,
)

pytestmark = pytest.mark.unit


def _secret(name: str, label: str, **data: str) -> tuple[dict[str, Any], dict[str, str]]:
    meta = {"name": name, "namespace": "ns", "labels": {"tether.dev/secret-type": label}}
    return {"metadata": meta}, data


@pytest.fixture
def entries() -> list[tuple[str, RepoCredentials]]:
    return entries_from_secrets(
        [
            _secret("git-org", "repo-creds", url="https://host.example/org", password="g1"),
            _secret("git-app", "repository", url="https://host.example/org/app", password="g2"),
            _secret(
                "helm-org", "repo-creds", url="https://host.example/org", type="helm", password="h1"
            ),
            _secret(
                "helm-exact",
                "repository",
                url="https://host.example/org",
                type="helm",
                password="h2",
            ),
            _secret(
                "oci", "repo-creds", url="oci://reg.example:5000/team", type="oci", password="o"
            ),
            _secret(
                "helm-oci",
                "repository",
                url="reg.example:5000/team/special",
                type="helm",
                enableOCI="true",
                password="o2",
            ),
            _secret("no-url", "repository", password="x"),
        ]
    )


def test_entries_name_their_secret_and_know_templates(
    entries: list[tuple[str, RepoCredentials]],
) -> None:
    origins = [c.origin for _, c in entries]
    assert "Secret ns/no-url" not in origins
    assert origins[0] == "Secret ns/git-org"
    assert entries[0][1].template and not entries[1][1].template
    assert REPO_SECRET_SELECTOR == "tether.dev/secret-type in (repository,repo-creds)"


def test_git_matching_never_uses_helm_or_oci_credentials(
    entries: list[tuple[str, RepoCredentials]],
) -> None:
    assert match_credentials("https://host.example/org/app.git", entries).password == "g2"  # type: ignore[union-attr]
    assert match_credentials("https://host.example/org/other", entries).password == "g1"  # type: ignore[union-attr]
    assert match_credentials("https://host.example/organisation/x", entries) is None


def test_helm_matching_prefers_a_repository_secret_over_a_template_of_the_same_url(
    entries: list[tuple[str, RepoCredentials]],
) -> None:
    found = match_chart_credentials("https://host.example/org/", entries)
    assert found is not None and found.origin == "Secret ns/helm-exact"
    sub = match_chart_credentials("https://host.example/org/charts/stable", entries)
    assert sub is not None and sub.password == "h2"
    assert match_chart_credentials("https://host.example/other", entries) is None


def test_oci_matching_with_or_without_scheme(entries: list[tuple[str, RepoCredentials]]) -> None:
    for url in ("oci://reg.example:5000/team/charts", "REG.example:5000/team/charts/"):
        found = match_chart_credentials(url, entries)
        assert found is not None and found.origin == "Secret ns/oci", url
    special = match_chart_credentials("oci://reg.example:5000/team/special", entries)
    assert special is not None and special.origin == "Secret ns/helm-oci"
    # The same registry on another port is another host.
    assert match_chart_credentials("oci://reg.example:5001/team/charts", entries) is None


def test_secret_fields_and_unknown_types() -> None:
    creds = from_secret_data(
        {"type": "OCI", "insecure": "true", "insecureOCIForceHttp": "yes", "password": "p"}
    )
    assert (creds.repo_type, creds.insecure, creds.force_http) == ("oci", True, True)
    assert "'***'" in repr(creds) and "p'" not in repr(creds)
    assert secret_type_problem({"type": "svn"}).startswith("type 'svn' is not one of")
    assert secret_type_problem({}) == ""
    svn = from_secret_data({"type": "svn", "url": "https://h/x", "password": "p"})
    assert match_credentials("https://h/x", [("https://h/x", svn)]) is None


def test_oci_addresses() -> None:
    assert is_oci_url("oci://ghcr.io/org") and is_oci_url("ghcr.io/org/charts")
    assert is_oci_url("127.0.0.1:5000/charts")
    assert not is_oci_url("git@github.com:org/repo.git")
    assert not is_oci_url("https://charts.example/stable")
    assert normalize_oci_url("oci://User:pw@GHCR.io/org/") == "oci://ghcr.io/org"
