"""Each Application's document (``app_document``) and its JSON, made once per change: the
list, the stream's snapshot and its events then cost a lookup per app, not a copy, a masking
walk and an encoding per reader."""

from __future__ import annotations

import json

from tether.model import Obj
from tether.service.documents import app_document

MAX_ENTRIES = 50_000
"""Past this many apps kept, start again: deleted Applications are not looked for, so this
bounds what they leave behind."""


class DocumentCache:
    def __init__(self) -> None:
        self._docs: dict[tuple[str, str], tuple[tuple[str, str], bytes]] = {}

    def json(self, obj: Obj) -> bytes:
        """``app_document(obj)`` encoded as JSON, from the cache while the object's uid and
        resourceVersion are the same."""
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        version = (str(meta.get("uid") or ""), str(meta.get("resourceVersion") or ""))
        hit = self._docs.get(key)
        if hit is not None and hit[0] == version and version[1]:
            return hit[1]
        encoded = json.dumps(app_document(obj), separators=(",", ":")).encode()
        if len(self._docs) >= MAX_ENTRIES:
            self._docs.clear()
        self._docs[key] = (version, encoded)
        return encoded
