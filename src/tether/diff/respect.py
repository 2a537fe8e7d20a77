"""``RespectIgnoreDifferences=true``: fields that ``ignoreDifferences`` names keep their live
value when the object is applied, instead of being set back to Git's.

The ignore rules are run on the manifest and on the live object (as for the diff); what the
rules removed from the live object is put back into the manifest, and what they removed from
the manifest but the live object lacks stays out. A list a rule touched is taken whole from
the live object. An object not yet in the cluster is applied as Git has it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from tether.diff.ignore import IgnoreRule, apply_ignores
from tether.diff.normalize import ABSENT
from tether.model import Obj, ResourceKey


def keep_ignored_fields(
    key: ResourceKey, desired: Obj, live: Obj | None, rules: Iterable[IgnoreRule]
) -> Obj:
    """``desired`` with every field the rules ignore set to its live value (or left out when
    the live object does not have it)."""
    rules = [r for r in rules if r.matches(key)]
    if live is None or not rules:
        return desired
    kept_desired, kept_live = apply_ignores(key, desired, live, rules)
    if kept_desired is desired and kept_live is live:
        return desired
    out = copy.deepcopy(kept_desired)
    _restore(out, live, kept_live)
    return out


def _restore(target: dict[str, Any], live: dict[str, Any], kept: Any) -> None:
    """Copies into ``target`` what ``live`` has and ``kept`` (live after the ignores) lost."""
    kept_map = kept if isinstance(kept, dict) else {}
    for k, value in live.items():
        after = kept_map.get(k, ABSENT)
        if after is ABSENT:
            target[k] = copy.deepcopy(value)
        elif after != value:
            if isinstance(value, dict) and isinstance(after, dict):
                sub = target.get(k)
                if not isinstance(sub, dict):
                    sub = target[k] = {}
                _restore(sub, value, after)
            else:
                target[k] = copy.deepcopy(value)
