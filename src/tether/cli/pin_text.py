"""What ``tether app pin`` and ``unpin`` print once the pin is written or removed, whoever
wrote it (this command over the Kubernetes API, or tether's API with ``--server``)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape

from tether.cli.common import out
from tether.pin import short


def print_pinned(name: str, revisions: Sequence[str], by: str, automated: bool) -> None:
    at = ", ".join(short(r) for r in revisions)
    out.print(f"application/{name} pinned at {escape(at)} by {escape(by)}")
    if not automated:
        out.print(f"automated sync is off: deploy the pin with 'tether app sync {name}'")
    out.print(
        "the controller deploys the pinned revision and reports how far behind it falls; "
        f"follow the branch again with 'tether app unpin {name}'"
    )


def print_unpinned(name: str, revisions: Sequence[str], targets: Sequence[str]) -> None:
    held = ", ".join(short(r) for r in revisions)
    out.print(
        f"application/{name} unpinned (was at {escape(held)}): it follows "
        f"{escape(', '.join(targets))} again"
    )
