"""``Manifest.key``: worked out once per object, and anew for a new object."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from tether.model import Manifest, ResourceKey

pytestmark = pytest.mark.unit


def cm(name: str, namespace: str = "") -> dict[str, object]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def test_the_key_is_the_objects() -> None:
    m = Manifest(cm("a", "ns"), "app/a.yaml", 3)
    assert m.key == ResourceKey("", "ConfigMap", "ns", "a")
    assert m.key is m.key


def test_a_new_object_gets_a_new_key() -> None:
    m = Manifest(cm("a", "ns"))
    assert m.key.name == "a"
    m.obj = cm("b", "other")
    assert m.key == ResourceKey("", "ConfigMap", "other", "b")
    replaced = dataclasses.replace(m, obj=cm("c"))
    assert replaced.key == ResourceKey("", "ConfigMap", "", "c")
    assert m.key.name == "b"


def test_a_copy_keeps_its_own_key_and_equality_ignores_it() -> None:
    m = Manifest(cm("a", "ns"))
    assert m.key.name == "a"
    twin = copy.deepcopy(m)
    assert twin == m and twin.key == m.key
    twin.obj = cm("z", "ns")
    assert twin.key.name == "z" and m.key.name == "a"
    assert Manifest(cm("a", "ns")) == m  # the remembered key is not compared
