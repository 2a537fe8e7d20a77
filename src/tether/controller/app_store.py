"""The Applications a controller knows, as last seen (from its watch or its own writes).

Kept encoded (``tether.compact``): an Application with a synced status is about 25 KiB of
Python objects and 4 KiB of JSON, and a controller holds thousands. Reading one decodes a
copy of its own: a caller that changes it changes nothing here until it stores it again.
Each app's resourceVersion and sources are kept beside it, so that telling an older copy
from a newer one, or finding the apps a webhook push or a moved branch concerns, decodes
nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

from tether.compact import decode, encode
from tether.controller.queue import AppKey
from tether.controller.sources import SourceRef, source_refs
from tether.model import Obj, resource_version


class AppStore(MutableMapping[AppKey, Obj]):
    def __init__(self) -> None:
        self._raw: dict[AppKey, bytes] = {}
        self._versions: dict[AppKey, int] = {}
        self._sources: dict[AppKey, tuple[SourceRef, ...]] = {}

    def version(self, key: AppKey) -> int:
        """The resourceVersion of the app as stored (0: not stored, or never written to the
        API server)."""
        return self._versions.get(key, 0)

    def sources(self) -> list[tuple[AppKey, tuple[SourceRef, ...]]]:
        """Every app's sources (``source_refs``), as stored."""
        return list(self._sources.items())

    def __getitem__(self, key: AppKey) -> Obj:
        return decode(self._raw[key])

    def __setitem__(self, key: AppKey, obj: Obj) -> None:
        self._raw[key] = encode(obj)
        self._versions[key] = resource_version(obj)
        self._sources[key] = tuple(source_refs(obj))

    def __delitem__(self, key: AppKey) -> None:
        del self._raw[key]
        del self._versions[key]
        del self._sources[key]

    def __contains__(self, key: object) -> bool:
        return key in self._raw

    def __iter__(self) -> Iterator[AppKey]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)
