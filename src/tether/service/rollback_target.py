"""A rollback's target and refusals: which paths an app reads, which branch it tracks, which
deployed revision ``--steps`` or a history ID names, and the reasons a rollback is refused
(pinned, not a branch, a chart without Git). Pure functions over the Application and a tree
view; ``tether.service.rollback`` does the I/O."""

from __future__ import annotations

from typing import Any

import pygit2

from tether.api.application import Application
from tether.api.source import Source
from tether.render.helm import ref_inputs
from tether.render.registry import detect, renderer_for, repo_path
from tether.service.rollback_plan import Refused
from tether.source.credentials import redact
from tether.source.view import GitTreeView
from tether.status import has_several_sources


def app_paths(app: Application, members: list[tuple[int, Source]], view: GitTreeView) -> list[str]:
    """The repository paths the app's sources in this repository read at ``view``: each
    rendering source's inputs (its path when they cannot be known), and the ``$ref`` value
    files any source of the app reads from a ``ref`` source here."""
    out: list[str] = []
    for _, s in members:
        if s.renders and not s.is_helm_repository:
            path = repo_path(s.path)
            found = renderer_for(detect(view, s, path)).inputs(view, s, path)
            out += [path] if found is None else found
        if s.ref:
            for other in app.sources:
                out += ref_inputs(other).get(s.ref, [])
    return sorted(set(out))


def same_commit(given: str, sha: str) -> bool:
    """``given`` (a full SHA, or at least 7 hex digits of one) names ``sha``."""
    given = given.strip().lower()
    return given == sha or (len(given) >= 7 and sha.startswith(given))


def resolve_suffix(repo: Any, sha: str, suffix: str, url: str) -> str:
    try:
        return str(repo.revparse_single(sha + suffix).peel(pygit2.Commit).id)
    except (KeyError, ValueError, pygit2.GitError) as e:
        raise Refused(
            f"{sha[:10]}{suffix} names no commit in {redact(url)}",
            hint="the history may be shallower than that; pass a commit SHA with --to",
        ) from e


def tracked_branch(app: Application, s: Source, heads: dict[str, str], default: str) -> str:
    rev = s.target_revision.strip()
    if rev in ("", "HEAD"):
        if default in heads:
            return default
        raise Refused(
            f"{redact(s.repo_url)} has no default branch to write to",
            hint="set the source's targetRevision to a branch",
        )
    name = rev.removeprefix("refs/heads/")
    if name in heads:
        return name
    raise Refused(
        f"{app.namespace}/{app.name} tracks {rev!r} of {redact(s.repo_url)}, which is not a "
        "branch: a rollback writes a commit on the tracked branch",
        hint=f"point targetRevision at an older tag or commit instead, or hold the app "
        f"with 'tether app pin {app.name} REVISION'",
    )


def refuse_pinned(app: Application) -> None:
    pin = (app.obj.get("spec") or {}).get("pin")
    if pin:
        by = pin.get("by") if isinstance(pin, dict) else ""
        raise Refused(
            f"{app.namespace}/{app.name} is pinned"
            + (f" by {by}" if by else "")
            + ": a rollback would not be deployed while the pin holds",
            hint=f"unpin it first with 'tether app unpin {app.name}', then roll back",
        )


def chart_notice(app: Application, s: Source) -> str:
    return (
        f"chart {s.chart} from {redact(s.repo_url)} is not in Git: its version "
        f"({s.target_revision}) lives in the Application; to change it, edit "
        f"spec.source(s).targetRevision, or hold the app with 'tether app pin {app.name}'"
    )


def refuse_chart_only(app: Application, charts: list[Source]) -> Refused:
    versions = ", ".join(f"{s.chart} {s.target_revision}" for s in charts)
    return Refused(
        f"{app.namespace}/{app.name} has no Git source to write: its chart ({versions}) comes "
        "from a Helm repository, and its version lives in the Application's targetRevision",
        hint=f"set targetRevision to the version to go back to (kubectl edit application "
        f"{app.name}), or hold it now with 'tether app pin {app.name} VERSION'",
    )


def synced_revision(app: Application, index: int) -> str:
    """The revision the status shows as synced for source ``index``."""
    sync = app.status.get("sync") or {}
    if has_several_sources(app):
        revisions = sync.get("revisions") or []
        return str(revisions[index]) if index < len(revisions) else ""
    return str(sync.get("revision") or "") if index == 0 else ""


def entry_revisions(app: Application, entry: dict[str, Any]) -> list[str]:
    """Per source, the revision a history entry deployed."""
    if entry.get("revisions"):
        return [str(r) for r in entry["revisions"]]
    return [str(entry.get("revision") or "")]


def history_entry(app: Application, ident: int) -> dict[str, Any]:
    history = app.status.get("history") or []
    for entry in history:
        if entry.get("id") == ident:
            return dict(entry)
    ids = ", ".join(str(e.get("id")) for e in history) or "none"
    raise Refused(
        f"{app.namespace}/{app.name} has no history entry {ident} (status keeps: {ids})",
        hint=f"see 'tether app history {app.name}' and pass the commit with --to SHA",
    )


def steps_back(app: Application, steps: int) -> dict[str, Any]:
    """The ``steps``-th previous distinct revision that deployed successfully, counting
    back from the one the status shows as synced."""
    if steps < 1:
        raise Refused(f"--steps {steps}: must be 1 or more", hint="use --steps 1 for the last one")
    sync = app.status.get("sync") or {}
    current = tuple(sync.get("revisions") or [sync.get("revision") or ""])
    seen = [current]
    for entry in app.status.get("history") or []:
        key = tuple(entry_revisions(app, entry))
        if entry.get("result", "Succeeded") != "Succeeded" or key in seen:
            continue
        seen.append(key)
        if len(seen) - 1 == steps:
            return dict(entry)
    raise Refused(
        f"{app.namespace}/{app.name} has {len(seen) - 1} earlier deployed revision(s) in its "
        f"status history; --steps {steps} goes further back",
        hint=f"see 'tether app history {app.name}' and pass the commit with --to SHA",
    )
