"""The pure parts behind the sync's request savings: which objects a label-selected cache does
not hold (the key informer's selector), a Missing object's diff written only when read, and
the sync option that brings back a server dry-run per new object."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tether.diff.compare import LazyDiff, diff_object
from tether.kube.cache import complement
from tether.model import ResourceDiffStatus, ResourceKey
from tether.sync.options import DRY_RUN_NEW, SyncOptions, parse_app_options

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sync_requests"


@pytest.mark.parametrize(
    ("selector", "outside"),
    [
        ("tether.dev/app", "!tether.dev/app"),
        ("app", "!app"),
        ("", None),
        ("tether.dev/app=web", ""),
        ("a,b", ""),
    ],
)
def test_complement_selects_what_the_cache_does_not_hold(
    selector: str, outside: str | None
) -> None:
    assert complement(selector) == outside


def test_missing_diff_is_written_when_read_and_hides_secret_values() -> None:
    secret = yaml.safe_load((FIXTURES / "secret.yaml").read_text())
    key = ResourceKey("", "Secret", "demo", "creds")
    d = diff_object(key, secret, None, None)
    assert isinstance(d, LazyDiff) and d.status == ResourceDiffStatus.MISSING
    text = d.diff_text
    assert text.startswith("--- live/Secret/demo/creds\n+++ desired/Secret/demo/creds\n")
    assert "+kind: Secret\n" in text
    assert "hunter2" not in text
    assert d.diff_text is text  # written once


def test_missing_diff_text_can_be_replaced() -> None:
    d = diff_object(ResourceKey("", "ConfigMap", "demo", "c"), {"kind": "ConfigMap"}, None, None)
    d.diff_text = "shown elsewhere"
    assert d.diff_text == "shown elsewhere"


def test_dry_run_new_objects_is_an_app_and_object_option() -> None:
    options = SyncOptions(parse_app_options([f"{DRY_RUN_NEW}=true"], "Application demo/web"))
    assert options.enabled(DRY_RUN_NEW)
    annotated = {
        "kind": "ConfigMap",
        "metadata": {
            "name": "c",
            "annotations": {"tether.dev/sync-options": "DryRunNewObjects=false"},
        },
    }
    assert options.disabled(DRY_RUN_NEW, annotated)
    assert not SyncOptions({}).enabled(DRY_RUN_NEW)
