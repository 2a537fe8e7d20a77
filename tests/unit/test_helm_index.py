"""Reading a chart repository's index.yaml, and where its credentials may go."""

from __future__ import annotations

import pytest

from tether.errors import SourceError
from tether.source.credentials import RepoCredentials
from tether.source.helm_http import origin_of, parse_index, split_userinfo

pytestmark = pytest.mark.unit

INDEX = b"""
apiVersion: v1
entries:
  nginx:
  - name: nginx
    version: 1.2.3
    urls: [charts/nginx-1.2.3.tgz]
    digest: ABCDEF
  - name: nginx
    version: 1.3.0
    urls: []
  broken: not-a-list
generated: "2026-01-01T00:00:00Z"
"""


def test_index_entries() -> None:
    index = parse_index(INDEX, "http://repo/index.yaml")
    assert sorted(index) == ["nginx"]  # an entry that is not a list of versions is skipped
    first, second = index["nginx"]
    assert (first.version, first.digest) == ("1.2.3", "abcdef")
    assert first.urls == ("charts/nginx-1.2.3.tgz",)
    assert second.urls == () and second.digest == ""


@pytest.mark.parametrize(
    ("body", "words"),
    [(b"<html>sign in</html>", "has no 'entries'"), (b"entries: [", "is not valid YAML")],
)
def test_what_is_not_an_index_is_named(body: bytes, words: str) -> None:
    with pytest.raises(SourceError) as e:
        parse_index(body, "http://repo/index.yaml")
    assert "http://repo/index.yaml" in str(e.value) and words in str(e.value)


def test_origins_compare_scheme_host_and_port() -> None:
    assert origin_of("https://Charts.example/x") == origin_of("https://charts.example:443/y")
    assert origin_of("http://charts.example/x") != origin_of("https://charts.example/x")
    assert origin_of("http://127.0.0.1:8080/") != origin_of("http://127.0.0.1:8081/")


def test_user_info_in_the_url_fills_in_what_the_secret_does_not_give() -> None:
    url, creds = split_userinfo("https://bob:s%40cret@charts.example/stable", None)
    assert url == "https://charts.example/stable"
    assert creds is not None and (creds.username, creds.password) == ("bob", "s@cret")
    secret = RepoCredentials(username="robot", password="from-secret")
    _, merged = split_userinfo("https://bob:other@charts.example/stable", secret)
    assert merged is not None and (merged.username, merged.password) == ("robot", "from-secret")
