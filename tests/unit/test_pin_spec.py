"""spec.pin: what is accepted and refused, and the words of a pin (condition, list, get)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.api.application import Application, Pin
from tether.cli.pin_cmds import pin_line, sync_cell
from tether.errors import InvalidSpec, TetherError
from tether.pin import PinState, SourceBehind, pin_message
from tether.pin.resolve import history_entry

pytestmark = pytest.mark.unit

FIXTURE = Path(__file__).parent.parent / "fixtures" / "pin" / "two-sources-pinned.yaml"
SHA = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
HEAD = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"


def pinned() -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(FIXTURE.read_text())
    return obj


def refused(obj: dict[str, Any]) -> str:
    with pytest.raises(InvalidSpec) as e:
        Application.from_obj(obj)
    return str(e.value)


def test_a_pin_is_read_with_one_revision_per_source() -> None:
    app = Application.from_obj(pinned())
    assert app.pin == Pin(
        revisions=(SHA, "18.1.0"),
        by="alice@laptop",
        at="2026-11-27T03:12:00Z",
        reason="checkout broken since 4f1e",
    )
    assert app.pin.to_dict()["revisions"] == [SHA, "18.1.0"]


def test_no_pin_is_none() -> None:
    obj = pinned()
    del obj["spec"]["pin"]
    assert Application.from_obj(obj).pin is None


@pytest.mark.parametrize(
    ("pin", "words"),
    [
        ({"revisions": []}, "spec.pin.revisions is empty"),
        ({"by": "x"}, "spec.pin.revisions is empty"),
        ({"revisions": [SHA, ""]}, "empty revision"),
        ({"revisions": [SHA]}, "has 1 revision(s) but the app has 2 source(s)"),
        ({"revisions": [SHA, "1", "2"]}, "has 3 revision(s) but the app has 2 source(s)"),
        ("abc", "spec.pin must be a mapping"),
    ],
)
def test_a_bad_pin_is_refused_naming_the_app_and_what_to_do(pin: Any, words: str) -> None:
    obj = pinned()
    obj["spec"]["pin"] = pin
    text = refused(obj)
    assert "Application apps/shop" in text and words in text
    assert "tether app unpin" in text


def state(*sources: SourceBehind, at: str = "2026-11-27T03:12:00Z") -> PinState:
    return PinState(at=at, sources=sources)


def one_source_pin() -> Pin:
    return Pin((SHA,), by="alice@laptop", at="2026-11-27T03:12:00Z", reason="bad deploy")


def test_the_message_names_revision_who_when_why_and_how_far_behind() -> None:
    behind = SourceBehind(SHA, "main", HEAD, 3, "Bob")
    assert pin_message("shop", one_source_pin(), state(behind)) == (
        "pinned at a1b2c3d by alice@laptop at 2026-11-27T03:12:00Z (bad deploy); "
        "3 commits behind main (newest 9f8e7d6 by Bob); unpin with 'tether app unpin shop'"
    )


def test_one_commit_behind_and_up_to_date() -> None:
    one = pin_message("shop", one_source_pin(), state(SourceBehind(SHA, "main", HEAD, 1, "Bob")))
    assert "; 1 commit behind main (newest 9f8e7d6 by Bob);" in one
    same = pin_message("shop", one_source_pin(), state(SourceBehind(SHA, "main", SHA, 0, "Al")))
    assert "; up to date with main;" in same


def test_an_older_count_is_not_shown_for_a_new_pin() -> None:
    old = state(SourceBehind(SHA, "main", HEAD, 5, "Bob"), at="2026-11-26T00:00:00Z")
    text = pin_message("shop", one_source_pin(), old)
    assert "how far behind is not known yet" in text and "5 commits" not in text


def test_several_sources_and_a_chart_and_a_branch_that_cannot_be_read() -> None:
    pin = Application.from_obj(pinned()).pin
    assert pin is not None
    found = state(
        SourceBehind(SHA, "main", note="repository https://git.example.com/team/shop.git: 503"),
        SourceBehind("18.1.0", "^18.0.0", "18.2.0", chart=True),
        at=pin.at,
    )
    text = pin_message("shop", pin, found)
    assert text.startswith(
        "pinned at a1b2c3d, 18.1.0 by alice@laptop at 2026-11-27T03:12:00Z "
        "(checkout broken since 4f1e); "
    )
    assert "source 1: distance to main unknown: repository https://git.example.com" in text
    assert "source 2: chart 18.2.0 is available for '^18.0.0'" in text
    assert found.commits_behind == 0
    assert found.to_status() == {
        "at": pin.at,
        "revisions": [SHA, "18.1.0"],
        "behind": [-1, -1],
        "branchHeads": ["", "18.2.0"],
    }


def test_list_and_get_show_the_pin_and_the_count_of_this_pin_only() -> None:
    obj = pinned()
    obj["status"] = {"sync": {"status": "Synced", "revision": SHA}}
    assert sync_cell(obj) == "Synced (pinned a1b2c3d,18.1.0)"
    obj["status"]["pin"] = {"at": obj["spec"]["pin"]["at"], "behind": [3, -1]}
    assert sync_cell(obj) == "Synced (pinned a1b2c3d,18.1.0, 3 behind)"
    line = pin_line(obj)
    assert line == (
        "a1b2c3d, 18.1.0 by alice@laptop at 2026-11-27T03:12:00Z (checkout broken since "
        "4f1e); 3 commits behind; unpin with 'tether app unpin shop'"
    )
    stale = copy.deepcopy(obj)
    stale["status"]["pin"]["at"] = "2026-11-20T00:00:00Z"
    assert sync_cell(stale) == "Synced (pinned a1b2c3d,18.1.0)"
    del obj["spec"]["pin"]
    assert sync_cell(obj) == "Synced" and pin_line(obj) is None


def with_history(*ids: int) -> Application:
    obj = pinned()
    del obj["spec"]["pin"]
    obj["status"] = {"history": [{"id": i, "revisions": ["18.1.0", SHA]} for i in ids]}
    return Application.from_obj(obj)


def test_a_short_number_is_a_history_id_and_an_unknown_one_lists_those_there() -> None:
    app = with_history(7, 6)
    entry = history_entry(app, "6")
    assert entry is not None and entry["id"] == 6
    with pytest.raises(TetherError) as e:
        history_entry(app, "3")
    assert "history ID 3 is not in the status of Application apps/shop (IDs there: 7, 6)" in str(
        e.value
    )
    assert "tether app history shop" in e.value.hint
    # Seven digits or more, or anything not all digits, names a commit or a version.
    assert history_entry(app, "1234567") is None
    assert history_entry(app, "18.1.0") is None
