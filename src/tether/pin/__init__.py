"""Emergency pin: hold an Application at revisions without writing Git, and say how far behind.

``spec.pin`` (``tether.api.application.Pin``) is written by ``tether app pin`` from what
``resolve`` finds; ``tether.desired.revision_of`` is the one place the pin holds the app;
``behind`` counts, per source, how far its branch has moved past the pin; ``message`` words
it for the ``Pinned`` condition, ``tether app list`` and ``tether app get``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.lazy_names import lazy_names

if TYPE_CHECKING:
    from tether.pin.behind import PinState, SourceBehind, observe
    from tether.pin.message import pin_message, short
    from tether.pin.resolve import PinnedError, refuse_unpinned_revision, resolve_pin

# Loaded on first use: ``tether.pin.message`` (all ``tether app get`` needs to word a pin) does
# not bring ``resolve`` and ``behind``, which read Git.
_WHERE = {
    "PinState": "tether.pin.behind",
    "SourceBehind": "tether.pin.behind",
    "observe": "tether.pin.behind",
    "pin_message": "tether.pin.message",
    "short": "tether.pin.message",
    "PinnedError": "tether.pin.resolve",
    "refuse_unpinned_revision": "tether.pin.resolve",
    "resolve_pin": "tether.pin.resolve",
}

__getattr__ = lazy_names(__name__, _WHERE)


__all__ = [
    "PinState",
    "PinnedError",
    "SourceBehind",
    "observe",
    "pin_message",
    "refuse_unpinned_revision",
    "resolve_pin",
    "short",
]
