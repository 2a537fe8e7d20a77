"""What ``tether app pin REVISION`` holds an app at, and refusing a sync that would leave a pin."""

from __future__ import annotations

import dataclasses
from typing import Any

from tether.api.application import Application
from tether.api.source import Source
from tether.engine import Engine
from tether.errors import TetherError
from tether.pin.message import short

HISTORY_ID_MAX_DIGITS = 6
"""A REVISION of at most this many digits is a history ID (a commit is named by 7 or more)."""


class PinnedError(TetherError):
    """A sync to another revision was asked of a pinned app."""

    reason = "Pinned"


async def resolve_pin(
    engine: Engine, app: Application, revision: str, source: int | None = None
) -> list[str]:
    """The revisions ``spec.pin`` will hold, one per source in spec order.

    ``revision`` is a history ID (every source at the revisions of that deployment), or a
    branch, tag or commit (a chart version for a Helm repository source) for the app's
    one source, or for source number ``source`` (1-based) when it has several; the other
    sources then stay at the revisions they are synced at now."""
    where = f"Application {app.namespace}/{app.name}"
    entry = history_entry(app, revision)
    if entry is not None:
        return await _from_history(engine, app, entry)
    n = len(app.sources)
    if source is None and n > 1:
        raise TetherError(
            f"{where} has {n} sources: which one is {revision!r} for?",
            hint=f"say --source N (1 to {n}; the others stay at their synced revisions), "
            "or give a history ID to pin every source at a past deployment",
        )
    index = (source or 1) - 1
    if not 0 <= index < n:
        raise TetherError(f"{where} has no source {source}", hint=f"sources are numbered 1 to {n}")
    synced = _synced_revisions(app)
    out: list[str] = []
    for i, s in enumerate(app.sources):
        if i == index:
            out.append(await resolve_one(engine, app, s, revision))
        elif i < len(synced) and synced[i]:
            out.append(synced[i])
        else:
            raise TetherError(
                f"{where}: source {i + 1} has never been synced, so there is no revision "
                "to keep it at",
                hint="sync the app first, or give a history ID",
            )
    return out


async def resolve_one(engine: Engine, app: Application, s: Source, revision: str) -> str:
    """``revision`` in source ``s``: the full commit SHA (Git), or the exact chart version."""
    if s.is_helm_repository:
        from tether.source.helm_repo import resolve_chart

        creds = await engine.credentials_for(app, s.repo_url, chart=True)
        asked = dataclasses.replace(s, target_revision=revision)
        return await resolve_chart(asked, creds, engine.desired.runner)
    creds = await engine.credentials_for(app, s.repo_url)
    commit = await engine.git.resolve(s.repo_url, revision, creds)
    await engine.git.fetch(s.repo_url, creds, commit)
    return commit


async def refuse_unpinned_revision(engine: Engine, app: Application, revision: str) -> None:
    """Raises ``PinnedError`` when ``app`` is pinned and ``revision`` (a sync's
    ``--revision``) names anything but the pinned revision of the source it applies to."""
    pin = app.pin
    if pin is None or not revision:
        return
    index = next(i for i, s in enumerate(app.sources) if s is app.source)
    want = pin.revisions[index]
    got = await resolve_one(engine, app, app.source, revision)
    if got == want:
        return
    why = f": {pin.reason}" if pin.reason else ""
    raise PinnedError(
        f"Application {app.namespace}/{app.name} is pinned at {short(want)} by "
        f"{pin.by or 'unknown'} at {pin.at or '?'}{why}; a sync to {revision} "
        f"({short(got)}) would leave the pin",
        hint=f"unpin first with 'tether app unpin {app.name}', or sync without --revision "
        "to deploy the pinned revision",
    )


def history_entry(app: Application, revision: str) -> dict[str, Any] | None:
    """The ``status.history`` entry ``revision`` names when it is a history ID (a number of
    at most HISTORY_ID_MAX_DIGITS digits); None when it names a commit or a version.
    Raises TetherError for an ID the status does not hold."""
    text = revision.strip()
    if not text.isdigit() or len(text) > HISTORY_ID_MAX_DIGITS:
        return None
    history = app.status.get("history") or []
    for entry in history:
        if str(entry.get("id")) == text:
            return dict(entry)
    known = ", ".join(str(e.get("id")) for e in history) or "none"
    raise TetherError(
        f"history ID {text} is not in the status of Application {app.namespace}/{app.name} "
        f"(IDs there: {known})",
        hint=f"see 'tether app history {app.name}', or give a commit SHA, branch or tag",
    )


async def _from_history(engine: Engine, app: Application, entry: dict[str, Any]) -> list[str]:
    revs = [str(r) for r in entry.get("revisions") or []] or [str(entry.get("revision") or "")]
    if len(revs) != len(app.sources) or not all(revs):
        raise TetherError(
            f"history ID {entry.get('id')} of Application {app.namespace}/{app.name} holds "
            f"{len(revs)} revision(s) and the app has {len(app.sources)} source(s) now",
            hint="pin a commit with --source N instead",
        )
    # Checked (and fetched) again: a commit that left the repository is refused now, not
    # at the next reconcile.
    return [await resolve_one(engine, app, s, revs[i]) for i, s in enumerate(app.sources)]


def _synced_revisions(app: Application) -> list[str]:
    sync = app.status.get("sync") or {}
    revs = [str(r) for r in sync.get("revisions") or []]
    if revs:
        return revs
    return [str(sync.get("revision") or "")] if len(app.sources) == 1 else []
