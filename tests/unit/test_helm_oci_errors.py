"""What helm says about an OCI registry, turned into a condition that names registry and chart."""

from __future__ import annotations

import pytest

from tether.api.source import Source
from tether.sandbox import ToolError
from tether.source.credentials import from_secret_data
from tether.source.helm_oci import _classify, chart_reference, plain_http

pytestmark = pytest.mark.unit

SOURCE = Source(repo_url="registry.example:5000/charts", chart="web", target_revision="1.*")
REF = chart_reference(SOURCE)
CREDS = from_secret_data({"type": "oci", "password": "hunter22"}, "Secret apps/registry")


def said(stderr: str) -> ToolError:
    return ToolError("helm", stderr, stderr=stderr)


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        (
            'GET "https://r/v2/charts/web/manifests/1.0.0": response status code 401: unauthorized',
            "AuthenticationFailed",
        ),
        ("could not locate a version matching provided version string 1.*", "ChartVersionNotFound"),
        ("registry.example:5000/charts/web:1.0.0: not found", "ChartVersionNotFound"),
        ("dial tcp 10.0.0.1:5000: connect: connection refused", "RepositoryUnreachable"),
        ("http: server gave HTTP response to HTTPS client", "RepositoryUnreachable"),
        ("failed: sha256:0a401b403c404d: something else", "RepositoryUnreachable"),
    ],
)
def test_helm_messages_become_reasons(stderr: str, reason: str) -> None:
    err = _classify(said(stderr), REF, SOURCE, CREDS)
    assert err.reason == reason, str(err)
    assert "oci://registry.example:5000/charts" in str(err)


def test_a_refusal_names_the_secret_and_never_the_password() -> None:
    err = _classify(said("401 unauthorized hunter22"), REF, SOURCE, CREDS)
    assert "Secret apps/registry" in str(err) and "hunter22" not in str(err)


def test_plain_http_only_on_loopback_or_when_the_secret_says_so() -> None:
    assert plain_http("oci://127.0.0.1:5000/c", None)
    assert plain_http("oci://localhost:5000/c", None)
    assert plain_http("oci://[::1]:5000/c", None)
    assert not plain_http(REF, None)
    forced = from_secret_data({"type": "oci", "insecureOCIForceHttp": "true"})
    assert plain_http(REF, forced)
    assert chart_reference(SOURCE) == "oci://registry.example:5000/charts/web"
