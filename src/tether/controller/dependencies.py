"""Application dependencies (``spec.dependsOn``): the graph between Applications, its
cycles, whether an app may sync now and, when not, which dependency it waits for and why.

An app syncs only when each of its dependencies exists and is Synced and Healthy at its
current spec (``status.observedGeneration`` caught up, no sync running) and, where the two
follow the same branch of the same repository, at the commit the app is about to sync. A
cycle (a self-dependency too) is an ``InvalidSpec`` condition on every app in it, and none
of them syncs. The logic reads Application objects as plain dicts (the controller's watch
cache, or objects fetched by the CLI): a dependency may be invalid, or missing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from tether.api.application import API_VERSION, KIND, Application
from tether.api.depends_on import DependencyRef, depends_on_of
from tether.compare import Comparison
from tether.controller.sources import repo_key, source_refs
from tether.deletion import being_deleted
from tether.errors import InvalidSpec, TetherError
from tether.kube import KubeClient
from tether.model import Obj
from tether.status import Condition, has_several_sources, source_revisions

log = logging.getLogger("tether.controller")

AppKey = tuple[str, str]
Lookup = Callable[[AppKey], Obj | None]

NOT_READY = "DependencyNotReady"
MAX_WALK = 1000
"""Applications visited at most when the CLI walks the graph by GETs."""


class DependencyNotReady(TetherError):
    """A sync refused because a dependency is not Synced and Healthy yet."""

    reason = NOT_READY


# ---- the graph ------------------------------------------------------------------------------


def find_cycle(start: AppKey, edges: Callable[[AppKey], Sequence[AppKey]]) -> list[AppKey] | None:
    """A path ``start -> ... -> start`` along ``edges`` when ``start`` is on a cycle, else
    None. Depth first, in spec order, so the same graph always prints the same cycle."""
    path: list[AppKey] = [start]
    pending: list[list[AppKey]] = [list(edges(start))]
    seen: set[AppKey] = {start}
    while pending:
        if not pending[-1]:
            pending.pop()
            path.pop()
            continue
        nxt = pending[-1].pop(0)
        if nxt == start:
            return [*path, start]
        if nxt in seen:
            continue  # explored already: no way back to start through it
        seen.add(nxt)
        path.append(nxt)
        pending.append(list(edges(nxt)))
    return None


def cycle_text(cycle: Sequence[AppKey], namespace: str) -> str:
    """``a -> b -> a``; names in another namespace than ``namespace`` as ``ns/name``."""
    return " -> ".join(DependencyRef(ns, name).shown_from(namespace) for ns, name in cycle)


def edges_in(lookup: Lookup) -> Callable[[AppKey], list[AppKey]]:
    """The dependencies of each app ``lookup`` finds (none for one it does not)."""

    def edges(key: AppKey) -> list[AppKey]:
        obj = lookup(key)
        return [d.key for d in depends_on_of(obj)] if obj is not None else []

    return edges


# ---- one dependency's readiness ---------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    """A source's repository and the branch (or tag, or chart range) it follows, with the
    revision an app compared or is about to sync there."""

    repo: str
    target: str
    revision: str


def pins_of_status(obj: Obj) -> list[Pin]:
    """What a dependency's status says it was last compared at, per source."""
    st = (obj.get("status") or {}).get("sync") or {}
    refs = source_refs(obj)
    revisions = [str(r) for r in st.get("revisions") or []]
    if len(refs) == 1 and not revisions:
        revisions = [str(st.get("revision") or "")]
    return [
        Pin(repo_key(r.repo_url) or r.repo_url, r.target_revision, rev)
        for r, rev in zip(refs, revisions, strict=False)
        if rev
    ]


def pins_of_comparison(app: Application, cmp: Comparison) -> list[Pin]:
    """What the app is about to sync, per source."""
    revisions = source_revisions(cmp) if has_several_sources(app) else [cmp.revision]
    refs = source_refs(app.obj)
    return [
        Pin(repo_key(r.repo_url) or r.repo_url, r.target_revision, rev)
        for r, rev in zip(refs, revisions, strict=False)
        if rev
    ]


def behind(dep: Obj, wanted: Sequence[Pin]) -> str:
    """ "at X, not yet at Y" when the dependency follows a branch this app follows too and
    was last compared at another commit of it; "" otherwise."""
    have = {(p.repo, p.target): p.revision for p in pins_of_status(dep)}
    for p in wanted:
        rev = have.get((p.repo, p.target))
        if rev is not None and rev != p.revision:
            return f"at {rev[:10]}, not yet at {p.revision[:10]}"
    return ""


def state_of(dep: Obj | None, wanted: Sequence[Pin] = ()) -> str:
    """Why the dependency ``dep`` is not ready, in a few words; "" when it is ready."""
    if dep is None:
        return "not found"
    if being_deleted(dep):
        return "being deleted"
    meta = dep.get("metadata") or {}
    st = dep.get("status") or {}
    if not st:
        return "not compared yet"
    sync = str((st.get("sync") or {}).get("status") or "Unknown")
    health = str((st.get("health") or {}).get("status") or "Unknown")
    if int(st.get("observedGeneration") or 0) != int(meta.get("generation") or 0):
        return f"sync {sync}, health {health}; its spec changed and was not compared since"
    if (st.get("operationState") or {}).get("phase") == "Running":
        return f"sync {sync}, health {health}; a sync is running"
    if sync != "Synced" or health != "Healthy":
        return f"sync {sync}, health {health}"
    late = behind(dep, wanted)
    return f"Synced and Healthy {late}" if late else ""


# ---- the verdict on one app ------------------------------------------------------------------


@dataclass
class Verdict:
    """May ``app`` sync now? A cycle it is on, and the dependencies it waits for."""

    namespace: str
    cycle: list[AppKey] | None = None
    waiting: list[tuple[DependencyRef, str]] = field(default_factory=list)

    @property
    def may_sync(self) -> bool:
        return self.cycle is None and not self.waiting

    def cycle_message(self) -> str:
        assert self.cycle is not None
        return (
            f"spec.dependsOn forms a cycle: {cycle_text(self.cycle, self.namespace)}; no "
            "Application in it syncs until one of these dependencies is removed"
        )

    def waiting_message(self) -> str:
        parts = [f"{d.shown_from(self.namespace)} ({why})" for d, why in self.waiting]
        noun = "dependency" if len(parts) == 1 else f"{len(parts)} dependencies"
        return (
            f"waiting for {noun} {', '.join(parts)}: this app syncs once every dependency "
            "is Synced and Healthy"
        )

    def conditions(self) -> list[Condition]:
        if self.cycle is not None:
            return [Condition("InvalidSpec", self.cycle_message())]
        if self.waiting:
            return [Condition(NOT_READY, self.waiting_message())]
        return []

    def error(self) -> TetherError | None:
        """The refusal of a manual sync, as an error a person can act on."""
        if self.cycle is not None:
            return InvalidSpec(
                self.cycle_message(), hint="edit spec.dependsOn of one of these Applications"
            )
        if self.waiting:
            first = self.waiting[0][0].shown_from(self.namespace)
            return DependencyNotReady(
                self.waiting_message(),
                hint=f"sync {first} first or wait for it; --ignore-dependencies syncs anyway",
            )
        return None


def judge(
    app: Application,
    lookup: Lookup,
    wanted: Sequence[Pin] = (),
    not_found: Callable[[DependencyRef], str] | None = None,
) -> Verdict:
    """The verdict on ``app``, its dependencies read through ``lookup``. ``wanted`` are the
    revisions it is about to sync; ``not_found`` words a dependency ``lookup`` misses."""
    verdict = Verdict(app.namespace)
    if not app.depends_on:
        return verdict
    verdict.cycle = find_cycle((app.namespace, app.name), edges_in(lookup))
    for dep in app.depends_on:
        obj = lookup(dep.key)
        why = state_of(obj, wanted)
        if obj is None and not_found is not None:
            why = not_found(dep)
        if why:
            verdict.waiting.append((dep, why))
    return verdict


# ---- the controller's side -------------------------------------------------------------------


class DependencyGate:
    """Holds back the controller's syncs of apps whose dependencies are not ready, and
    names the apps to reconcile again when a dependency changes, so a waiting app goes as
    soon as its dependencies are ready rather than at its next poll."""

    def __init__(self, apps: Mapping[AppKey, Obj], watched: Sequence[str]) -> None:
        self.apps = apps
        """The controller's Applications, as the watch last delivered them."""
        self.watched = list(watched)
        self._marks: dict[AppKey, tuple[object, ...]] = {}
        self._said: dict[AppKey, str] = {}
        self._deps_of: dict[AppKey, frozenset[AppKey]] | None = None
        self._dependents: dict[AppKey, set[AppKey]] = {}
        """Reverse index of ``dependsOn``: app → the apps that name it (no walk of every
        app on each change: that made a start-up of N apps cost N² steps)."""

    def changed(self, key: AppKey, obj: Obj | None) -> list[AppKey]:
        """The apps that depend on ``key``, when what they judge it by changed (its sync,
        health, revision, generation, dependencies, or its existence: ``obj`` None).
        Every change of every app passes here, which keeps the reverse index current."""
        self._index(key, obj)
        if obj is None:
            self._marks.pop(key, None)
            self._said.pop(key, None)
        else:
            mark = _mark(obj)
            if self._marks.get(key) == mark:
                return []
            self._marks[key] = mark
        return sorted(k for k in self._dependents.get(key, ()) if k in self.apps)

    def _index(self, key: AppKey, obj: Obj | None) -> None:
        if self._deps_of is None:  # first change: index the apps known so far
            self._deps_of = {}
            for k, o in list(self.apps.items()):
                self._set_deps(k, frozenset(d.key for d in depends_on_of(o)))
        deps = frozenset(d.key for d in depends_on_of(obj)) if obj is not None else frozenset()
        self._set_deps(key, deps)

    def _set_deps(self, key: AppKey, deps: frozenset[AppKey]) -> None:
        assert self._deps_of is not None
        old = self._deps_of.get(key, frozenset())
        if old == deps:
            return
        for d in old - deps:
            users = self._dependents.get(d)
            if users is not None:
                users.discard(key)
                if not users:
                    del self._dependents[d]
        for d in deps - old:
            self._dependents.setdefault(d, set()).add(key)
        if deps:
            self._deps_of[key] = deps
        else:
            self._deps_of.pop(key, None)

    def hold(self, app: Application, cmp: Comparison, *, wants_sync: bool) -> bool:
        """Adds the app's dependency conditions to ``cmp``: a cycle always, the dependencies
        it waits for when it ``wants_sync``. True when that sync must not run now."""
        if not app.depends_on:
            self._say(app, "")
            return False
        wanted = pins_of_comparison(app, cmp) if cmp.error is None else []
        verdict = judge(app, self.apps.get, wanted, self._not_found)
        conditions = verdict.conditions() if wants_sync or verdict.cycle else []
        cmp.conditions.extend(conditions)
        self._say(app, conditions[0].message if conditions else "")
        return not verdict.may_sync

    def _not_found(self, dep: DependencyRef) -> str:
        if self.watched and dep.namespace not in self.watched:
            return f"not found: the controller watches only {', '.join(self.watched)}"
        return "not found"

    def _say(self, app: Application, message: str) -> None:
        """Logs a new reason to hold the app back, once."""
        key = (app.namespace, app.name)
        if self._said.get(key, "") == message:
            return
        self._said[key] = message
        if message:
            log.info(
                "%s/%s not synced: %s",
                app.namespace,
                app.name,
                message,
                extra={"app": f"{app.namespace}/{app.name}"},
            )


def _mark(obj: Obj) -> tuple[object, ...]:
    """What dependents judge an app by, as one comparable value."""
    meta = obj.get("metadata") or {}
    st = obj.get("status") or {}
    sync = st.get("sync") or {}
    return (
        meta.get("generation"),
        st.get("observedGeneration"),
        sync.get("status"),
        sync.get("revision"),
        tuple(sync.get("revisions") or ()),
        (st.get("health") or {}).get("status"),
        (st.get("operationState") or {}).get("phase"),
        being_deleted(obj),
        tuple(depends_on_of(obj)),
        # A cycle cleared on one app clears, one wake-up at a time, on the others of it.
        tuple(sorted(str(c.get("type")) for c in st.get("conditions") or [])),
    )


# ---- the manual sync run by the CLI ----------------------------------------------------------


async def refuse_unready(kube: KubeClient, app: Application, *, ignore_readiness: bool) -> None:
    """Raises when ``app`` must not sync now: a cycle through it (always), or a dependency
    that is not Synced and Healthy (unless ``ignore_readiness``). Reads the graph from the
    API server, one GET per Application."""
    if not app.depends_on:
        return
    seen: dict[AppKey, Obj | None] = {(app.namespace, app.name): app.obj}
    todo = [d.key for d in app.depends_on]
    while todo and len(seen) < MAX_WALK:
        key = todo.pop()
        if key in seen:
            continue
        obj = seen[key] = await kube.get(API_VERSION, KIND, key[1], key[0])
        if obj is not None:
            todo.extend(d.key for d in depends_on_of(obj))
    verdict = judge(app, seen.get)
    if ignore_readiness:
        verdict.waiting.clear()
    error = verdict.error()
    if error is not None:
        raise error
