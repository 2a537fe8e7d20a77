"""Hooks: objects that run at a point of a sync or a deletion rather than being deployed.

An object is a hook when it carries ``tether.dev/hook`` (or Argo CD's
``argocd.argoproj.io/hook``, or Helm's ``helm.sh/hook``; charts rendered by tether's Helm
renderer arrive already marked ``tether.dev/hook``). tether's spelling wins over Argo CD's,
and either wins over Helm's, as in Argo CD. The value names one or more phases, comma
separated: tether's and Argo CD's (PreSync, Sync, PostSync, SyncFail, PreDelete, PostDelete,
Skip) or Helm's (pre-install, pre-upgrade, post-install, post-upgrade, pre-delete,
post-delete, pre-rollback, post-rollback). Helm's are mapped faithfully: pre-install runs
before the first deployment only, pre-upgrade before every later one (``first_install``
tells them apart); Argo CD runs both on every sync.

Hooks are not part of the app's inventory, diff or prune. ``generateName`` is allowed for
them. Delete policies: ``tether.dev/hook-delete-policy`` (or Argo CD's, or Helm's
``helm.sh/hook-delete-policy``): HookSucceeded, HookFailed, BeforeHookCreation (the default
when none is given).

How a hook is marked, and why (``tether.desired`` marks the objects of ``Desired.hooks``):

- annotation ``tether.dev/hook-of: <app-namespace>/<app-name>`` names the app it belongs to;
- label ``tether.dev/app`` (the app's label value), so the watch of the app's objects sees
  hook instances too (a finished hook Job can wake the app);
- labels :func:`instance_labels`: ``tether.dev/hook-instance-of`` (the app's label value)
  and ``tether.dev/hook-id`` (a hash of the hook's group, kind, namespace and name or
  generateName), so the instances a hook left behind (``generateName`` ones included) are
  found with one label selector (:func:`instance_selector`);
- never the tracking id ``tether.dev/tracking-id``: an object without this app's tracking id
  is never in its inventory, never listed in ``status.resources``, never pruned and never
  deleted by the cascade, whatever stale inventory says.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from tether.errors import InvalidSpec
from tether.model import Manifest, Obj
from tether.sync.annotations import (
    ARGOCD_PREFIX,
    HOOK,
    HOOK_DELETE_POLICY,
    SYNC_WAVE,
    TETHER_PREFIX,
)

if TYPE_CHECKING:
    from tether.api.application import Application


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


HELM_HOOK: Final = "helm.sh/hook"
HELM_HOOK_WEIGHT: Final = "helm.sh/hook-weight"
HELM_DELETE_POLICY: Final = "helm.sh/hook-delete-policy"
HOOK_WEIGHT: Final = "tether.dev/hook-weight"
"""Helm's weight, copied by the Helm renderer."""

HOOK_OF_ANNOTATION: Final = "tether.dev/hook-of"
"""``<app-namespace>/<app-name>`` on every hook object and instance."""
INSTANCE_OF_LABEL: Final = "tether.dev/hook-instance-of"
"""The app's label value, on every hook object and instance."""
HOOK_ID_LABEL: Final = "tether.dev/hook-id"
"""A hash of the hook's identity (group, kind, namespace, name or generateName)."""

_TETHER_PHASES: Final = {p.value: p for p in HookPhase}
_HELM_PHASES: Final[dict[str, tuple[HookPhase, bool | None]]] = {
    # name → (phase, first_install it applies to; None: both)
    "pre-install": (HookPhase.PRE_SYNC, True),
    "pre-upgrade": (HookPhase.PRE_SYNC, False),
    "post-install": (HookPhase.POST_SYNC, True),
    "post-upgrade": (HookPhase.POST_SYNC, False),
    "pre-delete": (HookPhase.PRE_DELETE, None),
    "post-delete": (HookPhase.POST_DELETE, None),
}
_NEVER_RUN: Final = frozenset(
    {"pre-rollback", "post-rollback", "test", "test-success", "test-failure"}
)
"""Helm hooks a sync never runs: rollbacks (tether's rollback is a sync to an older
revision, which runs the sync phases) and tests (``helm test`` only)."""
_CRD_INSTALL: Final = "crd-install"
"""Helm 2's CRD hook: the object is an ordinary one (as in Argo CD)."""

_PHASES_HINT: Final = (
    "use PreSync, Sync, PostSync, SyncFail, PreDelete, PostDelete or Skip, comma separated "
    "(Helm's pre-install, pre-upgrade, post-install, post-upgrade, pre-delete, post-delete, "
    "pre-rollback, post-rollback too)"
)

_POLICIES: Final = {
    **{p.value: p for p in DeletePolicy},
    "hook-succeeded": DeletePolicy.HOOK_SUCCEEDED,
    "hook-failed": DeletePolicy.HOOK_FAILED,
    "before-hook-creation": DeletePolicy.BEFORE_HOOK_CREATION,
}


def is_hook(obj: Obj) -> bool:
    """The object carries a hook annotation (any spelling) with a value that is not blank.
    Helm 2's ``crd-install`` alone does not make a hook: the CRD is an ordinary object."""
    found = _hook_annotation(obj)
    return found is not None and set(_names(found[1])) - {_CRD_INSTALL} != set()


def hook_of(m: Manifest, *, first_install: bool) -> Hook | None:
    """The hook ``m`` is, or None for a plain object. Raises ``InvalidSpec`` naming the
    object and its file for an unknown phase or delete policy.

    ``first_install`` (the app was never deployed before this operation) decides Helm's
    install hooks against its upgrade hooks. Helm's ``pre-rollback`` and ``post-rollback``
    (and test hooks, which the Helm renderer drops) map to no phase: such a hook is returned
    with empty ``phases`` and never runs in a sync. ``Skip`` gives ``phases == {SKIP}``: the
    object is never applied, whatever other phases it names.
    """
    if not is_hook(m.obj):
        return None
    found = _hook_annotation(m.obj)
    assert found is not None
    key, value = found
    return Hook(
        manifest=m,
        phases=_phases(m, key, value, first_install),
        hook_type=value.strip(),
        delete_policies=_delete_policies(m),
        weight=_weight(m),
    )


def mark(app: Application, obj: Obj) -> Obj:
    """A copy of the hook object ``obj`` marked as a hook of ``app`` (see the module's
    docstring): never with the app's tracking id."""
    from tether.api.application import APP_LABEL  # the API types import far more than hooks

    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        HOOK_OF_ANNOTATION: f"{app.namespace}/{app.name}",
    }
    meta["labels"] = {
        **(meta.get("labels") or {}),
        APP_LABEL: app.label_value,
        **identity_labels(app.label_value, out),
    }
    return out


def instance_labels(app: Application, hook: Hook) -> dict[str, str]:
    """The labels every instance of ``hook`` carries (Desired.hooks already has them), so the
    instances a hook left behind are found again, ``generateName`` ones included."""
    return identity_labels(app.label_value, hook.manifest.obj)


def instance_selector(app: Application, hook: Hook) -> str:
    """A label selector for every instance of ``hook`` (list with the hook's kind and
    namespace)."""
    return ",".join(f"{k}={v}" for k, v in sorted(instance_labels(app, hook).items()))


def identity_labels(app_label_value: str, obj: Obj) -> dict[str, str]:
    """:func:`instance_labels` from the app's label value and the hook object."""
    return {INSTANCE_OF_LABEL: app_label_value, HOOK_ID_LABEL: hook_id(obj)}


def hook_id(obj: Obj) -> str:
    """16 hex digits of a hash of the hook's group, kind, namespace and its name (or
    generateName): the same for every instance of one hook in the repository."""
    meta = obj.get("metadata") or {}
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    name = str(meta.get("name") or "") or "generateName=" + str(meta.get("generateName") or "")
    text = "/".join((group, str(obj.get("kind") or ""), str(meta.get("namespace") or ""), name))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe(m: Manifest) -> str:
    """``Job ns/name`` (or ``Job ns/prefix-*`` for a generateName hook), for messages."""
    meta = m.obj.get("metadata") or {}
    name = str(meta.get("name") or "") or f"{meta.get('generateName') or ''}*"
    namespace = str(meta.get("namespace") or "")
    return f"{m.obj.get('kind')} {namespace}/{name}" if namespace else f"{m.obj.get('kind')} {name}"


# --- reading the annotations ----------------------------------------------------------------


def _annotations(obj: Obj) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    ann = meta.get("annotations") if isinstance(meta, Mapping) else None
    return ann if isinstance(ann, Mapping) else {}


def _first(obj: Obj, keys: tuple[str, ...]) -> tuple[str, str] | None:
    """(key, value) of the first of ``keys`` the object sets to something other than blanks."""
    ann = _annotations(obj)
    for key in keys:
        value = ann.get(key)
        if value is not None and str(value).strip():
            return key, str(value)
    return None


def _spellings(name: str) -> tuple[str, str]:
    return TETHER_PREFIX + name, ARGOCD_PREFIX + name


_HOOK_KEYS: Final = (*_spellings(HOOK), HELM_HOOK)
_POLICY_KEYS: Final = (*_spellings(HOOK_DELETE_POLICY), HELM_DELETE_POLICY)
_WEIGHT_KEYS: Final = (*_spellings(SYNC_WAVE), HOOK_WEIGHT, HELM_HOOK_WEIGHT)


def _hook_annotation(obj: Obj) -> tuple[str, str] | None:
    """(key, value) of the hook annotation that applies: tether's, Argo CD's, then Helm's."""
    return _first(obj, _HOOK_KEYS)


def _names(value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]


def _where(m: Manifest) -> str:
    if m.source_file and m.line:
        return f"{m.source_file}:{m.line}: "
    return f"{m.source_file}: " if m.source_file else ""


def _phases(m: Manifest, key: str, value: str, first_install: bool) -> frozenset[HookPhase]:
    phases: set[HookPhase] = set()
    for name in _names(value):
        tether = _TETHER_PHASES.get(name)
        if tether is HookPhase.SKIP:
            return frozenset({HookPhase.SKIP})
        if tether is not None:
            phases.add(tether)
            continue
        helm = name.lower()
        if helm in _HELM_PHASES:
            phase, install = _HELM_PHASES[helm]
            if install is None or install == first_install:
                phases.add(phase)
        elif helm not in _NEVER_RUN and helm != _CRD_INSTALL:
            raise InvalidSpec(
                f"{_where(m)}{describe(m)}: annotation {key} names an unknown hook phase {name!r}",
                hint=_PHASES_HINT,
            )
    return frozenset(phases)


def _delete_policies(m: Manifest) -> frozenset[DeletePolicy]:
    found = _first(m.obj, _POLICY_KEYS)
    if found is None or not _names(found[1]):
        return frozenset({DeletePolicy.BEFORE_HOOK_CREATION})
    key, value = found
    out: set[DeletePolicy] = set()
    for name in _names(value):
        policy = _POLICIES.get(name)
        if policy is None:
            raise InvalidSpec(
                f"{_where(m)}{describe(m)}: annotation {key} names an unknown delete policy "
                f"{name!r}",
                hint="use HookSucceeded, HookFailed or BeforeHookCreation, comma separated "
                "(Helm's hook-succeeded, hook-failed, before-hook-creation too)",
            )
        out.add(policy)
    return frozenset(out)


def _weight(m: Manifest) -> int:
    found = _first(m.obj, _WEIGHT_KEYS)
    if found is None:
        return 0
    key, value = found
    try:
        return int(value.strip())
    except ValueError:
        raise InvalidSpec(
            f"{_where(m)}{describe(m)}: annotation {key} is {value!r}, not a whole number",
            hint='a wave or hook weight is an integer, quoted in YAML: "-1", "0", "5"',
        ) from None
