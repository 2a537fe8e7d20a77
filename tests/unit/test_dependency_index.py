"""The dependency gate's reverse index follows dependsOn edits, new apps and deletions."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tether.controller.dependencies import DependencyGate
from tether.model import Obj

pytestmark = pytest.mark.unit
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dependencies" / "apps.yaml"


def load() -> dict[tuple[str, str], Obj]:
    docs = [d for d in yaml.safe_load_all(FIXTURE.read_text()) if d]
    return {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in docs}


def moved(obj: Obj) -> Obj:
    """``obj`` with a new generation: something its dependents judge it by changed."""
    out = copy.deepcopy(obj)
    out["metadata"]["generation"] = int(out["metadata"]["generation"]) + 1
    return out


def test_the_index_follows_depends_on_edits_new_apps_and_deletions() -> None:
    apps = load()
    gate = DependencyGate(apps, ["apps", "other"])
    db = ("apps", "db")
    assert gate.changed(db, apps[db]) == [("apps", "web")]
    # web stops depending on db: a change of db wakes nobody.
    web = copy.deepcopy(apps[("apps", "web")])
    web["metadata"]["generation"] = 2
    web["spec"]["dependsOn"] = []
    apps[("apps", "web")] = web
    gate.changed(("apps", "web"), web)
    apps[db] = moved(apps[db])
    assert gate.changed(db, apps[db]) == []
    # A new app that names db is woken by the next change of db.
    shop = copy.deepcopy(web)
    shop["metadata"]["name"] = "shop"
    shop["spec"]["dependsOn"] = [{"name": "db"}]
    apps[("apps", "shop")] = shop
    gate.changed(("apps", "shop"), shop)
    apps[db] = moved(apps[db])
    assert gate.changed(db, apps[db]) == [("apps", "shop")]
    # Deleted, it is woken no more.
    del apps[("apps", "shop")]
    gate.changed(("apps", "shop"), None)
    apps[db] = moved(apps[db])
    assert gate.changed(db, apps[db]) == []
