"""Objects kept compact (``tether.compact``): what comes back is what went in, a copy of its
own each time, and a typical live object takes less than its JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tether.compact import decode, encode

pytestmark = pytest.mark.unit

CONFIGMAP: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {
        "name": "cm-29-1",
        "namespace": "team-a",
        "uid": "e7ba7759-d449-4971-8ec6-cbc205e01e9d",
        "resourceVersion": "578565",
        "labels": {"tether.dev/app": "apps_web"},
        "annotations": {"tether.dev/tracking-id": "apps_web:/ConfigMap:team-a/cm-29-1"},
        "managedFields": [
            {
                "manager": "tether",
                "operation": "Apply",
                "apiVersion": "v1",
                "time": "2026-11-29T09:22:22Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:data": {"f:index": {}, "f:payload": {}},
                    "f:metadata": {"f:labels": {"f:tether.dev/app": {}}},
                },
            }
        ],
    },
    "data": {"index": "1", "payload": "x" * 200},
}


@pytest.mark.parametrize(
    "obj",
    [
        {},
        CONFIGMAP,
        {"data": {"ünïcødé": "名前", "empty": "", "n": 3, "f": 1.5, "t": True, "none": None}},
        {"items": [[], [{}], {"deep": {"er": {"still": ["x"] * 100}}}]},
    ],
)
def test_what_comes_back_is_what_went_in(obj: dict[str, Any]) -> None:
    assert decode(encode(obj)) == obj


def test_each_read_is_a_copy_of_its_own() -> None:
    raw = encode(CONFIGMAP)
    first = decode(raw)
    first["data"]["index"] = "changed"
    first["metadata"]["labels"].clear()
    assert decode(raw) == CONFIGMAP


def test_a_live_object_takes_less_than_its_json() -> None:
    size = len(json.dumps(CONFIGMAP, separators=(",", ":")).encode())
    assert len(encode(CONFIGMAP)) < size / 2
