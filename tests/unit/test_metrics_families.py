"""Per-application metric families: bounded series, rendered on change, valid exposition."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tether import metrics
from tether.metrics import AppFamily

pytestmark = pytest.mark.unit


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == name
    }


def test_an_info_series_moves_with_the_status_and_never_doubles() -> None:
    fam = AppFamily("x_app_info", "help", "gauge", ["namespace", "name", "sync_status"])
    fam.set(("ns", "a", "OutOfSync"))
    fam.remove(("ns", "a", "OutOfSync"))
    fam.set(("ns", "a", "Synced"))
    fam.set(("ns", "b", "Synced"))
    got = samples(fam.exposition(), "x_app_info")
    assert got == {
        (("name", "a"), ("namespace", "ns"), ("sync_status", "Synced")): 1.0,
        (("name", "b"), ("namespace", "ns"), ("sync_status", "Synced")): 1.0,
    }
    assert len(fam) == 2


def test_counters_add_up_and_a_deleted_app_leaves_no_series() -> None:
    fam = AppFamily("x_syncs_total", "help", "counter", ["namespace", "app", "result"])
    fam.inc(("ns", "a", "Succeeded"))
    fam.inc(("ns", "a", "Succeeded"))
    fam.inc(("ns", "a", "Failed"), 3)
    fam.inc(("ns", "ab", "Failed"))
    assert fam.get(("ns", "a", "Succeeded")) == 2.0
    fam.remove_app("ns", "a")
    got = samples(fam.exposition(), "x_syncs_total")
    assert got == {(("app", "ab"), ("namespace", "ns"), ("result", "Failed")): 1.0}
    # Series removed one by one, then the app again: nothing left of it to remove twice.
    fam.inc(("ns", "a", "Failed"))
    fam.remove(("ns", "a", "Failed"))
    fam.remove_app("ns", "a")
    fam.remove_app("ns", "ab")
    assert len(fam) == 0 and samples(fam.exposition(), "x_syncs_total") == {}
    fam.inc(("ns", "a", "Succeeded"))
    assert samples(fam.exposition(), "x_syncs_total") == {
        (("app", "a"), ("namespace", "ns"), ("result", "Succeeded")): 1.0
    }


def test_label_values_are_escaped() -> None:
    fam = AppFamily("x_info", "help", "gauge", ["namespace", "name"])
    fam.set(("n\\s", 'a"b\nc'))
    got = samples(fam.exposition(), "x_info")
    assert got == {(("name", 'a"b\nc'), ("namespace", "n\\s")): 1.0}


def test_the_exposition_is_reused_until_a_value_changes() -> None:
    fam = AppFamily("x_info", "help", "gauge", ["namespace", "name"])
    fam.set(("ns", "a"))
    first = fam.exposition()
    fam.set(("ns", "a"))  # the same value: nothing to render again
    assert fam.exposition() is first
    fam.set(("ns", "a"), 2)
    assert fam.exposition() is not first


def test_the_whole_body_parses_with_per_app_and_per_controller_families() -> None:
    metrics.record_sync("unit-ns", "unit-app", "Succeeded", "webhook")
    text = metrics.exposition().decode()
    syncs = samples(text, "tether_syncs_total")
    assert syncs[(("app", "unit-app"), ("namespace", "unit-ns"), ("result", "Succeeded"))] >= 1
    triggers = samples(text, "tether_sync_triggers_total")
    assert triggers[(("result", "Succeeded"), ("trigger", "webhook"))] >= 1
    metrics.forget_app("unit-ns", "unit-app")
    assert "unit-app" not in metrics.exposition().decode()
