"""``tether app clone``: reproduce an Application at one commit in another namespace.

The clone is a new Application with the original's spec (sources, render parameters, sync
options, ignoreDifferences) pinned to exact revisions and pointed at another namespace (see
``tether.service.clone_spec``). Before anything is written, the app is rendered at those
revisions for the new namespace; an object that is cluster-scoped or names another namespace
would touch what the original owns, so the clone is refused, naming each. Then the clone is
created and synced through ``ApplicationService.sync`` (the controller runs it when one runs).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from tether.api.application import API_VERSION, KIND, Application
from tether.api.source import TYPE_HELM, Source
from tether.engine import Engine
from tether.model import Manifest, Obj, ResourceKey
from tether.service.applications import ApplicationService, Progress, who_asks
from tether.service.clone_spec import (
    CLONED_FROM_LABEL,
    CloneRefused,
    build_clone,
    check_existing,
    check_request,
    history_revisions,
    misplaced,
    refuse_misplaced,
    source_dicts,
    synced_revisions,
)
from tether.service.results import SyncOutcome, SyncRequest
from tether.status import now
from tether.sync.tracking import other_owner


@dataclass
class CloneRequest:
    name: str
    """The original Application."""
    namespace: str
    """Where the Applications live (the clone lives beside the original)."""
    new_name: str
    dest_namespace: str
    revision: str = ""
    """A branch, tag or commit for the first Git source (the others take what the
    original's status shows as synced), or a history ID giving every source's revision;
    "" means what the original has synced now."""
    create_namespace: bool = False


@dataclass
class ClonePlan:
    app: Obj
    """The clone's Application, as it is (or would be) written."""
    revisions: list[str]
    objects: list[ResourceKey]
    """What the clone deploys (hooks not included)."""
    notes: list[str] = field(default_factory=list)
    replaces: bool = False
    """An earlier clone of the same original into the same namespace is brought to it."""


@dataclass
class CloneOutcome:
    plan: ClonePlan
    sync: SyncOutcome | None = None
    """None with ``sync=False``."""


class Cloner:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.kube = engine.kube

    async def plan(self, req: CloneRequest) -> ClonePlan:
        """Everything checked and rendered; nothing written. Raises CloneRefused."""
        original = await self.engine.get_app(req.name, req.namespace)
        check_request(original.obj, req.new_name, req.dest_namespace)
        existing = await self.kube.get(API_VERSION, KIND, req.new_name, req.namespace)
        check_existing(existing, req.name, req.dest_namespace)
        revisions, notes = await self._revisions(original, req.revision)
        # The original at those revisions: which sources Helm renders, to keep their
        # release name (it defaults to the Application's name, which the clone changes).
        at_revisions = Application.from_obj(_pinned(original.obj, revisions))
        rendered = await self.engine.desired.fetch_desired(at_revisions)
        release_names = [
            _release_name(original, s) if r.type == TYPE_HELM else ""
            for s, r in zip(original.sources, rendered.source_revisions, strict=True)
        ]
        spec = build_clone(
            original.obj,
            req.new_name,
            req.dest_namespace,
            revisions,
            release_names,
            create_namespace=req.create_namespace,
            user=who_asks(),
            at=now(),
        )
        clone = Application.from_obj(spec.obj)
        desired = await self.engine.desired.fetch_desired(clone)
        found = misplaced([*desired.manifests, *desired.hooks], req.dest_namespace)
        refuse_misplaced(req.name, req.new_name, req.dest_namespace, found)
        await self._refuse_missing_namespace(clone, req)
        await self._refuse_taken(clone, desired.manifests)
        return ClonePlan(
            app=spec.obj,
            revisions=revisions,
            objects=[m.key for m in desired.manifests],
            notes=notes + spec.notes,
            replaces=existing is not None,
        )

    async def clone(
        self,
        req: CloneRequest,
        *,
        sync: bool = True,
        timeout: float = 120.0,
        progress: Progress | None = None,
    ) -> CloneOutcome:
        """Plans, writes the clone, and (with ``sync``) syncs it."""
        say = progress or (lambda _line: None)
        plan = await self.plan(req)
        say(f"{'updating' if plan.replaces else 'creating'} Application {req.new_name}")
        plan.app = await self._write(plan)
        if not sync:
            return CloneOutcome(plan)
        outcome = await ApplicationService(self.engine).sync(
            SyncRequest(req.new_name, req.namespace, prune=True),
            timeout=timeout,
            progress=say,
        )
        return CloneOutcome(plan, outcome)

    async def _revisions(self, app: Application, revision: str) -> tuple[list[str], list[str]]:
        """The revision of every source, resolved now (a Git commit as its full sha)."""
        notes: list[str] = []
        from_history = history_revisions(app.obj, revision)
        if from_history is not None:
            if len(from_history) != len(app.sources):
                raise CloneRefused(
                    f"history entry {revision} of {app.namespace}/{app.name} names "
                    f"{len(from_history)} revision(s) for {len(app.sources)} source(s)",
                    hint="give a commit with --revision instead",
                )
            given = [
                await self._resolve(app, s, r)
                for s, r in zip(app.sources, from_history, strict=True)
            ]
            return given, [f"revisions of history entry {revision}"]
        synced = synced_revisions(app.obj)
        first = next((i for i, s in enumerate(app.sources) if not s.is_helm_repository), 0)
        out: list[str] = []
        for i, s in enumerate(app.sources):
            if i == first and revision:
                out.append(await self._resolve(app, s, revision))
            elif i < len(synced) and synced[i]:
                out.append(await self._resolve(app, s, synced[i]))
            else:
                out.append(await self._resolve(app, s, s.target_revision))
                notes.append(
                    f"source {i + 1} was never synced: taken at its targetRevision "
                    f"{s.target_revision} as it is now"
                )
        return out, notes

    async def _resolve(self, app: Application, s: Source, revision: str) -> str:
        if s.is_helm_repository:
            return revision  # a chart version: fixed once written down
        creds = await self.engine.credentials_for(app, s.repo_url)
        return await self.engine.git.resolve(s.repo_url, revision, creds)

    async def _refuse_missing_namespace(self, clone: Application, req: CloneRequest) -> None:
        if clone.sync_policy.option("CreateNamespace") == "true":
            return
        if await self.kube.get("v1", "Namespace", req.dest_namespace) is not None:
            return
        raise CloneRefused(
            f"namespace {req.dest_namespace} does not exist; nothing was created",
            hint="add --create-namespace to have the clone's sync create it",
        )

    async def _refuse_taken(self, clone: Application, manifests: list[Manifest]) -> None:
        """An object of that name in the namespace that another Application owns (another
        clone, a staging app) would be taken over by the clone's sync: refused, naming it."""

        async def owner(m: Manifest) -> str:
            live = await self.kube.get(
                str(m.obj["apiVersion"]), m.key.kind, m.key.name, m.key.namespace
            )
            other = other_owner(clone, live) if live is not None else None
            return (
                f"{m.key.kind} {m.key.name} is Application {other[0]}/{other[1]}'s" if other else ""
            )

        taken = [t for t in await asyncio.gather(*(owner(m) for m in manifests)) if t]
        if taken:
            shown = "; ".join(taken[:20]) + (
                f"; and {len(taken) - 20} more" if len(taken) > 20 else ""
            )
            raise CloneRefused(
                f"{clone.name} would take over {len(taken)} object(s) in namespace "
                f"{clone.destination.namespace} that another Application owns: {shown}. "
                "Nothing was created",
                hint="clone into another namespace, or delete that Application first",
            )

    async def _write(self, plan: ClonePlan) -> Obj:
        meta = plan.app["metadata"]
        existing = await self.kube.get(API_VERSION, KIND, meta["name"], meta["namespace"])
        if existing is None:
            return await self.kube.create(plan.app)
        # Written over at the resourceVersion read: a clone changed meanwhile is a conflict,
        # not overwritten unseen. Finalizers (the controller's) stay.
        check_existing(
            existing,
            meta["labels"][CLONED_FROM_LABEL],
            plan.app["spec"]["destination"]["namespace"],
        )
        body = dict(existing)
        body["spec"] = plan.app["spec"]
        body["metadata"] = {
            **existing["metadata"],
            "labels": {**(existing["metadata"].get("labels") or {}), **meta["labels"]},
            "annotations": {
                **(existing["metadata"].get("annotations") or {}),
                **meta["annotations"],
            },
        }
        res = await self.kube.resource_for(API_VERSION, KIND)
        out: Obj = await self.kube.request(
            "PUT", res.path(meta["namespace"], meta["name"]), body=body
        )
        return out


def _pinned(obj: Obj, revisions: list[str]) -> Obj:
    """``obj`` with each source at ``revisions`` and no pin (which would hold every source
    at its own revisions), nothing else changed, to render."""
    out = {**obj, "spec": {k: v for k, v in (obj.get("spec") or {}).items() if k != "pin"}}
    spec = out["spec"]
    key = "sources" if isinstance(spec.get("sources"), list) and spec["sources"] else "source"
    pinned = [
        {**s, "targetRevision": r} for s, r in zip(source_dicts(spec), revisions, strict=True)
    ]
    spec[key] = pinned if key == "sources" else pinned[0]
    return out


def _release_name(app: Application, s: Source) -> str:
    """The Helm release name the original renders ``s`` with."""
    return (s.helm.release_name if s.helm else "") or app.name


__all__ = ["CloneOutcome", "ClonePlan", "CloneRefused", "CloneRequest", "Cloner"]
