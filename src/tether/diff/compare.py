"""Drift of one object: the server's dry-run of the Git manifest against the live object.

Both sides passed through the same API server, so defaults agree and plain equality works once
both are cut down to the fields the manifest sets. The manifest itself is only the template for
that cut: the server may store its values in another form (``0.5`` CPU as ``500m``), so they are
compared only when there is no dry-run result to compare instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

import yaml

from tether.diff.ignore import IgnoreRule, apply_ignores
from tether.diff.merge_keys import Shape, shape_of
from tether.diff.normalize import (
    ABSENT,
    align_items,
    is_atomic_list,
    join_path,
    normalize,
    restrict_to,
)
from tether.diff.redact import redact, redact_pair
from tether.model import Obj, ResourceDiff, ResourceDiffStatus, ResourceKey

# The C emitter writes the same YAML several times faster; drift on many objects at once (a
# first sync: everything Missing) is where the time goes.
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def diff_object(
    key: ResourceKey,
    desired: Obj | None,
    predicted: Obj | None,
    live: Obj | None,
    ignore_rules: Iterable[IgnoreRule] = (),
) -> ResourceDiff:
    """Compares one object.

    ``desired`` is the manifest from Git, ``predicted`` the server-side-apply dry-run of it (or
    None when there is none, and the manifest stands in), ``live`` the object in the cluster.
    Missing when there is no live object, Extraneous when Git no longer has it, else Synced or
    OutOfSync. ``diff_text`` is only built when there is something to show.
    """
    if live is None:
        shown = predicted if predicted is not None else desired
        if shown is None:
            raise ValueError(f"{key}: nothing to compare, no manifest and no live object")
        return LazyDiff(key, ResourceDiffStatus.MISSING, lambda: _missing_text(key, shown))
    if desired is None:
        return ResourceDiff(
            key,
            ResourceDiffStatus.EXTRANEOUS,
            diff_text=_unified(key, redact(normalize(live)), None),
        )

    template = normalize(desired)
    before_ignores = predicted if predicted is not None else template
    # Lists are matched by the merge keys the server used for this very object (the dry-run
    # holds our own field set, live everyone's), read before ignores can touch metadata.
    shape = shape_of(predicted, live) or Shape([])
    # Ignores run on the whole objects: JSON pointers index lists as the server orders them.
    ignored_predicted, ignored_live = apply_ignores(key, before_ignores, live, ignore_rules)
    # The template is normalized, so restricting to it also drops what normalize would, without
    # copying the whole of each object first.
    want = restrict_to(ignored_predicted, template, shape)
    have = restrict_to(ignored_live, template, shape)
    if want == have:
        return ResourceDiff(key, ResourceDiffStatus.SYNCED)

    paths: list[str] = []
    _changed_paths(template, have, want, "", shape, paths)
    shown_want, shown_have = redact_pair(want, have)
    return ResourceDiff(
        key,
        ResourceDiffStatus.OUT_OF_SYNC,
        diff_text=_unified(key, shown_have, shown_want),
        changed_paths=paths,
    )


class LazyDiff(ResourceDiff):
    """A diff whose text is written on first read. A first sync finds every object Missing and
    shows few of their texts, if any: writing each as YAML cost more CPU than its apply."""

    def __init__(
        self, key: ResourceKey, status: ResourceDiffStatus, render: Callable[[], str]
    ) -> None:
        super().__init__(key, status)
        self._text: str | None = None
        self._render: Callable[[], str] | None = render

    @property
    def diff_text(self) -> str:
        if self._text is None:
            self._text = self._render() if self._render is not None else ""
            self._render = None
        return self._text

    @diff_text.setter
    def diff_text(self, value: str) -> None:
        self._text, self._render = value, None


def _missing_text(key: ResourceKey, shown: Obj) -> str:
    return _unified(key, None, redact(normalize(shown)))


def _changed_paths(
    template: Any, have: Any, want: Any, path: str, shape: Shape | None, out: list[str]
) -> None:
    """Appends the path of every field that differs, as high up as one side lacks it."""
    if have == want:
        return
    if isinstance(have, dict) and isinstance(want, dict):
        tmpl = template if isinstance(template, dict) else {}
        keys = list(tmpl) + [k for k in (*have, *want) if k not in tmpl]
        for k in dict.fromkeys(keys):
            sub = shape.field(str(k)) if shape is not None else None
            have_k, want_k = have.get(k, ABSENT), want.get(k, ABSENT)
            _changed_paths(tmpl.get(k), have_k, want_k, join_path(path, k), sub, out)
        return
    if (
        isinstance(have, list)
        and isinstance(want, list)
        and isinstance(template, list)
        and not is_atomic_list(template)
    ):
        have_items = {seg: (t, it, sh) for seg, t, it, sh in align_items(template, have, shape)}
        want_items = {seg: (t, it, sh) for seg, t, it, sh in align_items(template, want, shape)}
        for seg in dict.fromkeys([*have_items, *want_items]):
            t, have_item, item_shape = have_items.get(seg, (None, ABSENT, None))
            want_item = want_items.get(seg, (None, ABSENT, None))[1]
            _changed_paths(t, have_item, want_item, path + seg, item_shape, out)
        return
    out.append(path or ".")


def _unified(key: ResourceKey, live: Obj | None, desired: Obj | None) -> str:
    where = "/".join(part for part in (key.kind, key.namespace, key.name) if part)
    return "".join(
        difflib.unified_diff(
            _yaml_lines(live), _yaml_lines(desired), f"live/{where}", f"desired/{where}"
        )
    )


def _yaml_lines(obj: Obj | None) -> list[str]:
    if obj is None:
        return []
    text: str = yaml.dump(obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False)
    return text.splitlines(keepends=True)
