"""``blame``: the stages put together for one object of one app.

The app is rendered at the revision each source was synced to; then, for each Git source in
turn, at each first-parent commit of its history (``--depth``) with the other sources held
at their synced revisions. ``attribute`` names, per source, the commit that last changed each
field; with several sources the newest such commit wins. The live object (when there is one)
adds who wrote a value that differs from Git.
"""

from __future__ import annotations

from typing import Any

from tether.api.application import Application
from tether.blame.attribute import Attribution, Step, attribute
from tether.blame.fields import flatten, live_fields, shown_value
from tether.blame.history import Commit, first_parents, synced_revisions
from tether.blame.live import field_owners, live_writer, writers_of
from tether.blame.renders import AppRenderer
from tether.blame.report import ABSENT_TEXT, BlameReport, FieldBlame, LiveValue, Skipped
from tether.blame.target import Target, find_key
from tether.desired import DesiredSource
from tether.diff.merge_keys import Shape, shape_of
from tether.kube import KubeClient
from tether.kube.client import FIELD_MANAGER
from tether.model import Manifest, Obj, ResourceKey
from tether.source.credentials import redact

_ABSENT = object()


async def blame(
    kube: KubeClient,
    desired: DesiredSource,
    app: Application,
    target: Target,
    depth: int,
    *,
    render_cache: bool = True,
) -> BlameReport:
    """What ``tether blame`` prints. ``render_cache=False`` renders every commit (for the
    benchmark that shows what the cache saves)."""
    size = depth * max(len(app.sources), 1) + 8 if render_cache else 0
    renderer = AppRenderer(desired, app, cache_size=size)
    synced = await renderer.resolve(synced_revisions(app))
    current = await renderer.objects(synced)
    key = find_key(target, current, f"{app.namespace}/{app.name}")
    obj = current[key].obj
    live = await kube.get(str(obj.get("apiVersion", "")), key.kind, key.name, key.namespace)
    shape = shape_of(live)
    fields = flatten(obj, shape)
    report = BlameReport(
        app=f"{app.namespace}/{app.name}",
        object={**key.to_dict(), "apiVersion": str(obj.get("apiVersion", ""))},
        sources=[],
        depth=depth,
        live=live is not None,
    )
    per_source = await _walk_sources(renderer, desired, key, fields, shape, report)
    report.renders, report.reused = renderer.renders, renderer.reused
    owners = field_owners(live) if live is not None else {}
    live_values = live_fields(live, obj, shape) if live is not None else {}
    for path, value in fields.items():
        source, commit, at_or_before = _choose(per_source, path)
        row = FieldBlame(path, shown_value(obj, path, value), source, commit, at_or_before)
        if live is not None:
            row.live = _live(obj, path, value, live_values, owners)
        report.fields.append(row)
    return report


async def _walk_sources(
    renderer: AppRenderer,
    desired: DesiredSource,
    key: ResourceKey,
    fields: dict[str, Any],
    shape: Shape | None,
    report: BlameReport,
) -> list[tuple[int, list[Commit], dict[str, Attribution]]]:
    """Per Git source: its commits and, per field, the one that last changed it. Fills in
    ``report.sources``."""
    out: list[tuple[int, list[Commit], dict[str, Attribution]]] = []
    for i, r in enumerate(renderer.synced):
        entry: dict[str, Any] = {
            "repoURL": redact(r.source.repo_url),
            "path": r.source.chart or r.source.path,
            "revision": r.revision,
        }
        report.sources.append(entry)
        if r.checkout is None:
            continue  # a chart from a Helm repository: a version, no history to walk
        commits, complete = first_parents(desired.git, r.source.repo_url, r.revision, report.depth)
        entry["history"] = len(commits)
        entry["branchStartReached"] = complete
        steps = await _walk(renderer, i, commits, key, fields, shape, report)
        out.append((i, commits, attribute(steps, complete=complete)))
    return out


async def _walk(
    renderer: AppRenderer,
    index: int,
    commits: list[Commit],
    key: ResourceKey,
    fields: dict[str, Any],
    shape: Shape | None,
    report: BlameReport,
) -> list[Step]:
    """The object's fields at each commit of source ``index``'s history (newest first)."""
    steps = [Step(0, fields)]
    seen: dict[int, dict[str, Any]] = {}
    for j, c in enumerate(commits[1:], start=1):
        objects, why = await renderer.try_objects(renderer.moved(index, c.sha))
        if objects is None:
            report.skipped.append(Skipped(index, c.sha, why))
            steps.append(Step(j, None))
            continue
        m: Manifest | None = objects.get(key)
        if m is None:
            steps.append(Step(j, {}))
            continue
        # The render cache hands back the same objects for equal inputs: flatten them once.
        known = seen.get(id(m.obj))
        if known is None:
            known = seen[id(m.obj)] = flatten(m.obj, shape)
        steps.append(Step(j, known))
    return steps


def _choose(
    per_source: list[tuple[int, list[Commit], dict[str, Attribution]]], path: str
) -> tuple[int, Commit, bool]:
    """The source and commit that last changed ``path``: the newest change seen among the
    sources; when no source's history shows a change, the first Git source's oldest commit
    (the branch's start, or "at or before" when the depth was reached)."""
    best: tuple[int, Commit, bool] | None = None
    fallback: tuple[int, Commit, bool] | None = None
    for i, commits, found in per_source:
        a = found.get(path)
        if a is None:
            continue
        pick = (i, commits[a.commit], a.at_or_before)
        if a.origin:
            fallback = fallback or pick
        elif best is None or pick[1].date > best[1].date:
            best = pick
    chosen = best or fallback
    if chosen is None:  # no Git source: nothing to walk
        return 0, Commit("", "", "", "no Git history (chart from a Helm repository)"), True
    return chosen


def _live(
    obj: Obj,
    path: str,
    value: Any,
    live_values: dict[str, Any],
    owners: dict[str, Any],
) -> LiveValue | None:
    """The live value and its writer when it differs from Git. The writer is unknown when
    managedFields name none but tether: Kubernetes before 1.22 records no owner for a write
    through the scale subresource (``kubectl scale``), so tether's apply stays on record."""
    have = live_values.get(path, _ABSENT)
    if have == value:
        return None
    writer = live_writer(writers_of(owners, path))
    if writer is not None and writer.manager == FIELD_MANAGER:
        writer = None
    shown = ABSENT_TEXT if have is _ABSENT else shown_value(obj, path, have)
    return LiveValue(shown, writer)
