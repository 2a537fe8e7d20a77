"""``tether.desired_memo``: an app's last desired objects are handed out again only while
everything they came from is equal, and only as copies."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tether.api.application import Application, new_application
from tether.api.project import Project, builtin_default
from tether.desired import CommitInfo, Desired
from tether.desired_memo import DesiredMemo, Entry, basis_of
from tether.model import Manifest
from tether.render.cache import RenderCache

pytestmark = pytest.mark.unit

FACTS = ("1.20.2", ("v1",))
COMMIT = "a" * 40


def app(**spec: Any) -> Application:
    obj = new_application("web", "apps", repo_url="https://git.example/r.git", path="web")
    obj["metadata"]["uid"] = "u-1"
    obj["spec"].update(spec)
    return Application.from_obj(obj)


def cm(name: str) -> Manifest:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {}}
    return Manifest(obj, "web/cm.yaml", 1)


def remembered(
    memo: DesiredMemo, cache: RenderCache, a: Application, project: Project
) -> tuple[Desired, Desired]:
    """Renders ``cm a`` into ``cache`` and remembers the desired made of it: (kept, handed)."""
    rendered = [cm("a")]
    cache.put("k1", rendered)
    marked = [Manifest({**rendered[0].obj, "metadata": {"name": "a", "namespace": "d"}})]
    desired = Desired(COMMIT, CommitInfo(COMMIT), marked, {marked[0].key: rendered[0]})
    basis = basis_of(a, None, [COMMIT], FACTS)
    entry = Entry(basis, project, [("Directory", "k1")], cache.get("k1") or [], desired)
    return desired, memo.remember(a, entry)


def test_an_unchanged_app_gets_a_copy_of_its_last_desired_objects() -> None:
    memo, cache, a, project = DesiredMemo(8), RenderCache(8), app(), builtin_default()
    kept, handed = remembered(memo, cache, a, project)
    assert handed.options_checked and handed.manifests == kept.manifests
    again = memo.get(a, basis_of(a, None, [COMMIT], FACTS), project, cache)
    assert again is not None and memo.hits == 1
    assert again.manifests == kept.manifests
    again.manifests[0].obj["data"]["x"] = "changed by a sync"
    assert kept.manifests[0].obj["data"] == {}


@pytest.mark.parametrize(
    "change",
    ["commit", "revision asked", "spec", "annotations", "facts", "project"],
)
def test_any_change_in_what_it_came_from_misses(change: str) -> None:
    memo, cache, a, project = DesiredMemo(8), RenderCache(8), app(), builtin_default()
    remembered(memo, cache, a, project)
    commits, revision, facts = [COMMIT], None, FACTS
    if change == "commit":
        commits = ["b" * 40]
    elif change == "revision asked":
        revision = "v2"
    elif change == "spec":
        a = app(destination={"namespace": "elsewhere"})
    elif change == "annotations":
        a.obj["metadata"]["annotations"] = {"note": "x"}
    elif change == "facts":
        facts = ("1.21.0", ("v1",))
    else:
        project = dataclasses.replace(project, source_repos=("https://other/*",))
    assert memo.get(a, basis_of(a, revision, commits, facts), project, cache) is None
    assert memo.hits == 0


def test_a_render_no_longer_cached_or_rendered_again_misses() -> None:
    memo, cache, a, project = DesiredMemo(8), RenderCache(8), app(), builtin_default()
    remembered(memo, cache, a, project)
    basis = basis_of(a, None, [COMMIT], FACTS)
    cache.put("k1", [cm("a")])  # the same key rendered again: other objects
    assert memo.get(a, basis, project, cache) is None
    cache.clear()
    assert memo.get(a, basis, project, cache) is None
    assert memo.hits == 0


def test_size_bounds_the_apps_kept_and_zero_keeps_none() -> None:
    cache, project = RenderCache(8), builtin_default()
    memo = DesiredMemo(1)
    remembered(memo, cache, app(), project)
    other = Application.from_obj({**app().obj, "metadata": {"name": "api", "namespace": "apps"}})
    remembered(memo, cache, other, project)
    assert len(memo) == 1
    off = DesiredMemo(0)
    kept, handed = remembered(off, cache, app(), project)
    assert handed is kept and len(off) == 0
