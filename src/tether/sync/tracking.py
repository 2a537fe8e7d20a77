"""Marking objects as owned by an Application, and reading that mark back."""

from __future__ import annotations

import copy
import hashlib
import json

from tether.api.application import (
    APP_LABEL,
    MANIFEST_HASH_ANNOTATION,
    SYNC_OPTIONS_ANNOTATION,
    TRACKING_ANNOTATION,
    Application,
)
from tether.model import Obj, ResourceKey


def tracking_id(app: Application, key: ResourceKey) -> str:
    return key.tracking_id(app.namespace, app.name)


def manifest_hash(obj: Obj) -> str:
    """A stable hash of the manifest as Git gives it (before tether's own marks)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def mark(app: Application, obj: Obj) -> Obj:
    """A copy of ``obj`` carrying the tracking annotation, the app label and its hash."""
    h = manifest_hash(obj)
    out = copy.deepcopy(obj)
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


def object_sync_options(obj: Obj) -> dict[str, str]:
    """``tether.dev/sync-options: Prune=false,Delete=false`` as a dict."""
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    raw = str(ann.get(SYNC_OPTIONS_ANNOTATION) or "")
    out: dict[str, str] = {}
    for part in raw.split(","):
        k, sep, v = part.strip().partition("=")
        if sep:
            out[k] = v
    return out
