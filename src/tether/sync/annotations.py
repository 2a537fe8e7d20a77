"""Reading tether's per-object annotations, with Argo CD's spelling of each read as an alias.

Repositories written for Argo CD annotate objects ``argocd.argoproj.io/sync-wave`` and so on.
tether reads every such annotation through :func:`annotation`, so those repositories deploy
unchanged. When an object carries both spellings, tether's own (``tether.dev/...``) wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

TETHER_PREFIX: Final = "tether.dev/"
ARGOCD_PREFIX: Final = "argocd.argoproj.io/"

SYNC_WAVE: Final = "sync-wave"
SYNC_OPTIONS: Final = "sync-options"
COMPARE_OPTIONS: Final = "compare-options"
HOOK: Final = "hook"
HOOK_DELETE_POLICY: Final = "hook-delete-policy"

ALIASED: Final = frozenset({SYNC_WAVE, SYNC_OPTIONS, COMPARE_OPTIONS, HOOK, HOOK_DELETE_POLICY})
"""The annotations read under either prefix."""


def annotation(obj: Mapping[str, Any], name: str) -> str | None:
    """The value of ``tether.dev/<name>`` on ``obj``, else of ``argocd.argoproj.io/<name>``,
    else None. ``name`` is one of :data:`ALIASED`."""
    found = annotation_with_key(obj, name)
    return found[1] if found is not None else None


def annotation_with_key(obj: Mapping[str, Any], name: str) -> tuple[str, str] | None:
    """``(full annotation key, value)`` of the spelling that applies, for messages that
    should name what the user wrote; None when neither is set."""
    if name not in ALIASED:
        raise ValueError(f"{name!r} is not an aliased annotation (one of {sorted(ALIASED)})")
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if not isinstance(annotations, Mapping):
        return None
    for prefix in (TETHER_PREFIX, ARGOCD_PREFIX):
        key = prefix + name
        value = annotations.get(key)
        if value is not None:
            return key, str(value)
    return None
