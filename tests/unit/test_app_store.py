"""The controller's Applications, kept encoded: a read is a copy of its own, and an app's
resourceVersion is known without decoding it."""

from __future__ import annotations

from typing import Any

import pytest

from tether.controller.app_store import AppStore

pytestmark = pytest.mark.unit


def app(name: str, rv: str = "", **status: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "apps"}
    if rv:
        meta["resourceVersion"] = rv
    return {"kind": "Application", "metadata": meta, "spec": {}, "status": status}


def test_stores_reads_and_forgets() -> None:
    store = AppStore()
    store[("apps", "web")] = app("web", "12", sync={"status": "Synced"})
    store[("apps", "api")] = app("api")
    assert len(store) == 2 and ("apps", "web") in store and ("apps", "db") not in store
    assert sorted(store) == [("apps", "api"), ("apps", "web")]
    assert store[("apps", "web")] == app("web", "12", sync={"status": "Synced"})
    assert store.get(("apps", "db")) is None
    assert store.version(("apps", "web")) == 12
    assert store.version(("apps", "api")) == 0  # never written to the API server
    assert store.version(("apps", "db")) == 0

    store[("apps", "web")] = app("web", "15")
    assert store.version(("apps", "web")) == 15
    del store[("apps", "web")]
    assert ("apps", "web") not in store and store.version(("apps", "web")) == 0
    assert dict(store.items()) == {("apps", "api"): app("api")}


def test_a_read_is_a_copy_until_stored_again() -> None:
    store = AppStore()
    store[("apps", "web")] = app("web", "3", health={"status": "Healthy"})
    read = store[("apps", "web")]
    read["status"]["health"]["status"] = "Degraded"
    assert store[("apps", "web")]["status"]["health"] == {"status": "Healthy"}
    store[("apps", "web")] = read
    assert store[("apps", "web")]["status"]["health"] == {"status": "Degraded"}


def test_each_apps_sources_are_known_without_decoding_it() -> None:
    store = AppStore()
    one = app("web")
    one["spec"] = {"source": {"repoURL": "https://git.example/web.git", "targetRevision": "main"}}
    many = app("api")
    many["spec"] = {
        "sources": [
            {"repoURL": "https://charts.example", "chart": "api", "targetRevision": "1.2.0"},
            {"repoURL": "https://git.example/values.git"},
        ]
    }
    store[("apps", "web")] = one
    store[("apps", "api")] = many
    store[("apps", "bad")] = app("bad")  # no source at all: known, with none
    got = {
        key: [(s.repo_url, s.target_revision, s.chart) for s in refs]
        for key, refs in store.sources()
    }
    assert got == {
        ("apps", "web"): [("https://git.example/web.git", "main", "")],
        ("apps", "api"): [
            ("https://charts.example", "1.2.0", "api"),
            ("https://git.example/values.git", "HEAD", ""),
        ],
        ("apps", "bad"): [],
    }
    del store[("apps", "api")]
    assert [key for key, _ in store.sources()] == [("apps", "web"), ("apps", "bad")]
