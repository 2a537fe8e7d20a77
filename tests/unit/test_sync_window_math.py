"""Sync windows: parsing spec.syncWindows, and the window arithmetic at fixed instants (time
zones, daylight saving, midnight, overlaps, deny over allow, manual syncs, the next edge)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tether.api.application import Application
from tether.controller.windows import (
    SyncWindowClosed,
    check_manual_sync,
    evaluate,
    gate,
    parse_windows,
)
from tether.errors import InvalidSpec

pytestmark = pytest.mark.unit


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def windows(*entries: dict[str, Any]) -> list[Any]:
    return parse_windows(list(entries), "Application ns/app")


def deny(schedule: str, duration: str, **kw: Any) -> dict[str, Any]:
    return {"kind": "deny", "schedule": schedule, "duration": duration, **kw}


def allow(schedule: str, duration: str, **kw: Any) -> dict[str, Any]:
    return {"kind": "allow", "schedule": schedule, "duration": duration, **kw}


@pytest.fixture
def app_obj() -> dict[str, Any]:
    return {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "shop", "namespace": "ns"},
        "spec": {
            "source": {"repoURL": "https://git.example.com/shop.git", "path": "app"},
            "destination": {"namespace": "shop"},
        },
    }


# ---- parsing ---------------------------------------------------------------------------


def test_application_reads_its_windows(app_obj: dict[str, Any]) -> None:
    app_obj["spec"]["syncWindows"] = [
        deny("0 22 * * 1-5", "8h", timeZone="Europe/Paris", manualSync=True),
        allow("*/30 9-17 * * *", "1h30m"),
    ]
    app = Application.from_obj(app_obj)
    first, second = app.sync_windows
    assert (first.index, first.kind, first.time_zone, first.manual_sync) == (
        1,
        "deny",
        "Europe/Paris",
        True,
    )
    assert first.duration == timedelta(hours=8)
    assert (second.time_zone, second.manual_sync, second.duration) == (
        "UTC",
        False,
        timedelta(minutes=90),
    )


def test_no_windows_field_is_no_windows(app_obj: dict[str, Any]) -> None:
    assert Application.from_obj(app_obj).sync_windows == []


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ({"kind": "block", "schedule": "* * * * *", "duration": "1h"}, "kind 'block'"),
        (deny("* * * * * *", "1h"), "not a five-field cron"),
        (deny("@daily", "1h"), "not a five-field cron"),
        (deny("61 * * * *", "1h"), "is not valid cron"),
        (deny("0 0 31 2 *", "1h"), "never fires"),
        (deny("0 22 * * *", "1d"), "duration '1d'"),
        (deny("0 22 * * *", "0m"), "longer than zero"),
        (deny("0 22 * * *", ""), "duration ''"),
        (deny("0 22 * * *", "1h", timeZone="Mars/Olympus"), "time zone 'Mars/Olympus'"),
        (deny("0 22 * * *", "1h", timeZone="../etc/passwd"), "time zone"),
    ],
)
def test_a_bad_window_is_invalid_spec_naming_the_entry(
    app_obj: dict[str, Any], entry: dict[str, Any], said: str
) -> None:
    app_obj["spec"]["syncWindows"] = [allow("0 1 * * *", "1h"), entry]
    with pytest.raises(InvalidSpec) as e:
        Application.from_obj(app_obj)
    assert "Application ns/shop: syncWindows[1]" in str(e.value)
    assert said in str(e.value)
    assert e.value.hint


# ---- which windows are active ------------------------------------------------------------


def test_no_windows_always_allow() -> None:
    v = evaluate([], utc(2026, 11, 27, 12))
    assert v.auto_allowed and v.manual_allowed
    assert v.to_status() is None and v.next_change is None


def test_a_window_crossing_midnight_is_half_open() -> None:
    ws = windows(deny("0 22 * * *", "8h"))
    assert not evaluate(ws, utc(2026, 11, 27, 21, 59, 59)).active
    at_start = evaluate(ws, utc(2026, 11, 27, 22))
    assert [o.end for o in at_start.active] == [utc(2026, 11, 28, 6)]
    after_midnight = evaluate(ws, utc(2026, 11, 28, 3))
    assert not after_midnight.auto_allowed
    assert after_midnight.active[0].start == utc(2026, 11, 27, 22)
    assert evaluate(ws, utc(2026, 11, 28, 6)).auto_allowed


def test_time_zone_moves_the_window_with_daylight_saving() -> None:
    ws = windows(deny("0 22 * * *", "1h", timeZone="Europe/Paris"))
    # Winter: CET is UTC+1; summer: CEST is UTC+2.
    assert ws[0].next_start(utc(2026, 1, 15)) == utc(2026, 1, 15, 21)
    assert ws[0].next_start(utc(2026, 7, 15)) == utc(2026, 7, 15, 20)
    assert not evaluate(ws, utc(2026, 7, 15, 20, 30)).auto_allowed
    assert evaluate(ws, utc(2026, 1, 15, 20, 30)).auto_allowed


def test_a_start_the_clock_skips_opens_when_the_clock_jumps() -> None:
    # Paris, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 never happens.
    w = windows(deny("30 2 * * *", "1h", timeZone="Europe/Paris"))[0]
    assert w.next_start(utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1)
    assert w.open_at(utc(2026, 3, 29, 1, 59)) == (utc(2026, 3, 29, 1), utc(2026, 3, 29, 2))
    assert w.open_at(utc(2026, 3, 29, 2)) is None
    assert w.next_start(utc(2026, 3, 29, 1)) == utc(2026, 3, 30, 0, 30)


def test_a_start_the_clock_repeats_opens_once_and_lasts_elapsed_time() -> None:
    # Paris, 2026-10-25: 03:00 CEST (01:00 UTC) goes back to 02:00 CET; 02:30 happens twice.
    w = windows(deny("30 2 * * *", "1h", timeZone="Europe/Paris"))[0]
    assert w.next_start(utc(2026, 10, 24, 12)) == utc(2026, 10, 25, 0, 30)
    # One elapsed hour: 02:30 CEST to 02:30 CET, and not again at the second 02:30.
    assert w.open_at(utc(2026, 10, 25, 1, 29)) == (
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1, 30),
    )
    assert w.open_at(utc(2026, 10, 25, 1, 45)) is None
    assert w.last_start(utc(2026, 10, 25, 1, 45)) == utc(2026, 10, 25, 0, 30)
    assert w.next_start(utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 26, 1, 30)


def test_other_time_zones_and_half_hour_offsets() -> None:
    ny = windows(allow("0 9 * * 1-5", "8h", timeZone="America/New_York"))[0]
    assert ny.next_start(utc(2026, 11, 27, 12)) == utc(2026, 11, 27, 14)  # 07:00 → 09:00 EST
    assert ny.next_start(utc(2026, 11, 27, 15)) == utc(2026, 11, 30, 14)  # Friday → Monday
    india = windows(allow("0 9 * * *", "1h", timeZone="Asia/Kolkata"))[0]
    assert india.next_start(utc(2026, 11, 27)) == utc(2026, 11, 27, 3, 30)


def test_back_to_back_openings_are_one_stretch() -> None:
    # Every two hours for three hours: never closes.
    always = windows(deny("0 */2 * * *", "3h"))
    v = evaluate(always, utc(2026, 11, 27, 12, 30))
    assert not v.auto_allowed and v.active[0].end is None and v.next is None
    assert v.next_change is None and v.allowed_at is None
    # Every minute for an hour (the usual "always active" window).
    v = evaluate(windows(deny("* * * * *", "1h")), utc(2026, 11, 27, 12, 30, 17))
    assert not v.auto_allowed and v.active[0].end is None
    assert "with no end in the next 7 days" in v.why()
    # Openings at 09:00 and 09:30 for 45 minutes: one stretch until 10:15.
    v = evaluate(windows(deny("0,30 9 * * *", "45m")), utc(2026, 11, 27, 9, 10))
    assert v.active[0].end == utc(2026, 11, 27, 10, 15)


def test_overlapping_deny_windows_deny_until_the_last_closes() -> None:
    ws = windows(deny("0 9 * * *", "2h"), deny("0 10 * * *", "2h"))
    v = evaluate(ws, utc(2026, 11, 27, 10, 30))
    assert [o.window.index for o in v.denying] == [1, 2]
    assert v.next_change == utc(2026, 11, 27, 11)
    assert v.allowed_at == utc(2026, 11, 27, 12)
    assert "syncs are allowed again at 2026-11-27T12:00:00Z" in v.why()


def test_deny_wins_over_allow() -> None:
    ws = windows(allow("0 8 * * *", "10h"), deny("0 12 * * *", "1h"))
    assert evaluate(ws, utc(2026, 11, 27, 11)).auto_allowed
    both = evaluate(ws, utc(2026, 11, 27, 12, 15))
    assert {o.window.kind for o in both.active} == {"allow", "deny"}
    assert not both.auto_allowed and not both.manual_allowed
    assert both.allowed_at == utc(2026, 11, 27, 13)
    assert "deny window 2 ('0 12 * * *' for 1h, UTC) is active until 2026-11-27T13:00:00Z" in (
        both.why()
    )


def test_allow_windows_deny_outside_themselves() -> None:
    ws = windows(allow("0 22 * * *", "2h"))
    v = evaluate(ws, utc(2026, 11, 27, 12))
    assert not v.auto_allowed and not v.manual_allowed
    assert v.allowed_at == utc(2026, 11, 27, 22)
    assert v.why().startswith("no allow window is active (allow window 1")
    assert v.next is not None and (v.next.start, v.next.end) == (
        utc(2026, 11, 27, 22),
        utc(2026, 11, 28, 0),
    )
    assert evaluate(ws, utc(2026, 11, 27, 23)).auto_allowed


# ---- manual syncs ------------------------------------------------------------------------


def test_manual_sync_through_deny_windows_needs_manual_sync_on_each() -> None:
    at = utc(2026, 11, 27, 10, 30)
    one = windows(deny("0 10 * * *", "1h", manualSync=True))
    assert evaluate(one, at).manual_allowed and not evaluate(one, at).auto_allowed
    two = windows(deny("0 10 * * *", "1h", manualSync=True), deny("0 9 * * *", "2h"))
    v = evaluate(two, at)
    assert not v.manual_allowed
    assert "manualSync is not set on deny window 2" in v.manual_refusal()


def test_manual_sync_outside_allow_windows_needs_manual_sync_on_each() -> None:
    at = utc(2026, 11, 27, 12)
    assert evaluate(windows(allow("0 22 * * *", "1h", manualSync=True)), at).manual_allowed
    mixed = windows(allow("0 22 * * *", "1h", manualSync=True), allow("0 2 * * *", "1h"))
    assert not evaluate(mixed, at).manual_allowed


def test_check_manual_sync_names_the_window_and_its_end() -> None:
    ws = windows(deny("0 10 * * *", "1h", timeZone="Europe/Paris"))
    at = utc(2026, 11, 27, 9, 20)  # 10:20 in Paris
    with pytest.raises(SyncWindowClosed) as e:
        check_manual_sync("shop", ws, at, False)
    msg = str(e.value)
    assert "sync of shop refused by its sync windows" in msg
    assert "deny window 1 ('0 10 * * *' for 1h, Europe/Paris)" in msg
    assert "until 2026-11-27T10:00:00Z" in msg
    assert "tether app sync shop --force-window" in e.value.hint
    forced = check_manual_sync("shop", ws, at, True)
    assert "deny window 1" in forced
    assert check_manual_sync("shop", ws, utc(2026, 11, 27, 12), False) == ""


# ---- status and the controller's gate ----------------------------------------------------


def test_status_shows_verdict_active_and_next_in_utc() -> None:
    ws = windows(deny("0 22 * * *", "8h", timeZone="Europe/Paris"), allow("0 6 * * *", "12h"))
    st = evaluate(ws, utc(2026, 11, 27, 22)).to_status()
    assert st is not None
    assert st["syncAllowed"] is False and st["manualSyncAllowed"] is False
    assert st["active"] == [
        {
            "kind": "deny",
            "schedule": "0 22 * * *",
            "duration": "8h",
            "timeZone": "Europe/Paris",
            "manualSync": False,
            "end": "2026-11-28T05:00:00Z",
        }
    ]
    assert st["next"]["kind"] == "allow"
    assert (st["next"]["start"], st["next"]["end"]) == (
        "2026-11-28T06:00:00Z",
        "2026-11-28T18:00:00Z",
    )
    assert st["allowedAt"] == "2026-11-28T06:00:00Z"
    # Between two edges the status is the same, so it is not written again.
    assert evaluate(ws, utc(2026, 11, 27, 23, 41)).to_status() == st
    allowed = evaluate(ws, utc(2026, 11, 28, 7)).to_status()
    assert allowed is not None and allowed["syncAllowed"] is True
    assert allowed["allowedAt"] is None  # a null: the merge patch removes the earlier one


def test_gate_holds_a_due_automated_sync_and_sets_the_next_look() -> None:
    ws = windows(deny("0 10 * * *", "1h"))
    at = utc(2026, 11, 27, 10, 15)
    held = gate(ws, "shop", "poll", "0123456789abcdef", at)
    assert held.held and held.reason == "DenyWindowActive"
    assert held.message.startswith("automated sync to 0123456789 held by the sync windows")
    assert "tether app sync shop --force-window" in held.message
    assert held.recheck_in == 45 * 60 + 0.5
    heal = gate(ws, "shop", "self-heal", "0123456789abcdef", at)
    assert heal.message.startswith("self-heal held")
    nothing_due = gate(ws, "shop", "", "0123456789abcdef", at)
    assert not nothing_due.held and nothing_due.recheck_in == held.recheck_in
    assert gate([], "shop", "poll", "x", at).recheck_in is None
    outside = gate(windows(allow("0 22 * * *", "1h")), "shop", "auto", "ab", at)
    assert outside.reason == "OutsideAllowWindows"
    assert not gate(ws, "shop", "poll", "ab", utc(2026, 11, 27, 11)).held


def test_a_null_in_the_status_patch_matches_an_absent_field() -> None:
    # status.syncWindows.allowedAt is written as null once syncs are allowed: the stored
    # status then has no such field, and the next identical status is not written again.
    from tether.status import _same_status

    stored = {"syncWindows": {"syncAllowed": True, "active": []}, "reconciledAt": "a"}
    same = {"syncWindows": {"syncAllowed": True, "active": [], "allowedAt": None}}
    assert _same_status(stored, {**same, "reconciledAt": "b"})
    assert _same_status({}, {"syncWindows": None})
    changed = {"syncWindows": {"syncAllowed": False, "active": [], "allowedAt": None}}
    assert not _same_status(stored, changed)
    assert not _same_status(
        {"syncWindows": {"allowedAt": "x"}}, {"syncWindows": {"allowedAt": None}}
    )
