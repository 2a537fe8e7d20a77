"""An Application's status: conditions, inventory, operation state and history, and writing it.

What a comparison and a sync found becomes ``status``; credentials in any URL are masked
before it is written, and an unchanged status is not written again. An app with several
sources (``spec.sources``) also gets, as Argo CD writes them, ``sync.revisions`` (one per
source, in order: a commit or a chart version) and, in each history entry, ``revisions``
and ``sources``; every app gets ``sourceTypes`` (the render type detected per source).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from tether.api.application import Application
from tether.api.names import HISTORY_LIMIT
from tether.controller.windows import evaluate as evaluate_windows
from tether.errors import InvalidSpec
from tether.health import assess
from tether.kube import KubeClient
from tether.kube.client import split_api_version
from tether.model import Manifest, Obj, ResourceDiff, ResourceDiffStatus, ResourceKey
from tether.source import redact
from tether.sync.hooks import HookPhase, hook_of
from tether.sync.tracking import owned_by

if TYPE_CHECKING:
    from tether.compare import Comparison
    from tether.desired import SourceRevision
    from tether.sync.apply import SyncResult
    from tether.sync.state import OperationState


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Condition:
    type: str
    message: str
    reason: str = ""

    def to_dict(self, at: str) -> dict[str, str]:
        return {
            "type": self.type,
            "status": "True",
            "reason": self.reason or self.type,
            # Messages quote errors, and errors may quote a repository URL with a token in it.
            "message": redact(self.message),
            "lastTransitionTime": at,
        }


async def write_status(
    kube: KubeClient,
    app: Application,
    cmp: Comparison,
    result: SyncResult | None = None,
    *,
    trigger: str = "",
    only_if_changed: bool = False,
    operation_extra: dict[str, Any] | None = None,
    operation: OperationState | None = None,
) -> Obj | None:
    """Writes status; returns the updated Application (None when nothing changed and
    ``only_if_changed``: an idle engine then writes nothing). ``operation``: the state of
    the sync operation that produced ``result``, written as ``operationState`` (with its
    sync phase, wave, hook instances and request)."""
    at = now()
    previous = {
        (c.get("type"), c.get("message")): c.get("lastTransitionTime", at)
        for c in app.status.get("conditions") or []
    }
    # When Git cannot be read, nothing was compared: keep the last revision known (what
    # is deployed), as inventory and resources are kept, rather than blank it.
    old_sync = app.status.get("sync") or {}
    revision = cmp.revision
    if cmp.error is not None and not revision:
        revision = str(old_sync.get("revision") or "")
    sync: dict[str, Any] = {"status": cmp.sync_status.value, "revision": revision}
    multi = has_several_sources(app)
    revisions = source_revisions(cmp)
    if multi:
        sync["revisions"] = revisions or list(old_sync.get("revisions") or [])
    status: dict[str, Any] = {
        "observedGeneration": app.generation,
        "reconciledAt": at,
        "sync": sync,
        "health": {"status": cmp.health.status.value, "message": cmp.health.message},
        "conditions": [
            c.to_dict(str(previous.get((c.type, redact(c.message)), at))) for c in cmp.conditions
        ],
    }
    windows = evaluate_windows(cmp.sync_windows, datetime.now(UTC)).to_status()
    if windows is not None or app.status.get("syncWindows") is not None:
        status["syncWindows"] = windows  # None: the windows were removed, and so is this
    types = source_types(cmp) or list(app.status.get("sourceTypes") or [])
    if types:
        status["sourceTypes"] = types
    if cmp.error is None:
        status["resources"] = [cmp.resources[k].row() for k in sorted(cmp.resources)]
    if cmp.desired is not None:
        status["deletionHooks"] = deletion_hook_count(cmp.desired.hooks)
    inventory = new_inventory(app, cmp, result)
    if inventory is not None:
        status["inventory"] = inventory
    if result is not None and not result.dry_run:
        status["operationState"] = {
            **(operation.to_dict() if operation is not None else {}),
            "phase": result.phase,
            "message": result.message,
            "revision": result.revision,
            "trigger": trigger,
            "startedAt": result.started_at,
            "finishedAt": result.finished_at,
            "generation": operation.generation if operation is not None else app.generation,
            "syncResult": (
                operation.to_dict()["syncResult"]
                if operation is not None
                else {"resources": [r.to_dict() for r in result.results if r.action != "unchanged"]}
            ),
            **({"revisions": revisions} if multi else {}),
            **(operation_extra or {}),
        }
        history = list(app.status.get("history") or [])
        entry: dict[str, Any] = {
            "id": (history[0].get("id", 0) + 1) if history else 1,
            "revision": result.revision,
            "deployedAt": result.finished_at,
            "result": result.phase,
            "trigger": trigger,
            "source": {
                "repoURL": app.source.repo_url,
                "path": app.source.path,
                "targetRevision": result.target_revision or app.source.target_revision,
            },
        }
        if multi:
            entry["revisions"] = revisions
            entry["sources"] = history_sources(app, cmp)
        if cmp.desired is not None:
            entry["author"] = cmp.desired.commit.author
            entry["message"] = (
                cmp.desired.commit.message.splitlines()[0][:200]
                if (cmp.desired.commit.message)
                else ""
            )
        status["history"] = [entry, *history][:HISTORY_LIMIT]
    status = _without_credentials(status)
    if only_if_changed and result is None and _same_status(app.status, status):
        return None
    return await kube.patch_status(app.obj, status)


def deletion_hook_count(hooks: list[Manifest]) -> int:
    """How many PreDelete/PostDelete hooks the app has at the revision in ``status.sync``:
    a deletion whose hooks cannot be rendered then knows whether it may go on without (0)."""
    n = 0
    for m in hooks:
        try:
            hook = hook_of(m, first_install=False)
        except InvalidSpec:
            n += 1  # unreadable: counted, so a deletion does not assume there is none
            continue
        if hook is not None and hook.phases & {HookPhase.PRE_DELETE, HookPhase.POST_DELETE}:
            n += 1
    return n


def has_several_sources(app: Application) -> bool:
    """Whether the app is written with ``spec.sources`` (Argo CD's multi-source shape): its
    status then carries ``revisions``, one per source, beside ``revision``."""
    spec = app.obj.get("spec") or {}
    return isinstance(spec.get("sources"), list) and bool(spec.get("sources"))


def source_revisions(cmp: Comparison) -> list[str]:
    """Per source, in order: the commit (Git) or chart version (Helm repository) compared;
    empty when nothing was compared."""
    return [r.revision for r in _revisions_of(cmp)]


def source_types(cmp: Comparison) -> list[str]:
    """Per source, in order: the render type detected (``Kustomize``, ``Helm``, ...)."""
    return [r.type for r in _revisions_of(cmp)]


def revision_key(app: Application, cmp: Comparison) -> str:
    """One string that changes whenever any source moves: the first source's revision, or
    for several sources all of them (a new commit to a values repository alone is new)."""
    if has_several_sources(app):
        return ",".join(source_revisions(cmp)) or cmp.revision
    return cmp.revision


def history_sources(app: Application, cmp: Comparison) -> list[dict[str, str]]:
    """A history entry's ``sources``: each source's repository (credentials masked when
    the status is written), path or chart, the revision it asked for, and its ``ref``."""
    out: list[dict[str, str]] = []
    for src, r in zip(app.sources, _revisions_of(cmp), strict=False):
        row = {"repoURL": redact(r.repo_url), "targetRevision": src.target_revision}
        if r.chart:
            row["chart"] = r.chart
        elif r.path:
            row["path"] = r.path
        if src.ref:
            row["ref"] = src.ref
        out.append(row)
    return out


def _revisions_of(cmp: Comparison) -> list[SourceRevision]:
    if cmp.desired is None or cmp.error is not None:
        return []
    return list(cmp.desired.source_revisions)


def _key_of_row(item: dict[str, Any]) -> ResourceKey:
    """The key of a ``status.inventory`` or ``status.resources`` entry."""
    return ResourceKey(
        str(item.get("group", "")),
        str(item.get("kind", "")),
        str(item.get("namespace", "")),
        str(item.get("name", "")),
    )


def inventory_of(app: Application) -> dict[ResourceKey, str]:
    """The app's recorded inventory: key → apiVersion."""
    out: dict[ResourceKey, str] = {}
    for item in app.status.get("inventory") or []:
        key = _key_of_row(item)
        version = str(item.get("version") or "v1")
        out[key] = f"{key.group}/{version}" if key.group else version
    return out


def record_outcome(cmp: Comparison, result: SyncResult) -> None:
    """Folds what the sync did into the comparison, so status shows the cluster after it.

    The apply responses are the live objects; no second read is needed.
    """
    for r in result.results:
        st = cmp.resources.get(r.key)
        if r.applied is not None:
            cmp.live[r.key] = r.applied
            if st is not None:
                st.diff = ResourceDiff(r.key, ResourceDiffStatus.SYNCED)
                st.health = assess(r.applied)
        elif r.action == "pruned":
            cmp.live.pop(r.key, None)
            cmp.resources.pop(r.key, None)


def new_inventory(
    app: Application, cmp: Comparison, result: SyncResult | None
) -> list[dict[str, str]] | None:
    """Inventory after this pass: what Git wants that exists, plus what is ours and not pruned.

    Without a successful comparison the previous inventory stands (None: leave it).
    """
    if cmp.error is not None or cmp.desired is None:
        return None
    pruned = {r.key for r in (result.results if result else []) if r.action == "pruned"}
    previous = inventory_of(app)
    keys: dict[ResourceKey, str] = {}
    for m in cmp.desired.manifests:
        if m.key in cmp.shared:
            continue  # another app's
        if m.key in cmp.live or (
            result
            and any(
                r.key == m.key and r.action in ("created", "configured") for r in result.results
            )
        ):
            keys[m.key] = split_api_version(str(m.obj["apiVersion"]))[1]
    for key, api_version in previous.items():
        if (
            key not in keys
            and key not in pruned
            and key in cmp.live
            and owned_by(app, cmp.live[key])
        ):
            keys[key] = split_api_version(api_version)[1]
    return [{**k.to_dict(), "version": v} for k, v in sorted(keys.items())]


def _without_credentials(status: dict[str, Any]) -> dict[str, Any]:
    """``status`` with the credentials of every URL in it masked.

    A repoURL may carry a token (``https://user:TOKEN@host/x.git``) and reaches status both
    directly (history) and quoted in error messages; masking the whole of what is written
    covers every field, including ones added later.
    """
    text = orjson.dumps(status, option=orjson.OPT_NON_STR_KEYS).decode()
    masked = redact(text)
    if masked == text:
        return status
    out: dict[str, Any] = orjson.loads(masked)
    return out


def _same_status(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Equal but for the reconcile time: nothing worth a write. A null in the merge patch
    removes a field, so it matches a field that is absent."""
    return all(old.get(k) == _without_nulls(v) for k, v in new.items() if k != "reconciledAt")


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value
