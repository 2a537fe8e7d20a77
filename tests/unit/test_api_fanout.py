"""The event stream's fan-out: every subscriber gets every change through its own bounded
queue; one that falls behind is dropped and never holds the others up."""

from __future__ import annotations

import asyncio
import json
from typing import cast

import pytest

from tether.engine import Engine
from tether.server.api.context import ApiContext
from tether.server.api.doccache import DocumentCache
from tether.server.api.stream import AppStream, StreamEnded, Subscriber, event_text

pytestmark = pytest.mark.unit


def app(name: str, rv: str) -> dict[str, object]:
    return {"metadata": {"namespace": "apps", "name": name, "resourceVersion": rv}}


def stream() -> AppStream:
    # The watch is not started here: changes are fed in as the watch would.
    ctx = ApiContext(
        engine=cast(Engine, None), namespaces=lambda: ["apps"], identity="t", version="0"
    )
    return AppStream(ctx, queue_size=2)


async def test_a_slow_subscriber_is_dropped_and_the_others_keep_receiving() -> None:
    s = stream()
    slow, fast = Subscriber(asyncio.Queue(2)), Subscriber(asyncio.Queue(10))
    s.subscribers |= {slow, fast}
    for i in range(3):
        s.apply_change("ADDED" if i == 0 else "MODIFIED", app("web", str(i)))
    assert slow.ended.is_set() and "fell behind" in slow.reason
    assert slow not in s.subscribers and fast in s.subscribers
    got = [await fast.next(1) for _ in range(3)]
    assert [(k, o["metadata"]["resourceVersion"]) for k, o in got if o] == [  # type: ignore[index]
        ("ADDED", "0"),
        ("MODIFIED", "1"),
        ("MODIFIED", "2"),
    ]
    with pytest.raises(StreamEnded):
        await slow.next(1)


async def test_an_unchanged_object_and_an_unknown_delete_send_nothing() -> None:
    s = stream()
    sub = Subscriber(asyncio.Queue(10))
    s.subscribers.add(sub)
    s.apply_change("ADDED", app("web", "5"))
    s.apply_change("MODIFIED", app("web", "5"))  # a relist of the same version
    s.apply_change("DELETED", app("gone", "1"))
    s.apply_change("BOOKMARK", app("", "9"))
    s.apply_change("DELETED", app("web", "6"))
    assert [sub.queue.get_nowait()[0] for _ in range(sub.queue.qsize())] == ["ADDED", "DELETED"]
    assert s.apps == {}


async def test_a_quiet_stream_times_out_for_a_keepalive_and_close_ends_it() -> None:
    s = stream()
    sub = Subscriber(asyncio.Queue(10))
    s.subscribers.add(sub)
    assert await sub.next(0.01) is None
    await s.close()
    with pytest.raises(StreamEnded, match="stopping"):
        await sub.next(10)


def test_an_event_is_one_sse_frame_with_the_masked_document() -> None:
    obj = {
        "metadata": {"namespace": "apps", "name": "web", "managedFields": [{"manager": "x"}]},
        "spec": {"source": {"repoURL": "https://user:tok3n@git.example.com/x.git"}},
    }
    text = event_text("MODIFIED", DocumentCache().json(obj)).decode()
    assert text.startswith("event: application\ndata: {") and text.endswith("}\n\n")
    assert text.count("\n") == 3
    assert "tok3n" not in text and "managedFields" not in text
    assert json.loads(text.split("data: ", 1)[1]) == {
        "type": "MODIFIED",
        "application": {
            "metadata": {"namespace": "apps", "name": "web"},
            "spec": {"source": {"repoURL": "https://***@git.example.com/x.git"}},
        },
    }


def test_a_document_is_made_again_only_when_the_app_changed() -> None:
    cache = DocumentCache()
    obj = {"metadata": {"namespace": "a", "name": "web", "uid": "u1", "resourceVersion": "1"}}
    first = cache.json(obj)
    assert cache.json(obj) is first
    changed = {**obj, "metadata": {**obj["metadata"], "resourceVersion": "2"}, "spec": {"x": 1}}
    assert b'"x":1' in cache.json(changed)
    # The same name, a new object (deleted and created again) at the same resourceVersion.
    again = {**changed, "metadata": {**changed["metadata"], "uid": "u2"}, "spec": {"x": 2}}
    assert b'"x":2' in cache.json(again)
