"""Hooks: objects that run at a point of a sync or a deletion rather than being deployed.

An object is a hook when it carries ``tether.dev/hook`` (or Argo CD's
``argocd.argoproj.io/hook``; Helm charts' ``helm.sh/hook`` arrive already marked
``tether.dev/hook`` by the Helm renderer). Its value names one or more phases, comma separated:
tether's and Argo CD's (PreSync, Sync, PostSync, SyncFail, PreDelete, PostDelete, Skip) or
Helm's (pre-install, pre-upgrade, post-install, post-upgrade, pre-delete, post-delete,
pre-rollback, post-rollback). Helm's are mapped faithfully: pre-install runs before the first
deployment only, pre-upgrade before every later one (``first_install`` tells them apart).

Hooks are not part of the app's inventory, diff or prune. ``generateName`` is allowed for
them. Delete policies: ``tether.dev/hook-delete-policy`` (or Argo CD's, or Helm's
``helm.sh/hook-delete-policy``): HookSucceeded, HookFailed, BeforeHookCreation (the default
when none is given).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tether.model import Manifest, Obj


class HookPhase(StrEnum):
    PRE_SYNC = "PreSync"
    SYNC = "Sync"
    POST_SYNC = "PostSync"
    SYNC_FAIL = "SyncFail"
    PRE_DELETE = "PreDelete"
    POST_DELETE = "PostDelete"
    SKIP = "Skip"


class DeletePolicy(StrEnum):
    HOOK_SUCCEEDED = "HookSucceeded"
    HOOK_FAILED = "HookFailed"
    BEFORE_HOOK_CREATION = "BeforeHookCreation"


@dataclass(frozen=True)
class Hook:
    manifest: Manifest
    """Marked and namespaced like any desired object; ``metadata.name`` may be absent when
    ``metadata.generateName`` is set."""
    phases: frozenset[HookPhase]
    """The phases it runs in for this operation (empty: a Helm hook that does not apply to
    this kind of deployment, e.g. pre-install on an upgrade)."""
    hook_type: str
    """The annotation's value as written (``PreSync``, ``pre-install,pre-upgrade``), shown
    in results."""
    delete_policies: frozenset[DeletePolicy]
    weight: int
    """Its wave within the phase: ``sync-wave``, or Helm's ``hook-weight``."""

    @property
    def generate_name(self) -> str:
        return str((self.manifest.obj.get("metadata") or {}).get("generateName") or "")


def is_hook(obj: Obj) -> bool:
    """The object carries a hook annotation (any spelling, any value except none)."""
    raise NotImplementedError


def hook_of(m: Manifest, *, first_install: bool) -> Hook | None:
    """The hook ``m`` is, or None for a plain object. Raises ``InvalidSpec`` naming the
    object and its file for an unknown phase or delete policy."""
    raise NotImplementedError
