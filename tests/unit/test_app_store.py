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
