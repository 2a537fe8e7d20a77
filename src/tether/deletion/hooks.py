"""PreDelete and PostDelete hooks: run while an Application is deleted, before its first object
goes and once they all are gone.

The hooks are the app's as rendered at the revision it last deployed (``status.sync.revision``),
so what runs at deletion matches what ran. Like the cascade this keeps no state between
calls: each call renders (cached), finds each hook's instance for this deletion by the hook's
instance labels and the annotation ``tether.dev/hook-run: <app uid>/<phase>`` (an instance a
sync left behind is never taken for this deletion's), creates what has not run yet, and
records each hook done in the Application's annotation ``tether.dev/deletion-hooks-done``
(so a hook whose instance ``HookSucceeded`` deleted does not run twice). Hooks run wave by
wave (``sync-wave`` or Helm's ``hook-weight``); a wave waits for the one before it.

A hook that fails stops the deletion: ``HookFailed`` says which and why, and the cascade
reports it in the ``DeletionError`` condition. When the hooks cannot be rendered (the
repository is unreachable, the revision gone) the deletion waits too, as in Argo CD: deleting
without a PreDelete hook that exists might lose what the hook was there to save. An app whose
status records no deletion hook at its deployed revision (``status.deletionHooks: 0``, written
with every status) renders nothing and never waits for this. The way out otherwise is the
Application's annotation ``tether.dev/deletion-hooks: skip`` (the cascade then runs
without hooks), or a fixed repository.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import TYPE_CHECKING, Final

from tether.api.application import GROUP, KIND, Application
from tether.errors import InvalidSpec, KubeError, TetherError
from tether.kube import KubeClient
from tether.model import Manifest, Obj, ResourceKey
from tether.source import redact
from tether.sync.hook_run import HookRunner
from tether.sync.hooks import Hook, HookPhase, describe, hook_id, hook_of, instance_selector
from tether.sync.state import HOOK_FAILED, HOOK_RUNNING, HOOK_SUCCEEDED, TaskRecord

if TYPE_CHECKING:
    from tether.engine import Engine

SKIP_ANNOTATION: Final = "tether.dev/deletion-hooks"
"""``skip`` on the Application: delete it without running its PreDelete/PostDelete hooks."""
DONE_ANNOTATION: Final = "tether.dev/deletion-hooks-done"
"""On the Application being deleted: ``<phase>:<hook id>`` of each hook done, comma separated."""
RUN_ANNOTATION: Final = "tether.dev/hook-run"
"""On a deletion hook's instance: ``<app uid>/<phase>``, the deletion it belongs to."""
CACHE_SIZE: Final = 32


class HookFailed(TetherError):
    """A deletion hook failed or could not run; the deletion waits."""

    reason = "HookFailed"

    def __init__(self, key: ResourceKey, message: str, *, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.key = key


class RenderedHooks:
    """``DeletionHooks`` (``tether.deletion.cascade``) that runs the app's PreDelete and
    PostDelete hooks, rendered by ``engine`` at the deployed revision."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.kube: KubeClient = engine.kube
        self._rendered: dict[tuple[str, str], list[Hook]] = {}

    async def pre_delete(self, app: Obj) -> str:
        return await self.run(app, HookPhase.PRE_DELETE)

    async def post_delete(self, app: Obj) -> str:
        return await self.run(app, HookPhase.POST_DELETE)

    async def run(self, obj: Obj, phase: HookPhase) -> str:
        """ "" once every hook of ``phase`` succeeded (or there is none); else what it waits
        for. Raises ``HookFailed``."""
        meta = obj.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        if str(annotations.get(SKIP_ANNOTATION) or "").strip().lower() == "skip":
            return ""
        revision = str(((obj.get("status") or {}).get("sync") or {}).get("revision") or "")
        if not revision:
            return ""  # never deployed: no hook of it ever ran, none runs now
        if (obj.get("status") or {}).get("deletionHooks") == 0:
            return ""  # the deployed revision has none: nothing to render (or to wait for)
        app, hooks = await self._hooks(obj, revision)
        mine = sorted((h for h in hooks if phase in h.phases), key=lambda h: h.weight)
        if not mine:
            return ""
        done = _done(obj)
        before = set(done)
        runner = HookRunner(self.kube, app)
        uid = str(meta.get("uid") or "")
        waiting = ""
        for wave, group in itertools.groupby(mine, key=lambda h: h.weight):
            pending: list[str] = []
            for hook in group:
                token = f"{phase.value}:{hook_id(hook.manifest.obj)}"
                if token in done:
                    continue
                rec = await self._advance_one(runner, app, hook, f"{uid}/{phase.value}", wave)
                if rec.hook_phase == HOOK_SUCCEEDED:
                    done.add(token)
                elif rec.hook_phase == HOOK_FAILED:
                    await self._write_done(obj, done, before)
                    raise _failure(app, phase, rec)
                else:
                    pending.append(f"{describe(hook.manifest)} ({rec.message or 'running'})")
            if pending:
                waiting = f"waiting for {phase.value} hook(s) of wave {wave}: " + "; ".join(pending)
                break
        await self._write_done(obj, done, before)
        return waiting

    async def _advance_one(
        self, runner: HookRunner, app: Application, hook: Hook, run: str, wave: int
    ) -> TaskRecord:
        """Starts the hook's instance for this deletion (``run``: ``<app uid>/<phase>``),
        or observes the one there is."""
        phase = run.rsplit("/", 1)[-1]
        m = hook.manifest
        try:
            live = await self._instance(app, hook, run)
        except KubeError as e:
            raise HookFailed(
                ResourceKey.of(m.obj),
                f"{phase} hook {describe(m)}: cannot read its instances: {redact(str(e))}",
                hint="grant the controller 'list' on this kind; the deletion is retried",
            ) from None
        if live is None:
            obj = dict(m.obj)
            meta = dict(obj.get("metadata") or {})
            meta["annotations"] = {**(meta.get("annotations") or {}), RUN_ANNOTATION: run}
            obj["metadata"] = meta
            marked = dataclasses.replace(hook, manifest=Manifest(obj, m.source_file, m.line))
            return await runner.start(marked, phase, wave)
        api_version = str(live.get("apiVersion") or "")
        if (live.get("metadata") or {}).get("deletionTimestamp"):
            # Deleted by its policy after a failure: run again once it is gone.
            return TaskRecord(
                ResourceKey.of(live),
                phase,
                wave,
                "waiting",
                hook_type=hook.hook_type,
                hook_phase=HOOK_RUNNING,
                message="its earlier instance is being deleted",
            )
        rec = TaskRecord(
            key=ResourceKey.of(live),
            sync_phase=phase,
            wave=wave,
            action="created",
            hook_type=hook.hook_type,
            hook_phase=HOOK_RUNNING,
            version=api_version.rsplit("/", 1)[-1],
        )
        return await runner.observe(rec)

    async def _instance(self, app: Application, hook: Hook, run: str) -> Obj | None:
        """The newest instance of ``hook`` created for this deletion, None if none."""
        obj = hook.manifest.obj
        namespace = str((obj.get("metadata") or {}).get("namespace") or "")
        items, _ = await self.kube.list(
            str(obj.get("apiVersion") or ""),
            str(obj.get("kind") or ""),
            namespace,
            label_selector=instance_selector(app, hook),
        )
        ours = [
            o
            for o in items
            if ((o.get("metadata") or {}).get("annotations") or {}).get(RUN_ANNOTATION) == run
        ]
        ours.sort(key=lambda o: str(o["metadata"].get("creationTimestamp") or ""))
        return ours[-1] if ours else None

    async def _hooks(self, obj: Obj, revision: str) -> tuple[Application, list[Hook]]:
        meta = obj.get("metadata") or {}
        where = f"Application {meta.get('namespace')}/{meta.get('name')}"
        try:
            app = Application.from_obj(obj)
        except InvalidSpec as e:
            raise _render_failure(obj, f"{where}: its spec no longer reads: {e}") from None
        cache_key = (str(meta.get("uid") or ""), revision)
        if cache_key not in self._rendered:
            try:
                desired = await self.engine.desired.fetch_desired(app, revision)
                hooks = [h for m in desired.hooks if (h := hook_of(m, first_install=False))]
            except TetherError as e:
                raise _render_failure(
                    obj,
                    f"{where}: its deletion hooks cannot be rendered at revision {revision}: "
                    f"{redact(str(e))}",
                ) from None
            if len(self._rendered) >= CACHE_SIZE:
                self._rendered.pop(next(iter(self._rendered)))
            self._rendered[cache_key] = hooks
        return app, self._rendered[cache_key]

    async def _write_done(self, obj: Obj, done: set[str], before: set[str]) -> None:
        if done == before:
            return
        patch = {"metadata": {"annotations": {DONE_ANNOTATION: ",".join(sorted(done))}}}
        try:
            await self.kube.merge_patch(obj, patch)
        except KubeError as e:
            if e.status != 404:
                raise


def _done(obj: Obj) -> set[str]:
    raw = str(((obj.get("metadata") or {}).get("annotations") or {}).get(DONE_ANNOTATION) or "")
    return {t.strip() for t in raw.split(",") if t.strip()}


def _failure(app: Application, phase: HookPhase, rec: TaskRecord) -> HookFailed:
    return HookFailed(
        rec.key,
        f"{phase.value} hook {rec.key.kind} {rec.key.namespace}/{rec.key.name} failed: "
        f"{rec.message}",
        hint=(
            f"fix the hook and delete its failed instance to run it again, or annotate "
            f"Application {app.namespace}/{app.name} {SKIP_ANNOTATION}=skip to delete without "
            "its hooks"
        ),
    )


def _render_failure(obj: Obj, message: str) -> HookFailed:
    meta = obj.get("metadata") or {}
    return HookFailed(
        ResourceKey(GROUP, KIND, str(meta.get("namespace") or ""), str(meta.get("name"))),
        message,
        hint=(
            "the deletion waits, as its PreDelete/PostDelete hooks may matter: fix the source, "
            f"or annotate the Application {SKIP_ANNOTATION}=skip to delete without its hooks"
        ),
    )
