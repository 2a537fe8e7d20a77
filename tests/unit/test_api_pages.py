"""The list's pages, search and filters, and commit links: pure parts of the HTTP API."""

from __future__ import annotations

import pytest

from tether.server.api.commits import commit_url
from tether.server.api.listing import ListFilter, sort_key
from tether.server.api.pagination import MAX_LIMIT, decode_token, encode_token, page, parse_limit
from tether.server.errors import ApiError

pytestmark = pytest.mark.unit
SHA = "0123456789abcdef0123456789abcdef01234567"


def app(ns: str, name: str, **kw: str) -> dict[str, object]:
    return {
        "metadata": {"namespace": ns, "name": name},
        "spec": {
            "project": kw.get("project", ""),
            "source": {
                "repoURL": kw.get("repo", "https://git.example.com/x.git"),
                "path": kw.get("path", ""),
            },
        },
        "status": {
            "sync": {"status": kw.get("sync", "Synced")},
            "health": {"status": kw.get("health", "Healthy")},
        },
    }


def test_pages_follow_the_last_key_not_an_offset() -> None:
    keys = [f"ns/app-{i:02d}" for i in range(7)]
    first, token = page(keys, str, 3)
    assert first == keys[:3] and decode_token(token) == "ns/app-02"
    # An item removed before the token's key shifts nothing.
    second, token = page([k for k in keys if k != "ns/app-00"], str, 3, token)
    assert second == keys[3:6]
    last, token = page(keys, str, 3, token)
    assert last == keys[6:] and token == ""
    assert page(keys, str, 7) == (keys, "")
    assert page([], str, 3) == ([], "")


def test_a_bad_limit_or_token_is_400() -> None:
    assert parse_limit(None) == 500 and parse_limit("") == 500 and parse_limit("5000") == MAX_LIMIT
    for bad in ("0", "5001", "ten", "-1"):
        with pytest.raises(ApiError) as e:
            parse_limit(bad)
        assert e.value.status == 400
    with pytest.raises(ApiError) as e:
        page(["a"], str, 1, "%%%")
    assert e.value.status == 400 and "continue" in e.value.message
    assert decode_token(encode_token("ns/ünïcode")) == "ns/ünïcode"


def test_search_and_filters() -> None:
    apps = [
        app("a", "web", repo="https://git.example.com/shop/web.git", path="deploy/prod"),
        app("a", "db", sync="OutOfSync", health="Degraded", project="data"),
        app("b", "cache", health="Progressing"),
    ]

    def names(**q: str) -> list[str]:
        f = ListFilter.of(q)
        return [str(a["metadata"]["name"]) for a in sorted(apps, key=sort_key) if f.matches(a)]  # type: ignore[index]

    assert names() == ["db", "web", "cache"]
    assert names(search="WEB") == ["web"]
    assert names(search="deploy/prod") == ["web"]
    assert names(search="shop/web") == ["web"]
    assert names(sync="OutOfSync") == ["db"]
    assert names(health="Degraded,Progressing") == ["db", "cache"]
    assert names(project="default") == ["web", "cache"]
    assert names(project="data", sync="Synced") == []


def test_search_cannot_probe_the_credentials_of_a_url() -> None:
    secret = app("a", "web", repo="https://deploy:hunter2@git.example.com/shop/web.git")
    assert not ListFilter(search="hunter2").matches(secret)
    assert ListFilter(search="git.example.com/shop").matches(secret)


@pytest.mark.parametrize(
    ("repo", "want"),
    [
        ("https://github.com/acme/shop.git", f"https://github.com/acme/shop/commit/{SHA}"),
        ("https://github.com/acme/shop", f"https://github.com/acme/shop/commit/{SHA}"),
        ("http://127.0.0.1:3000/shop.git", f"http://127.0.0.1:3000/shop/commit/{SHA}"),
        ("git@github.com:acme/shop.git", f"https://github.com/acme/shop/commit/{SHA}"),
        (
            "ssh://git@gitlab.example.com/acme/shop.git",
            f"https://gitlab.example.com/acme/shop/commit/{SHA}",
        ),
        ("https://***@github.com/acme/shop.git", f"https://github.com/acme/shop/commit/{SHA}"),
        (
            "https://user:token@github.com/acme/shop.git",
            f"https://github.com/acme/shop/commit/{SHA}",
        ),
        ("javascript:alert(1)", ""),
        ("javascript://github.com/acme/shop.git", ""),
        ("JavaScript:alert(document.cookie)//github.com/a/b", ""),
        ("data:text/html,<script>alert(1)</script>", ""),
        ("file:///etc/passwd", ""),
        ("oci://registry.example.com/charts", ""),
        ('https://github.com/acme/shop"><script>x</script>', ""),
        ("", ""),
    ],
)
def test_commit_links_are_http_or_nothing(repo: str, want: str) -> None:
    assert commit_url(repo, SHA) == want
    assert commit_url(repo, "javascript:alert(1)") == ""
    assert commit_url(repo, "") == ""
