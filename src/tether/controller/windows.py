"""Sync windows: an Application's ``spec.syncWindows`` read and checked, and the pure time
arithmetic of when they let syncs through (active windows, the verdict, the next change).

A window opens at every time its cron ``schedule`` fires, read on the wall clock of its
``timeZone``, and stays open for ``duration`` of elapsed time. Wall-clock times the clock
skips (spring forward) open the window when the clock jumps; times it repeats (fall back)
open it once, on their first occurrence. Rules, as Argo CD's: no windows, syncs allowed;
an active deny window denies (deny wins over allow); allow windows that exist while none is
active deny; ``manualSync`` lets manual syncs through a window that denies.

An app's own windows and its Project's (``scope``: ``project NAME``) are judged apart, each
set by those rules, and both must allow: a project's allow window does not open an app's
deny window, nor the other way round.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from croniter import croniter

from tether.errors import InvalidSpec, TetherError

KINDS = ("allow", "deny")
HORIZON = timedelta(days=7)
"""How far ahead back-to-back openings of one window are followed to find where it ends."""
MAX_STEPS = 2000
"""Bound on the openings followed per question (a schedule that reopens before it closes)."""
_DURATION_PART = re.compile(r"(\d+)(h|m|s)")
_DURATION = re.compile(r"^(?:\d+(?:h|m|s))+$")
_SECOND = timedelta(seconds=1)
_MICROSECOND = timedelta(microseconds=1)


class SyncWindowClosed(TetherError):
    """A manual sync asked for while the app's sync windows deny it."""

    reason = "SyncWindow"


def iso(t: datetime) -> str:
    """UTC, to the second, as status and messages write times."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str) -> timedelta:
    """``1h``, ``30m``, ``1h30m``, ``90s``: hours, minutes and seconds, as Argo CD's Go
    durations are usually written. More than zero."""
    t = text.strip()
    if not _DURATION.match(t):
        raise ValueError(f"duration {text!r} is not hours, minutes or seconds (1h, 30m, 1h30m)")
    unit = {"h": 3600, "m": 60, "s": 1}
    seconds = sum(int(n) * unit[u] for n, u in _DURATION_PART.findall(t))
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be longer than zero")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class SyncWindow:
    """One entry of ``spec.syncWindows`` (``index`` counts from 1, as people do)."""

    index: int
    kind: str
    schedule: str
    duration: timedelta
    duration_text: str
    time_zone: str = "UTC"
    manual_sync: bool = False
    scope: str = ""
    """Whose window it is: "" for the app's own ``spec.syncWindows``, ``project NAME`` for
    its Project's. Each scope's windows are judged apart; every scope must allow."""
    _cron: croniter | None = field(default=None, compare=False, repr=False)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def describe(self) -> str:
        """``deny window 2 ('0 22 * * *' for 8h, Europe/Paris)``: how messages name it."""
        of = f" of {self.scope}" if self.scope else ""
        return (
            f"{self.kind} window {self.index}{of} ('{self.schedule}' for {self.duration_text}, "
            f"{self.time_zone})"
        )

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "schedule": self.schedule,
            "duration": self.duration_text,
            "timeZone": self.time_zone,
            "manualSync": self.manual_sync,
        }
        if self.scope:
            out["scope"] = self.scope
        return out

    # ---- wall clock <-> UTC ------------------------------------------------------------
    def _to_utc(self, naive: datetime) -> datetime:
        """The instant a wall-clock opening happens: a time the clock skips happens when the
        clock jumps; a time it repeats, at its first occurrence. Never decreasing in
        ``naive``, which the searches below rely on."""
        zone = self.zone
        first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if first.astimezone(zone).replace(tzinfo=None) == naive:
            return first
        # In a gap: fold=1 reads it with the offset after the jump, so the jump lies between.
        lo, hi = naive.replace(tzinfo=zone, fold=1).astimezone(UTC), first
        before = lo.astimezone(zone).utcoffset()
        while hi - lo > _MICROSECOND:
            mid = lo + (hi - lo) / 2
            if mid.astimezone(zone).utcoffset() == before:
                lo = mid
            else:
                hi = mid
        return hi

    def _wall(self, at: datetime) -> datetime:
        """``at`` on this window's wall clock, naive, to the second, moved past a repeated
        hour when ``at`` is in its second pass (every wall time up to there is behind it)."""
        local = at.astimezone(self.zone)
        naive = local.replace(tzinfo=None, microsecond=0)
        if local.fold:
            shift = local.replace(fold=0).utcoffset() or timedelta()
            naive += shift - (local.utcoffset() or timedelta())
        return naive

    # ---- openings ----------------------------------------------------------------------
    def _cron_at(self, naive: datetime) -> croniter:
        from croniter import croniter  # imported on use: most commands never judge a window

        cron = self._cron if self._cron is not None else croniter(self.schedule, naive)
        cron.set_current(naive, force=True)
        return cron

    def last_start(self, at: datetime) -> datetime | None:
        """The latest opening at or before ``at`` (None when it never opened in the range
        the cron library searches)."""
        from croniter import CroniterError

        try:
            cron = self._cron_at(self._wall(at) + _SECOND)
            for _ in range(MAX_STEPS):
                start = self._to_utc(cron.get_prev(datetime))
                if start <= at:
                    return start
        except CroniterError:
            return None
        return None

    def next_start(self, after: datetime) -> datetime | None:
        """The earliest opening strictly after ``after``."""
        from croniter import CroniterError

        local = after.astimezone(self.zone).replace(tzinfo=None, microsecond=0)
        try:
            cron = self._cron_at(local)
            for _ in range(MAX_STEPS):
                start = self._to_utc(cron.get_next(datetime))
                if start > after:
                    return start
        except CroniterError:
            return None
        return None

    def close_of(self, start: datetime, at: datetime) -> datetime | None:
        """When the opening at ``start`` closes, counting openings that come before it
        closes (back to back, the window stays open). None: still open at ``at`` +
        HORIZON, or after MAX_STEPS openings."""
        end = start + self.duration
        for _ in range(MAX_STEPS):
            if end - at > HORIZON:
                return None
            latest = self.last_start(end)
            if latest is None or latest + self.duration <= end:
                return end
            end = latest + self.duration
        return None

    def open_at(self, at: datetime) -> tuple[datetime, datetime | None] | None:
        """(start, end) of the opening ``at`` falls in (end None: open beyond the
        horizon), or None when the window is closed at ``at``."""
        start = self.last_start(at)
        if start is None or start + self.duration <= at:
            return None
        return start, self.close_of(start, at)


def parse_windows(raw: Any, where: str, *, scope: str = "") -> list[SyncWindow]:
    """``spec.syncWindows`` checked entry by entry; a mistake is InvalidSpec naming it.
    ``scope``: whose windows they are ("" for an app's own, ``project NAME``)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidSpec(f"{where}: syncWindows must be a list of windows")
    return [_parse_window(i, entry, where, scope) for i, entry in enumerate(raw, start=1)]


def _parse_window(index: int, entry: Any, where: str, scope: str = "") -> SyncWindow:
    name = f"{where}: syncWindows[{index - 1}]"
    if not isinstance(entry, dict):
        raise InvalidSpec(f"{name} must be a mapping with kind, schedule and duration")
    kind = str(entry.get("kind") or "")
    if kind not in KINDS:
        raise InvalidSpec(f"{name}: kind {kind!r} is not allow or deny", hint="use allow or deny")
    schedule = " ".join(str(entry.get("schedule") or "").split())
    duration_text = str(entry.get("duration") or "").strip()
    time_zone = str(entry.get("timeZone") or "UTC").strip()
    cron = _check_schedule(name, schedule)
    try:
        duration = parse_duration(duration_text)
    except ValueError as e:
        raise InvalidSpec(f"{name}: {e}", hint="write it as 1h, 30m or 1h30m") from e
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise InvalidSpec(
            f"{name}: time zone {time_zone!r} is unknown",
            hint="use an IANA name such as UTC, Europe/Paris or America/New_York",
        ) from e
    return SyncWindow(
        index=index,
        kind=kind,
        schedule=schedule,
        duration=duration,
        duration_text=duration_text,
        time_zone=time_zone,
        manual_sync=bool(entry.get("manualSync", False)),
        scope=scope,
        _cron=cron,
    )


def _check_schedule(name: str, schedule: str) -> croniter:
    from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

    hint = "five fields: minute hour day-of-month month day-of-week, e.g. '0 22 * * 1-5'"
    if len(schedule.split()) != 5:
        raise InvalidSpec(f"{name}: schedule {schedule!r} is not a five-field cron", hint=hint)
    probe = datetime(2000, 1, 1)
    try:
        cron = croniter(schedule, probe)
        cron.get_next(datetime)
    except CroniterBadDateError as e:
        raise InvalidSpec(f"{name}: schedule {schedule!r} never fires", hint=hint) from e
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as e:
        raise InvalidSpec(f"{name}: schedule {schedule!r} is not valid cron: {e}", hint=hint) from e
    return cron


# ---- the verdict ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    """A window open (or opening next): when it opened or opens, and when it closes (None:
    open beyond the horizon)."""

    window: SyncWindow
    start: datetime
    end: datetime | None

    def until(self) -> str:
        return f"until {iso(self.end)}" if self.end else "with no end in the next 7 days"

    def to_status(self, *, with_start: bool) -> dict[str, Any]:
        row = self.window.spec()
        if with_start:
            row["start"] = iso(self.start)
        if self.end is not None:
            row["end"] = iso(self.end)
        return row


@dataclass(frozen=True)
class Verdict:
    """What the windows say at one instant."""

    at: datetime
    windows: tuple[SyncWindow, ...]
    active: tuple[Opening, ...]
    auto_allowed: bool
    manual_allowed: bool
    next: Opening | None
    """The next window to open (one open now counts once it has closed)."""
    next_change: datetime | None
    """The next instant the set of active windows changes: when to look again."""
    allowed_at: datetime | None = None
    """When automated syncs are next allowed (None while allowed, or not within reach)."""

    @property
    def denying(self) -> list[Opening]:
        return [o for o in self.active if o.window.kind == "deny"]

    def why(self) -> str:
        """Why automated syncs are held ("" when they are not)."""
        if self.auto_allowed:
            return ""
        parts = [f"{o.window.describe()} is active {o.until()}" for o in self.denying]
        for scope in _scopes(self.windows):
            mine = [o for o in self.active if o.window.scope == scope]
            auto, _ = _scope_rules(_of(self.windows, scope), mine)
            if not auto and not any(o.window.kind == "deny" for o in mine):
                allows = ", ".join(w.describe() for w in _of(self.windows, scope, "allow"))
                parts.append(f"no allow window is active ({allows})")
        what = "; ".join(parts)
        if self.allowed_at is not None:
            what += f"; syncs are allowed again at {iso(self.allowed_at)}"
        return what

    def manual_refusal(self) -> str:
        """Why a manual sync is refused now ("" when it may go)."""
        if self.manual_allowed:
            return ""
        closed: list[SyncWindow] = []
        for scope in _scopes(self.windows):
            mine = [o for o in self.active if o.window.scope == scope]
            if _scope_rules(_of(self.windows, scope), mine)[1]:
                continue
            denies = [o.window for o in mine if o.window.kind == "deny"]
            if denies:
                closed += [w for w in denies if not w.manual_sync]
            else:
                closed += [w for w in _of(self.windows, scope, "allow") if not w.manual_sync]
        names = ", ".join(w.describe() for w in closed)
        return f"{self.why()}; manualSync is not set on {names}"

    def to_status(self) -> dict[str, Any] | None:
        """``status.syncWindows`` (None for an app without windows). Only what changes at
        a window's edge is written, so a status is not rewritten between edges."""
        if not self.windows:
            return None
        out: dict[str, Any] = {
            "syncAllowed": self.auto_allowed,
            "manualSyncAllowed": self.manual_allowed,
            "active": [o.to_status(with_start=False) for o in self.active],
            "next": self.next.to_status(with_start=True) if self.next else None,
            "message": self.why() or "automated syncs are allowed",
        }
        # Written as a merge patch: a null removes what an earlier status had.
        out["allowedAt"] = iso(self.allowed_at) if self.allowed_at is not None else None
        return out


def evaluate(windows: list[SyncWindow] | tuple[SyncWindow, ...], at: datetime) -> Verdict:
    """The verdict of ``windows`` at ``at`` (an aware datetime), with the next change."""
    verdict = _verdict_at(tuple(windows), at)
    if verdict.auto_allowed or verdict.next_change is None:
        return verdict
    t: datetime | None = verdict.next_change
    for _ in range(32):  # the edges until automated syncs are allowed, within reason
        if t is None or t - at > HORIZON:
            break
        later = _verdict_at(verdict.windows, t)
        if later.auto_allowed:
            return _with_allowed_at(verdict, t)
        t = later.next_change
    return verdict


def _with_allowed_at(v: Verdict, t: datetime) -> Verdict:
    return Verdict(
        v.at, v.windows, v.active, v.auto_allowed, v.manual_allowed, v.next, v.next_change, t
    )


def _verdict_at(windows: tuple[SyncWindow, ...], at: datetime) -> Verdict:
    active: list[Opening] = []
    upcoming: list[Opening] = []
    for w in windows:
        span = w.open_at(at)
        if span is not None:
            active.append(Opening(w, span[0], span[1]))
            if span[1] is None:
                continue  # open beyond the horizon: no next opening to speak of
        after = span[1] if span is not None and span[1] is not None else at
        start = w.next_start(after)
        if start is not None:
            upcoming.append(Opening(w, start, w.close_of(start, at)))
    auto, manual = _rules(windows, active)
    upcoming.sort(key=lambda o: (o.start, o.window.kind != "deny", o.window.index))
    edges = [o.end for o in active if o.end is not None] + [o.start for o in upcoming]
    return Verdict(
        at=at,
        windows=windows,
        active=tuple(active),
        auto_allowed=auto,
        manual_allowed=manual,
        next=upcoming[0] if upcoming else None,
        next_change=min(edges) if edges else None,
    )


def _scopes(windows: tuple[SyncWindow, ...]) -> list[str]:
    return list(dict.fromkeys(w.scope for w in windows))


def _of(windows: tuple[SyncWindow, ...], scope: str, kind: str = "") -> tuple[SyncWindow, ...]:
    return tuple(w for w in windows if w.scope == scope and (not kind or w.kind == kind))


def _rules(windows: tuple[SyncWindow, ...], active: list[Opening]) -> tuple[bool, bool]:
    """(automated allowed, manual allowed): each scope's windows (the app's, its
    project's) judged apart, as Argo CD judges one set; every scope must allow."""
    auto = manual = True
    for scope in _scopes(windows):
        a, m = _scope_rules(_of(windows, scope), [o for o in active if o.window.scope == scope])
        auto, manual = auto and a, manual and m
    return auto, manual


def _scope_rules(windows: tuple[SyncWindow, ...], active: list[Opening]) -> tuple[bool, bool]:
    """(automated allowed, manual allowed) of one scope's windows, as Argo CD decides them."""
    if not windows:
        return True, True
    deny = [o.window for o in active if o.window.kind == "deny"]
    if deny:
        return False, all(w.manual_sync for w in deny)
    if any(o.window.kind == "allow" for o in active):
        return True, True
    allows = [w for w in windows if w.kind == "allow"]
    if allows:
        return False, all(w.manual_sync for w in allows)
    return True, True


def check_manual_sync(name: str, windows: list[SyncWindow], at: datetime, force: bool) -> str:
    """Raises SyncWindowClosed when the windows refuse a manual sync of app ``name`` now,
    unless ``force``: then returns what was overridden ("" when nothing was)."""
    verdict = evaluate(windows, at)
    why = verdict.manual_refusal()
    if why and not force:
        raise SyncWindowClosed(
            f"sync of {name} refused by its sync windows: {why}",
            hint=f"run 'tether app sync {name} --force-window' to sync anyway, or wait",
        )
    return f"syncing although the sync windows deny it: {why}" if why else ""


# ---- the controller's gate -----------------------------------------------------------------

EDGE_MARGIN = 0.5
"""Seconds past a window's edge at which the controller looks again (a timer may fire a
little early; looking just after the edge sees the new state)."""


@dataclass(frozen=True)
class Gate:
    """What the windows mean for one reconcile: a held sync (its condition's reason and
    message) and when to reconcile again (seconds from now; None: no edge in reach)."""

    reason: str = ""
    message: str = ""
    recheck_in: float | None = None

    @property
    def held(self) -> bool:
        return bool(self.reason)


def gate(windows: list[SyncWindow], name: str, trigger: str, revision: str, at: datetime) -> Gate:
    """Holds an automated sync or self-heal (``trigger``; "" when none was due) of app
    ``name`` that the windows deny at ``at``; says when their verdict next changes."""
    if not windows:
        return Gate()
    verdict = evaluate(windows, at)
    recheck = None
    if verdict.next_change is not None:
        recheck = max((verdict.next_change - at).total_seconds(), 0.0) + EDGE_MARGIN
    if not trigger or verdict.auto_allowed:
        return Gate(recheck_in=recheck)
    what = "self-heal" if trigger == "self-heal" else f"automated sync to {revision[:10]}"
    reason = "DenyWindowActive" if verdict.denying else "OutsideAllowWindows"
    return Gate(
        reason=reason,
        message=f"{what} held by the sync windows: {verdict.why()}. It runs when they allow "
        f"it; to sync now, run 'tether app sync {name} --force-window'",
        recheck_in=recheck,
    )
