"""What a clone of an Application is, as data: its manifest built from the original's (every
source pinned to one commit, another destination namespace, no pin, no automated sync), the
refusals that keep it away from what the original owns, and the revisions a history ID names.

Pure functions over plain dicts; ``tether.service.clone`` does the reading, rendering and
writing around them.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from tether.api.application import API_VERSION, KIND
from tether.errors import TetherError
from tether.model import Manifest, Obj

CLONED_FROM_LABEL = "tether.dev/cloned-from"
CLONED_REVISIONS_ANNOTATION = "tether.dev/cloned-revisions"
"""The revision of each source the clone was made at, comma-separated, in source order."""
CLONED_BY_ANNOTATION = "tether.dev/cloned-by"
CLONED_AT_ANNOTATION = "tether.dev/cloned-at"

NOT_COPIED = {
    "pin": "the original's pin (the clone is at fixed commits anyway)",
    "syncWindows": "sync windows (a freeze on the original does not hold a copy back)",
    "dependsOn": "dependsOn (the apps it waits for are the original's, not the copy's)",
}
"""Keys of the original's spec a clone leaves out, and why (printed when they were set)."""

_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 63
"""An Application name tether accepts for a clone: a DNS label, so it fits a label value."""


class CloneRefused(TetherError):
    """The clone would touch what the original owns, or its name is taken: nothing created."""

    reason = "CloneRefused"


@dataclass
class CloneSpec:
    obj: Obj
    """The Application to create (or to write over an earlier clone of the same origin)."""
    notes: list[str] = field(default_factory=list)
    """What differs from the original beyond the namespace and revisions, for people."""


def source_dicts(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The sources of a spec as written: ``spec.sources`` or ``[spec.source]``."""
    sources = spec.get("sources")
    if isinstance(sources, list) and sources:
        return [s for s in sources if isinstance(s, dict)]
    source = spec.get("source")
    return [source] if isinstance(source, dict) else []


def history_revisions(obj: Obj, ident: str) -> list[str] | None:
    """The revision of every source that history entry ``ident`` deployed; None when
    ``ident`` is not a history ID of the app (it is then a Git revision)."""
    if not ident.isdigit():
        return None
    for entry in (obj.get("status") or {}).get("history") or []:
        if str(entry.get("id")) == ident:
            several = [str(r) for r in entry.get("revisions") or []]
            return several or [str(entry.get("revision") or "")]
    return None


def synced_revisions(obj: Obj) -> list[str]:
    """What the original's status shows as synced, per source (``[]`` if never synced)."""
    sync = (obj.get("status") or {}).get("sync") or {}
    several = [str(r) for r in sync.get("revisions") or []]
    if several:
        return several
    return [str(sync["revision"])] if sync.get("revision") else []


def default_clone_name(name: str, dest_namespace: str) -> str:
    return f"{name}-{dest_namespace}"


def check_request(original: Obj, new_name: str, dest_namespace: str) -> None:
    """Refuses a clone onto the original itself: its name, or its destination namespace."""
    meta = original.get("metadata") or {}
    name, namespace = str(meta.get("name")), str(meta.get("namespace"))
    if len(new_name) > NAME_MAX or not _DNS_NAME.match(new_name):
        raise CloneRefused(
            f"{new_name!r} cannot name a clone: lower-case letters, digits and '-', at most "
            f"{NAME_MAX} characters",
            hint="choose another name (tether app clone NAME NEWNAME, or --as NEWNAME)",
        )
    if new_name == name:
        raise CloneRefused(
            f"a clone of {namespace}/{name} cannot be called {name}: that is the original",
            hint="choose another name",
        )
    original_dest = str(((original.get("spec") or {}).get("destination") or {}).get("namespace"))
    if dest_namespace == original_dest:
        raise CloneRefused(
            f"Application {namespace}/{name} deploys to namespace {dest_namespace}: a clone "
            "there would take over the original's objects",
            hint="give --dest-namespace another namespace, e.g. a staging one",
        )


def check_existing(existing: Obj | None, original_name: str, dest_namespace: str) -> None:
    """An Application of the clone's name may exist only as an earlier clone of the same
    original into the same namespace (it is then brought to the new revision)."""
    if existing is None:
        return
    meta = existing.get("metadata") or {}
    where = f"Application {meta.get('namespace')}/{meta.get('name')}"
    origin = str((meta.get("labels") or {}).get(CLONED_FROM_LABEL) or "")
    if origin != original_name:
        what = f"a clone of {origin}" if origin else "not a clone"
        raise CloneRefused(
            f"{where} exists and is {what}: it is left as it is",
            hint="choose another name (--as NEWNAME), or delete it first with "
            f"'tether app delete {meta.get('name')}'",
        )
    dest = str(((existing.get("spec") or {}).get("destination") or {}).get("namespace"))
    if dest != dest_namespace:
        raise CloneRefused(
            f"{where} is a clone of {original_name} into namespace {dest}, not {dest_namespace}",
            hint=f"delete it first ('tether app delete {meta.get('name')}') or choose another "
            "name (--as NEWNAME)",
        )


def build_clone(
    original: Obj,
    new_name: str,
    dest_namespace: str,
    revisions: list[str],
    release_names: list[str],
    *,
    create_namespace: bool,
    user: str,
    at: str,
) -> CloneSpec:
    """The clone's manifest. ``revisions``: one per source (a commit sha, or a chart
    version); ``release_names``: per source, the Helm release name to set explicitly
    (``""`` for a source that is not rendered by Helm)."""
    meta = original.get("metadata") or {}
    name = str(meta.get("name"))
    spec = copy.deepcopy(original.get("spec") or {})
    notes: list[str] = []
    original_dest = str((spec.get("destination") or {}).get("namespace") or "")
    spec["destination"] = {**(spec.get("destination") or {}), "namespace": dest_namespace}
    for key, why in NOT_COPIED.items():
        if spec.pop(key, None) is not None:
            notes.append(f"not copied: {why}")
    policy = spec.get("syncPolicy")
    if isinstance(policy, dict) and policy.pop("automated", None) is not None:
        notes.append(
            "automated sync removed: the clone is at a fixed commit, which never moves; "
            "clone again at another revision to move it"
        )
    if create_namespace:
        policy = spec.setdefault("syncPolicy", {})
        options = [o for o in policy.get("syncOptions") or [] if not _is_create_ns(o)]
        policy["syncOptions"] = [*options, "CreateNamespace=true"]
    for i, src in enumerate(source_dicts(spec)):
        src["targetRevision"] = revisions[i]
        notes += _retarget_namespaces(src, i, original_dest, dest_namespace)
        if release_names[i]:
            helm = src.setdefault("helm", {})
            helm["releaseName"] = release_names[i]
    obj: Obj = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": new_name,
            "namespace": str(meta.get("namespace")),
            "labels": {
                **{k: v for k, v in (meta.get("labels") or {}).items() if k != CLONED_FROM_LABEL},
                CLONED_FROM_LABEL: name,
            },
            "annotations": {
                CLONED_REVISIONS_ANNOTATION: ",".join(revisions),
                CLONED_BY_ANNOTATION: user,
                CLONED_AT_ANNOTATION: at,
            },
        },
        "spec": spec,
    }
    return CloneSpec(obj, notes)


def _retarget_namespaces(
    src: dict[str, Any], index: int, original_dest: str, dest_namespace: str
) -> list[str]:
    """A ``kustomize.namespace`` or ``helm.namespace`` naming the original's destination
    would put the copy's objects there: it follows the destination."""
    notes = []
    for block in ("kustomize", "helm"):
        spec = src.get(block)
        if isinstance(spec, dict) and original_dest and spec.get("namespace") == original_dest:
            spec["namespace"] = dest_namespace
            notes.append(
                f"source {index + 1}: {block}.namespace {original_dest} → {dest_namespace}"
            )
    return notes


def _is_create_ns(option: Any) -> bool:
    return str(option).split("=", 1)[0].strip() == "CreateNamespace"


def misplaced(manifests: list[Manifest], dest_namespace: str) -> list[str]:
    """Each rendered object (hooks too) that is cluster-scoped or lands in a namespace
    other than ``dest_namespace``, described with the file and line it comes from."""
    out = []
    for m in manifests:
        meta = m.obj.get("metadata") or {}
        ns = str(meta.get("namespace") or "")
        if ns == dest_namespace:
            continue
        name = meta.get("name") or f"{meta.get('generateName') or ''}*"
        what = f"{m.obj.get('kind')} {name}"
        where = f" ({m.source_file}:{m.line})" if m.source_file else ""
        why = "is cluster-scoped" if not ns else f"is in namespace {ns}"
        out.append(f"{what}{where} {why}")
    return out


def refuse_misplaced(
    original_name: str, new_name: str, dest_namespace: str, found: list[str]
) -> None:
    if not found:
        return
    shown = "; ".join(found[:20]) + (f"; and {len(found) - 20} more" if len(found) > 20 else "")
    raise CloneRefused(
        f"{new_name} would deploy {len(found)} object(s) outside namespace {dest_namespace}, "
        f"which the original {original_name} may own: {shown}. Nothing was created",
        hint="a clone deploys only into its own namespace: make those objects namespaced "
        "without an explicit namespace in Git (or let them follow the destination), or "
        "reproduce the app in a separate cluster",
    )
