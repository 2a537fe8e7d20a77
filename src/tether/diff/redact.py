"""Secret redaction: a diff of a Secret shows which keys changed, never a value.

Every value under ``data`` and ``stringData`` of a core-group Secret is replaced by a fixed mask,
so neither the value, its base64 form nor its length can be read from any output. Compared in
pairs (``redact_pair``), each key gets:

* ``********`` on both sides when the two values are equal, so the key shows no change;
* ``********`` on the live side and ``******** (changed)`` on the predicted side when they
  differ, so the diff has a ``-``/``+`` pair for exactly that key;
* ``********`` on the one side that has it, so an added or removed key shows as such.

The ``kubectl.kubernetes.io/last-applied-configuration`` annotation is removed from Secrets
because it carries the whole object, values included, in plain text.
"""

from __future__ import annotations

from typing import Any

from tether.model import Obj

MASK = "********"
CHANGED_MASK = "******** (changed)"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_VALUE_FIELDS = ("data", "stringData")


def is_secret(obj: Obj) -> bool:
    """True for a core-group Secret; a CRD that happens to be named Secret keeps its values."""
    return obj.get("kind") == "Secret" and "/" not in str(obj.get("apiVersion") or "v1")


def redact(obj: Obj) -> Obj:
    """``obj`` with every Secret value masked; other kinds are returned as they are.

    The input is never modified: the parts that change are copied, the rest is shared.
    """
    if not is_secret(obj):
        return obj
    out = dict(obj)
    for field in _VALUE_FIELDS:
        if field in out:
            out[field] = _mask_all(out[field])
    _drop_last_applied(out)
    return out


def redact_pair(predicted: Obj, live: Obj) -> tuple[Obj, Obj]:
    """Both sides with Secret values masked so that only *whether* each value changed shows.

    Masking applies when either side is a Secret. Inputs are never modified.
    """
    if not (is_secret(predicted) or is_secret(live)):
        return predicted, live
    p, lv = dict(predicted), dict(live)
    for field in _VALUE_FIELDS:
        p_has, l_has = field in p, field in lv
        if p_has and l_has:
            p[field], lv[field] = _mask_values(p[field], lv[field])
        elif p_has:
            p[field] = _mask_all(p[field])
        elif l_has:
            lv[field] = _mask_all(lv[field])
    _drop_last_applied(p)
    _drop_last_applied(lv)
    return p, lv


def _mask_all(values: Any) -> Any:
    if values is None:
        return None
    return {k: MASK for k in values} if isinstance(values, dict) else MASK


def _mask_values(predicted: Any, live: Any) -> tuple[Any, Any]:
    if not (isinstance(predicted, dict) and isinstance(live, dict)):
        if predicted is None or live is None:
            return _mask_all(predicted), _mask_all(live)
        return (MASK if predicted == live else CHANGED_MASK), MASK
    p = {k: (MASK if k not in live or live[k] == v else CHANGED_MASK) for k, v in predicted.items()}
    return p, {k: MASK for k in live}


def _drop_last_applied(obj: Obj) -> None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return
    annotations = meta.get("annotations")
    if isinstance(annotations, dict) and LAST_APPLIED in annotations:
        annotations = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
        meta = dict(meta)
        if annotations:
            meta["annotations"] = annotations
        else:
            del meta["annotations"]
        obj["metadata"] = meta
