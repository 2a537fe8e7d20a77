"""Marking objects as owned by an Application, and reading that mark back."""

from __future__ import annotations

import hashlib
import json

from tether.api.application import (
    APP_LABEL,
    MANIFEST_HASH_ANNOTATION,
    TRACKING_ANNOTATION,
    Application,
)
from tether.diff.normalize import copy_json
from tether.model import Obj, ResourceKey
from tether.sync.options import object_options


def tracking_id(app: Application, key: ResourceKey) -> str:
    return key.tracking_id(app.namespace, app.name)


def manifest_hash(obj: Obj) -> str:
    """A stable hash of the manifest as Git gives it (before tether's own marks)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def mark(app: Application, obj: Obj) -> Obj:
    """A copy of ``obj`` carrying the tracking annotation, the app label and its hash."""
    h = manifest_hash(obj)
    out: Obj = copy_json(obj)
    meta = out.setdefault("metadata", {})
    ann = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    ann[TRACKING_ANNOTATION] = tracking_id(app, ResourceKey.of(out))
    ann[MANIFEST_HASH_ANNOTATION] = h
    labels[APP_LABEL] = app.label_value
    meta["annotations"] = ann
    meta["labels"] = labels
    return out


def owned_by(app: Application, live: Obj) -> bool:
    """True when the live object's tracking id says this app owns it."""
    ann = (live.get("metadata") or {}).get("annotations") or {}
    return bool(ann.get(TRACKING_ANNOTATION) == tracking_id(app, ResourceKey.of(live)))


def owner_of(live: Obj) -> str:
    """``<app-namespace>_<app>`` from the tracking id, or ``""``."""
    ann = (live.get("metadata") or {}).get("annotations") or {}
    tid = str(ann.get(TRACKING_ANNOTATION) or "")
    return tid.split(":", 1)[0] if tid else ""


def other_owner(app: Application, live: Obj) -> tuple[str, str] | None:
    """``(namespace, name)`` of the Application the live object's tracking id names, when
    that is not ``app``; None when it names ``app`` or no app at all."""
    owner = owner_of(live)
    if not owner or owner == app.tracking_owner:
        return None
    namespace, sep, name = owner.partition("_")
    return (namespace, name) if sep and namespace and name else None


def without_bookkeeping(app: Application, desired: Obj, live: Obj | None) -> Obj:
    """The manifest minus tether's own marks that are bookkeeping, not drift: the manifest
    hash always, and the app label when ``live`` carries this app's label in its older form
    (the next apply of that object rewrites it; until then it is still found and owned)."""
    meta = desired.get("metadata") or {}
    ann = dict(meta.get("annotations") or {})
    ann.pop(MANIFEST_HASH_ANNOTATION, None)
    labels = dict(meta.get("labels") or {})
    have = ((live or {}).get("metadata") or {}).get("labels") or {}
    if have.get(APP_LABEL) in app.label_values[1:]:
        labels.pop(APP_LABEL, None)
    return {**desired, "metadata": {**meta, "annotations": ann, "labels": labels}}


def label_selector(app: Application) -> str:
    """Selects the objects marked with any of this app's label values (current and older)."""
    return f"{APP_LABEL} in ({','.join(app.label_values)})"


def object_sync_options(obj: Obj) -> dict[str, str]:
    """``tether.dev/sync-options: Prune=false,Delete=false`` (or Argo CD's annotation) as a
    dict; entries tether does not know are left out (see :mod:`tether.sync.options`)."""
    return object_options(obj)
