"""The render cache: rendered manifests keyed by the content of everything the render reads.

The key is a sha256 over the render type, the tool's version, every field of the source spec
that changes output, the destination namespace, release name and cluster facts, and the git
object ids of the paths the renderer reads (its ``inputs``; the whole tree when it cannot
say) plus those of each ``$ref`` file. The same inputs never render twice, in any app: a
monorepo commit that touches one app's directory renders that app alone. One cache serves
every app of the process; it holds a bounded number of entries, least recently used out
first, and size 0 turns it off.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tether.api.source import Source
from tether.model import Manifest

# Fields of a Source that do not change what it renders: where the files come from and
# which revision was asked for are covered by the object ids; verify only gates the commit.
_NOT_OUTPUT = ("repo_url", "target_revision", "ref", "name", "verify")


@dataclass(frozen=True)
class RenderInputs:
    """Everything a render's output depends on."""

    render_type: str
    tool_version: str
    source: Source
    path: str
    destination_namespace: str
    release_name: str
    kube_version: str
    api_versions: tuple[str, ...]
    content: tuple[tuple[str, str], ...]
    """(path, git object id) of every input, ``$ref`` files as ``$<ref>/path``; for a chart
    from a Helm repository, its repository, name, version and digest."""


def render_key(inputs: RenderInputs) -> str:
    """The hex sha256 of ``inputs``: equal inputs give equal keys, any change a new one."""
    spec = dataclasses.asdict(inputs.source)
    for name in _NOT_OUTPUT:
        spec.pop(name, None)
    doc: dict[str, Any] = {
        "type": inputs.render_type,
        "tool": inputs.tool_version,
        "spec": spec,
        "path": inputs.path,
        "namespace": inputs.destination_namespace,
        "release": inputs.release_name,
        "kube": inputs.kube_version,
        "apis": sorted(inputs.api_versions),
        "content": sorted(inputs.content),
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def content_ids(
    paths: Sequence[str] | None, object_id: Callable[[str], str | None]
) -> list[tuple[str, str]]:
    """``(path, object id)`` of each path a renderer reads (``""``: missing), or of the whole
    tree when it cannot name them (``None``)."""
    wanted = [""] if paths is None else sorted(set(paths))
    return [(p, object_id(p) or "") for p in wanted]


class RenderCache:
    """Rendered manifests (before they are marked as an app's) by ``render_key``.

    ``renders_total`` counts renders done through it, ``hits_total`` the renders it saved;
    two apps asking for the same key at once share one render.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        """Entries kept; 0 keeps none (every request renders)."""
        self.renders_total = 0
        self.hits_total = 0
        self._entries: OrderedDict[str, list[Manifest]] = OrderedDict()
        self._running: dict[str, asyncio.Future[list[Manifest]]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> list[Manifest] | None:
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
            self.hits_total += 1
            return list(hit)
        return None

    def holds(self, key: str) -> bool:
        """Whether ``key``'s manifests are here; counted neither as a hit nor as a render."""
        return key in self._entries

    def put(self, key: str, manifests: list[Manifest]) -> None:
        if self.size <= 0:
            return
        self._entries[key] = list(manifests)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    async def get_or_render(
        self,
        key: str,
        render: Callable[[], Awaitable[list[Manifest]]],
        render_type: str = "",
    ) -> list[Manifest]:
        """The cached manifests of ``key``, or ``render()``'s, kept for next time. A render
        that raises is not kept: the next request tries again. ``render_type`` names what
        renders, for subclasses that report it (metrics)."""
        hit = self.get(key)
        if hit is not None:
            return hit
        running = self._running.get(key)
        if running is not None:
            try:
                shared = await asyncio.shield(running)
            except asyncio.CancelledError:
                if not running.cancelled():
                    raise  # this caller was cancelled, not the render it waited on
            else:
                self.hits_total += 1
                return list(shared)
        future: asyncio.Future[list[Manifest]] = asyncio.get_running_loop().create_future()
        if self.size > 0:
            self._running[key] = future
        try:
            self.renders_total += 1
            manifests = await render()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: asyncio need not report it when nobody waits
            raise
        else:
            self.put(key, manifests)
            future.set_result(manifests)
            return list(manifests)
        finally:
            if self._running.get(key) is future:
                del self._running[key]
