"""Sync and compare options: the one parser of ``spec.syncPolicy.syncOptions`` and of the
per-object ``tether.dev/sync-options`` and ``tether.dev/compare-options`` annotations (Argo CD's
``argocd.argoproj.io/...`` spellings read as aliases), and the rule that an object's own
option wins over the app's.

An option tether does not know, a value it does not take, or an option given where it has no
meaning (``CreateNamespace`` on an object) is an ``InvalidSpec`` naming it, never ignored.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from tether.errors import InvalidSpec
from tether.model import Manifest, ResourceKey
from tether.sync.annotations import COMPARE_OPTIONS, SYNC_OPTIONS, annotation_with_key

PRUNE: Final = "Prune"
DELETE: Final = "Delete"
PRUNE_LAST: Final = "PruneLast"
REPLACE: Final = "Replace"
FORCE: Final = "Force"
SERVER_SIDE_APPLY: Final = "ServerSideApply"
VALIDATE: Final = "Validate"
SKIP_DRY_RUN: Final = "SkipDryRunOnMissingResource"
RESPECT_IGNORE: Final = "RespectIgnoreDifferences"
CREATE_NAMESPACE: Final = "CreateNamespace"
FAIL_ON_SHARED: Final = "FailOnSharedResource"
PROPAGATION: Final = "PrunePropagationPolicy"
OUT_OF_SYNC_ONLY: Final = "ApplyOutOfSyncOnly"
CSA_MIGRATION: Final = "ClientSideApplyMigration"
DRY_RUN_NEW: Final = "DryRunNewObjects"

IGNORE_EXTRANEOUS: Final = "IgnoreExtraneous"
SERVER_SIDE_DIFF: Final = "ServerSideDiff"
MUTATION_WEBHOOK: Final = "IncludeMutationWebhook"

_BOOL = ("true", "false")


@dataclass(frozen=True)
class OptionSpec:
    """One option: the values it takes and where it may be given."""

    values: tuple[str, ...] = _BOOL
    app: bool = True
    """Allowed in ``spec.syncPolicy.syncOptions``."""
    obj: bool = True
    """Allowed in an object's sync-options annotation."""


SYNC_SPECS: Final[Mapping[str, OptionSpec]] = {
    PRUNE: OptionSpec(),
    DELETE: OptionSpec(),
    PRUNE_LAST: OptionSpec(),
    REPLACE: OptionSpec(),
    FORCE: OptionSpec(),
    SERVER_SIDE_APPLY: OptionSpec(),
    VALIDATE: OptionSpec(),
    SKIP_DRY_RUN: OptionSpec(),
    RESPECT_IGNORE: OptionSpec(),
    CREATE_NAMESPACE: OptionSpec(obj=False),
    FAIL_ON_SHARED: OptionSpec(obj=False),
    PROPAGATION: OptionSpec(values=("foreground", "background", "orphan"), obj=False),
    OUT_OF_SYNC_ONLY: OptionSpec(obj=False),
    CSA_MIGRATION: OptionSpec(obj=False),
    DRY_RUN_NEW: OptionSpec(),
}
"""Every sync option tether knows (see docs/sync-options.md)."""

COMPARE_SPECS: Final[Mapping[str, OptionSpec]] = {
    IGNORE_EXTRANEOUS: OptionSpec(),
    SERVER_SIDE_DIFF: OptionSpec(),
    MUTATION_WEBHOOK: OptionSpec(),
}
"""Every compare option tether knows; ``IgnoreExtraneous`` may be written without a value."""

_REFUSED_VALUES: Final[Mapping[tuple[str, str], str]] = {
    (PRUNE, "confirm"): "tether has no prune confirmation: use Prune=false and prune by hand",
    (DELETE, "confirm"): "tether has no delete confirmation: use Delete=false",
}


def parse_entries(
    entries: Iterable[str],
    where: str,
    *,
    specs: Mapping[str, OptionSpec] = SYNC_SPECS,
    scope: str = "app",
    bare: bool = False,
) -> dict[str, str]:
    """``["Name=value", ...]`` as ``{Name: value}``, values lower-cased.

    ``where`` starts every message (the Application or the object and its annotation);
    ``scope`` is ``"app"`` or ``"object"``; ``bare`` lets an entry without ``=`` mean
    ``Name=true`` (compare options). Raises ``InvalidSpec`` on the first bad entry.
    """
    out: dict[str, str] = {}
    for raw in entries:
        entry = str(raw).strip()
        if not entry:
            continue
        name, sep, value = entry.partition("=")
        name, value = name.strip(), value.strip().lower()
        if not sep:
            if not bare:
                raise InvalidSpec(
                    f"{where}: sync option {entry!r} must be Name=value",
                    hint="for example Prune=false",
                )
            value = "true"
        spec = specs.get(name)
        if spec is None:
            raise InvalidSpec(f"{where}: unknown option {name!r}", hint=_unknown_hint(name, specs))
        if scope == "app" and not spec.app:
            raise InvalidSpec(
                f"{where}: option {name} is only read from objects' annotations",
                hint=f"move {name} to the annotation of the objects it is for",
            )
        if scope == "object" and not spec.obj:
            raise InvalidSpec(
                f"{where}: option {name} applies to the whole app, not to one object",
                hint=f"set {name}={value} in spec.syncPolicy.syncOptions of the Application",
            )
        refused = _REFUSED_VALUES.get((name, value))
        if refused is not None:
            raise InvalidSpec(f"{where}: {name}={value} is not supported", hint=refused)
        if value not in spec.values:
            raise InvalidSpec(
                f"{where}: option {name} does not take the value {value!r}",
                hint=f"use {' or '.join(f'{name}={v}' for v in spec.values)}",
            )
        out[name] = value
    return out


def _unknown_hint(name: str, specs: Mapping[str, OptionSpec]) -> str:
    close = difflib.get_close_matches(name, list(specs), n=1)
    if close:
        return f"did you mean {close[0]}? Option names are case-sensitive"
    return f"known options: {', '.join(sorted(specs))}"


def parse_app_options(entries: Iterable[Any], where: str) -> dict[str, str]:
    """``spec.syncPolicy.syncOptions`` of the Application ``where`` names."""
    if isinstance(entries, str | bytes) or not isinstance(entries, Iterable):
        raise InvalidSpec(
            f"{where}: spec.syncPolicy.syncOptions must be a list",
            hint="write it as syncOptions: [CreateNamespace=true]",
        )
    return parse_entries(
        (str(e) for e in entries), f"{where}: spec.syncPolicy.syncOptions", scope="app"
    )


def object_options(obj: Mapping[str, Any], *, strict: bool = False) -> dict[str, str]:
    """The object's own sync options (``tether.dev/sync-options``, else Argo CD's
    annotation). ``strict`` raises ``InvalidSpec`` on a bad entry (a manifest from Git);
    otherwise a bad entry is dropped (a live object: never block a prune or delete on it)."""
    return _annotation_options(obj, SYNC_OPTIONS, SYNC_SPECS, strict=strict, bare=False)


def compare_options(obj: Mapping[str, Any], *, strict: bool = False) -> dict[str, str]:
    """The object's compare options (``tether.dev/compare-options``, else Argo CD's)."""
    return _annotation_options(obj, COMPARE_OPTIONS, COMPARE_SPECS, strict=strict, bare=True)


def _annotation_options(
    obj: Mapping[str, Any],
    name: str,
    specs: Mapping[str, OptionSpec],
    *,
    strict: bool,
    bare: bool,
) -> dict[str, str]:
    found = annotation_with_key(obj, name)
    if found is None:
        return {}
    key, value = found
    entries = value.split(",")
    where = f"{object_name(obj)}: annotation {key}"
    if strict:
        return parse_entries(entries, where, specs=specs, scope="object", bare=bare)
    out: dict[str, str] = {}
    for entry in entries:
        try:
            out.update(parse_entries([entry], where, specs=specs, scope="object", bare=bare))
        except InvalidSpec:
            continue
    return out


def check_object_options(
    manifests: Iterable[Manifest], sources: Mapping[ResourceKey, Manifest]
) -> None:
    """Raises ``InvalidSpec`` for the first manifest whose sync or compare options tether
    does not know, naming the file and line it came from."""
    for m in manifests:
        try:
            object_options(m.obj, strict=True)
            compare_options(m.obj, strict=True)
        except InvalidSpec as e:
            src = sources.get(m.key, m)
            where = f"{src.source_file}:{src.line}: " if src.source_file else ""
            raise InvalidSpec(where + e.message, hint=e.hint) from e


def object_name(obj: Mapping[str, Any]) -> str:
    """``Kind namespace/name`` for messages."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or ""
    return f"{obj.get('kind', '?')} {ns + '/' if ns else ''}{meta.get('name', '?')}"


@dataclass(frozen=True)
class SyncOptions:
    """The app's options, and each object's effective ones: the object's own annotation
    wins, in either direction (``Prune=true`` on an object overrides ``Prune=false`` on the
    app), as Argo CD documents."""

    app: Mapping[str, str] = field(default_factory=dict)

    def value(self, name: str, obj: Mapping[str, Any] | None = None) -> str:
        """The option's value for ``obj`` (or app-wide), ``""`` when unset."""
        if obj is not None:
            own = object_options(obj).get(name)
            if own is not None:
                return own
        return self.app.get(name, "")

    def enabled(self, name: str, obj: Mapping[str, Any] | None = None) -> bool:
        return self.value(name, obj) == "true"

    def disabled(self, name: str, obj: Mapping[str, Any] | None = None) -> bool:
        return self.value(name, obj) == "false"

    @property
    def propagation(self) -> str:
        """The prune deletions' propagation policy as the API spells it (default
        ``Foreground``)."""
        return (self.app.get(PROPAGATION) or "foreground").capitalize()
