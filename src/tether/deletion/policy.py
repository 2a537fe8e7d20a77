"""What an Application asks for when it is deleted: its finalizers, its deletion policy, and
whether it is going away at all.

The controller puts ``tether.dev/resources-finalizer`` on every Application it manages, so
that deleting the Application (``kubectl delete``) first deletes what it deployed. An
Application annotated ``tether.dev/deletion-policy: orphan`` opts out: it carries no
finalizer and its objects stay. Argo CD's ``resources-finalizer.argocd.argoproj.io`` (and its
``/background`` form) on a ported manifest asks for the same cascade and is removed with
tether's own, so the Application never hangs on a finalizer no controller would remove.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from tether.model import Obj

FINALIZER = "tether.dev/resources-finalizer"
ARGOCD_FINALIZER = "resources-finalizer.argocd.argoproj.io"
ARGOCD_BACKGROUND_FINALIZER = "resources-finalizer.argocd.argoproj.io/background"
ARGOCD_POST_DELETE_PREFIX = "post-delete-finalizer.argoproj.io"
"""Argo CD adds these itself for PostDelete hooks; a copied manifest may still carry them."""
POLICY_ANNOTATION = "tether.dev/deletion-policy"
DELETING_ANNOTATION = "tether.dev/deleting"
"""Set by ``tether app delete`` before it deletes anything: no sync may start after it."""
REQUESTED_BY_ANNOTATION = "tether.dev/deletion-requested-by"
"""``user@host``: who ran ``tether app delete``, stamped with the mark; the ``delete`` audit
record names them. Absent on an Application deleted by other means (``kubectl delete``)."""


class Policy(enum.Enum):
    CASCADE = "cascade"
    ORPHAN = "orphan"


@dataclass(frozen=True)
class DeletionPolicy:
    """What deleting the Application does, read from its metadata alone (never its spec, so
    an Application whose spec no longer parses can still be deleted)."""

    policy: Policy
    error: str = ""
    """Why the annotation could not be read; the policy is then CASCADE but nothing is
    deleted until the annotation is fixed."""
    argocd_background: bool = False
    """Argo CD's ``/background`` finalizer asked for background propagation."""

    @property
    def cascade(self) -> bool:
        return self.policy is Policy.CASCADE


def _meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def finalizers(obj: Obj) -> list[str]:
    return [str(f) for f in _meta(obj).get("finalizers") or []]


def is_ours(finalizer: str) -> bool:
    """tether's finalizer or one of Argo CD's that tether answers for."""
    return (
        finalizer in (FINALIZER, ARGOCD_FINALIZER, ARGOCD_BACKGROUND_FINALIZER)
        or finalizer == ARGOCD_POST_DELETE_PREFIX
        or finalizer.startswith(ARGOCD_POST_DELETE_PREFIX + "/")
    )


def holds_ours(obj: Obj) -> bool:
    return any(is_ours(f) for f in finalizers(obj))


def without_ours(obj: Obj) -> list[str]:
    """The Application's finalizers once tether's (and Argo CD's) are removed."""
    return [f for f in finalizers(obj) if not is_ours(f)]


def deletion_policy(obj: Obj) -> DeletionPolicy:
    annotations = _meta(obj).get("annotations") or {}
    raw = str(annotations.get(POLICY_ANNOTATION, "")).strip()
    background = ARGOCD_BACKGROUND_FINALIZER in finalizers(obj)
    if not raw:
        return DeletionPolicy(Policy.CASCADE, argocd_background=background)
    try:
        return DeletionPolicy(Policy(raw.lower()), argocd_background=background)
    except ValueError:
        return DeletionPolicy(
            Policy.CASCADE,
            error=(
                f"annotation {POLICY_ANNOTATION}: {raw!r} is not a deletion policy: use "
                "'cascade' (delete the app's objects with it, the default) or 'orphan' "
                "(leave them)"
            ),
            argocd_background=background,
        )


def being_deleted(obj: Obj) -> str:
    """Why the Application ``obj`` is going away, or "" when it is not."""
    meta = _meta(obj)
    if meta.get("deletionTimestamp"):
        return "its deletionTimestamp is set"
    if (meta.get("annotations") or {}).get(DELETING_ANNOTATION):
        return f"it is annotated {DELETING_ANNOTATION} (tether app delete)"
    return ""


def deletion_started(obj: Obj) -> bool:
    """The API server has been asked to delete it (only finalizers keep it)."""
    return bool(_meta(obj).get("deletionTimestamp"))


def deletion_changed(old: Obj | None, new: Obj) -> bool:
    """Whether a change to a deleted Application bears on its deletion: the deletion just
    began, or its finalizers or annotations (the policy) changed. A status write does not."""
    if not deletion_started(new):
        return False
    if old is None or not deletion_started(old):
        return True
    return finalizers(old) != finalizers(new) or _meta(old).get("annotations") != _meta(new).get(
        "annotations"
    )


def sync_running(obj: Obj) -> bool:
    op = (obj.get("status") or {}).get("operationState") or {}
    return op.get("phase") == "Running"


def propagation(obj: Obj, policy: DeletionPolicy) -> str:
    """DELETE propagation for the app's objects: ``PrunePropagationPolicy`` in the app's
    sync options, else Argo CD's ``/background`` finalizer, else Foreground (as Argo CD)."""
    spec = obj.get("spec") or {}
    options = ((spec.get("syncPolicy") or {}) if isinstance(spec, dict) else {}).get(
        "syncOptions"
    ) or []
    for opt in options:
        name, _, value = str(opt).partition("=")
        if name.strip() == "PrunePropagationPolicy":
            chosen = value.strip().lower()
            if chosen in ("foreground", "background", "orphan"):
                return chosen.capitalize()
    return "Background" if policy.argocd_background else "Foreground"
