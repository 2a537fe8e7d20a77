"""Which repositories the poll loop follows, worked out again only for apps that changed."""

from __future__ import annotations

from typing import Any, cast

import pytest

from tether.controller.polling import REFRESH_INTERVAL_ANNOTATION, RepoPoller
from tether.controller.queue import AppKey
from tether.engine import Engine

pytestmark = pytest.mark.unit

A: AppKey = ("apps", "a")
B: AppKey = ("apps", "b")
C: AppKey = ("apps", "c")
ONE = "https://git.example.com/team/one.git"
TWO = "https://git.example.com/team/two.git"


def app(name: str, url: str, rv: int, *, every: str = "", chart: str = "") -> dict[str, Any]:
    source: dict[str, Any] = {"repoURL": url, "targetRevision": "main"}
    if chart:
        source = {"repoURL": url, "chart": chart, "targetRevision": "1.*"}
    meta: dict[str, Any] = {"name": name, "namespace": "apps", "resourceVersion": str(rv)}
    if every:
        meta["annotations"] = {REFRESH_INTERVAL_ANNOTATION: every}
    return {"metadata": meta, "spec": {"source": source}}


def poller(apps: dict[AppKey, Any], queued: list[AppKey]) -> RepoPoller:
    # The engine is used by a poll itself, never by working out what to poll.
    return RepoPoller(cast(Engine, None), apps, lambda url: 0, 180.0, queued.append)


def follow(p: RepoPoller) -> dict[str, tuple[float, AppKey]]:
    return {t.url: (t.interval, t.key) for t in p.targets().values()}


def test_a_new_status_leaves_the_targets_as_they_were() -> None:
    apps = {A: app("a", ONE, 1), B: app("b", ONE, 1, every="30s")}
    p = poller(apps, [])
    first = p.targets()
    assert follow(p) == {ONE: (30.0, B)}
    apps[A] = app("a", ONE, 2)  # the status written: a new resourceVersion, same spec
    p.changed(A)
    assert p.targets() is first


def test_a_changed_source_interval_or_deletion_is_followed() -> None:
    apps = {A: app("a", ONE, 1), B: app("b", ONE, 1, every="30s")}
    p = poller(apps, [])
    assert follow(p) == {ONE: (30.0, B)}
    apps[B] = app("b", TWO, 2, every="30s")
    p.changed(B)
    assert follow(p) == {ONE: (180.0, A), TWO: (30.0, B)}
    apps[A] = app("a", ONE, 3, every="1m")
    p.changed(A)
    assert follow(p) == {ONE: (60.0, A), TWO: (30.0, B)}
    del apps[B]
    p.changed(B)
    assert follow(p) == {ONE: (60.0, A)}


def test_an_app_added_or_removed_unannounced_is_still_seen() -> None:
    apps = {A: app("a", ONE, 1)}
    p = poller(apps, [])
    assert follow(p) == {ONE: (180.0, A)}
    apps[C] = app("c", TWO, 1)
    assert follow(p) == {ONE: (180.0, A), TWO: (180.0, C)}
    del apps[A]
    assert follow(p) == {TWO: (180.0, C)}


def test_only_apps_with_a_helm_repository_chart_are_queued_every_interval() -> None:
    apps = {A: app("a", ONE, 1), C: app("c", "https://charts.example.com", 1, chart="web")}
    queued: list[AppKey] = []
    p = poller(apps, queued)
    p.targets()
    p._refresh_chart_apps(1000.0)  # the first interval starts now
    assert queued == []
    p._refresh_chart_apps(1000.0 + 180.0)
    assert queued == [C]
    # Its chart replaced by a Git source: it is polled through its repository instead.
    apps[C] = app("c", TWO, 2)
    p.changed(C)
    assert follow(p) == {ONE: (180.0, A), TWO: (180.0, C)}
    p._refresh_chart_apps(1000.0 + 10_000.0)
    assert queued == [C]
