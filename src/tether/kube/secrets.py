"""Reading a Secret's values as text, one bad key at a time.

A Secret may hold binary values (a DER certificate made with ``--from-file``) next to the
text ones tether reads. Such a key is skipped with a warning naming the Secret and the key,
never its value, so one stray file cannot break every app or webhook that reads the Secret.
"""

from __future__ import annotations

import base64
import binascii
import logging

from tether.model import Obj

log = logging.getLogger(__name__)

_warned: set[tuple[str, str, str, str]] = set()
"""(namespace, name, resourceVersion, key) already warned about: once per version of a key."""
_WARNED_LIMIT = 4096


def decode_secret_data(secret: Obj) -> dict[str, str]:
    """The Secret's ``data`` decoded as UTF-8 text, then its ``stringData`` on top; keys
    whose value is not base64 of UTF-8 text are left out."""
    meta = secret.get("metadata") or {}
    out: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            out[key] = base64.b64decode(str(value), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as e:
            _warn_once(meta, key, e)
    out.update({k: str(v) for k, v in (secret.get("stringData") or {}).items()})
    return out


def _warn_once(meta: Obj, key: str, e: Exception) -> None:
    seen = (
        str(meta.get("namespace", "")),
        str(meta.get("name", "")),
        str(meta.get("resourceVersion", "")),
        key,
    )
    if seen in _warned:
        return
    if len(_warned) >= _WARNED_LIMIT:
        _warned.clear()
    _warned.add(seen)
    what = "not UTF-8 text" if isinstance(e, UnicodeDecodeError) else "not valid base64"
    log.warning(
        "Secret %s/%s: ignoring key %r: its value is %s (tether reads only text values; "
        "move binary files to another Secret)",
        seen[0],
        seen[1],
        key,
        what,
    )
