"""What ``tether app pin`` and ``unpin`` print once the pin is written or removed, whoever
wrote it (this command over the Kubernetes API, or tether's API with ``--server``); a pin's
line in ``tether app get`` (``pin_line``) and its mark in ``tether app list`` (``sync_cell``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tether.cli.common import out
from tether.cli.output import escape
from tether.errors import TetherError

if TYPE_CHECKING:
    from tether.model import Obj

# ``tether.pin`` is imported only where a pin is printed: the package brings the engine and
# Git, which ``tether app list`` and ``app get`` of an app that is not pinned do not need.


def print_pinned(name: str, revisions: Sequence[str], by: str, automated: bool) -> None:
    from tether.pin.message import short

    at = ", ".join(short(r) for r in revisions)
    out.print(f"application/{name} pinned at {escape(at)} by {escape(by)}")
    if not automated:
        out.print(f"automated sync is off: deploy the pin with 'tether app sync {name}'")
    out.print(
        "the controller deploys the pinned revision and reports how far behind it falls; "
        f"follow the branch again with 'tether app unpin {name}'"
    )


def print_unpinned(name: str, revisions: Sequence[str], targets: Sequence[str]) -> None:
    from tether.pin.message import short

    held = ", ".join(short(r) for r in revisions)
    out.print(
        f"application/{name} unpinned (was at {escape(held)}): it follows "
        f"{escape(', '.join(targets))} again"
    )


def pin_line(obj: Obj) -> str | None:
    """``tether app get``'s line for a pinned app: what is held, who, when, why, and how
    far behind as the controller last counted (None when the app is not pinned)."""
    raw = (obj.get("spec") or {}).get("pin")
    if not isinstance(raw, dict) or not raw.get("revisions"):
        return None  # not pinned: the spec's parsers need not load
    from tether.api.application import Application

    try:
        app = Application.from_obj(obj)
    except TetherError:
        return None
    pin = app.pin
    if pin is None:
        return None
    from tether.pin.message import commits_behind, short

    held = ", ".join(short(r) for r in pin.revisions)
    text = f"{held} by {pin.by or 'unknown'} at {pin.at or '?'}"
    if pin.reason:
        text += f" ({pin.reason})"
    n = commits_behind(pin, app.status.get("pin"))
    if n is not None:
        text += f"; {n} commit{'' if n == 1 else 's'} behind"
    return f"{text}; unpin with 'tether app unpin {app.name}'"


def sync_cell(obj: Obj) -> str:
    """``tether app list``'s SYNC cell: the sync status, and a pin's mark beside it."""
    st = obj.get("status") or {}
    sync = str((st.get("sync") or {}).get("status", "Unknown"))
    raw = (obj.get("spec") or {}).get("pin")
    if not isinstance(raw, dict) or not raw.get("revisions"):
        return sync
    from tether.api.application import Pin

    pin = Pin(
        revisions=tuple(str(r) for r in raw.get("revisions") or []),
        at=str(raw.get("at") or ""),
    )
    from tether.pin.message import list_mark

    return f"{sync} ({list_mark(pin, st.get('pin'))})"
