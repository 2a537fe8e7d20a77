"""Hooks through the renderers' parsing: Helm hooks named by ``generateName`` (twice with the
same prefix), an ordinary object with ``generateName`` refused, and test hooks still dropped."""

from __future__ import annotations

import pytest

from tether.errors import RenderError
from tether.model import Manifest
from tether.render.helm_output import ChartPaths, manifests_from_output
from tether.sync.hooks import HookPhase, hook_of

pytestmark = pytest.mark.unit

PATHS = ChartPaths("shop", "apps/shop")

OUTPUT = b"""\
---
# Source: shop/templates/config.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: shop
---
# Source: shop/templates/migrate.yaml
apiVersion: batch/v1
kind: Job
metadata:
  generateName: shop-migrate-
  annotations:
    "helm.sh/hook": pre-install,pre-upgrade
    "helm.sh/hook-weight": "-1"
    "helm.sh/hook-delete-policy": hook-succeeded
---
# Source: shop/templates/notify.yaml
apiVersion: batch/v1
kind: Job
metadata:
  generateName: shop-migrate-
  annotations:
    "helm.sh/hook": post-install
---
# Source: shop/templates/tests/ping.yaml
apiVersion: v1
kind: Pod
metadata:
  generateName: shop-ping-
  annotations:
    "helm.sh/hook": test
"""


def hook_names(manifests: list[Manifest], *, first_install: bool) -> list[tuple[str, set[str]]]:
    out = []
    for m in manifests:
        hook = hook_of(m, first_install=first_install)
        if hook is not None:
            out.append((m.source_file, {str(p) for p in hook.phases}))
    return out


def test_helm_hooks_may_be_named_by_generate_name() -> None:
    manifests = manifests_from_output(OUTPUT, PATHS)
    assert [m.source_file for m in manifests] == [
        "apps/shop/templates/config.yaml",
        "apps/shop/templates/migrate.yaml",
        "apps/shop/templates/notify.yaml",
    ]
    assert hook_names(manifests, first_install=True) == [
        ("apps/shop/templates/migrate.yaml", {HookPhase.PRE_SYNC.value}),
        ("apps/shop/templates/notify.yaml", {HookPhase.POST_SYNC.value}),
    ]
    assert hook_names(manifests, first_install=False) == [
        ("apps/shop/templates/migrate.yaml", {HookPhase.PRE_SYNC.value}),
        ("apps/shop/templates/notify.yaml", set()),
    ]


def test_an_ordinary_object_named_by_generate_name_is_refused_by_the_helm_renderer() -> None:
    output = b"""\
---
# Source: shop/templates/config.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  generateName: shop-
"""
    with pytest.raises(RenderError) as e:
        manifests_from_output(output, PATHS)
    assert (
        e.value.message
        == "apps/shop/templates/config.yaml:3: ConfigMap object has no metadata.name"
    )
