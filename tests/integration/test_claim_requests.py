"""Claiming a sync operation on the real control plane: one request when the copy held is
current, and still exactly one winner when it is not (the resourceVersion precondition)."""

from __future__ import annotations

from collections import Counter

import pytest
from own_namespace_app import app, engine, home
from test_engine import AppFixture

from tether.api.application import API_VERSION
from tether.kube import KubeClient
from tether.sync.record import Busy, claim
from tether.sync.state import RUNNING, OperationRequest

_FIXTURES = (app, engine, home)


async def connected(kubeconfig: str) -> KubeClient:
    """A client of our own, its discovery of Applications done (not counted below)."""
    own = await KubeClient.connect(kubeconfig)
    await own.resource_for(API_VERSION, "Application")
    return own


def moved(after: Counter[tuple[str, int]], before: Counter[tuple[str, int]]) -> dict[str, int]:
    """Requests made between two readings of ``KubeClient.requests``, by verb and status."""
    return {f"{v} {s}": n - before[(v, s)] for (v, s), n in after.items() if n != before[(v, s)]}


async def test_a_claim_on_the_copy_just_read_is_one_patch(app: AppFixture, kubeconfig: str) -> None:
    app.repo.commit({"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"})
    a = await app.create()
    own = await connected(kubeconfig)
    try:
        op = app.engine.operation(a, OperationRequest(), run_by="engine-a")
        before = Counter(own.requests)
        claimed = await claim(own, a, op.state)
        assert moved(own.requests, before) == {"PATCH 200": 1}
    finally:
        await own.close()
    assert claimed.status["operationState"]["phase"] == RUNNING
    assert claimed.status["operationState"]["runBy"] == "engine-a"


async def test_a_stale_copy_is_read_again_and_only_one_claim_wins(
    app: AppFixture, kubeconfig: str
) -> None:
    app.repo.commit({"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"})
    stale = await app.create()
    # Someone writes the Application after our copy was read: the copy is stale.
    live = await app.engine.kube.get(API_VERSION, "Application", app.name, app.namespace)
    assert live is not None
    await app.engine.kube.merge_patch(live, {"metadata": {"annotations": {"x": "y"}}})

    own = await connected(kubeconfig)
    try:
        first = app.engine.operation(stale, OperationRequest(), run_by="engine-a")
        before = Counter(own.requests)
        won = await claim(own, stale, first.state)
        # The precondition refused the stale copy (409); it was read again, then written.
        assert moved(own.requests, before) == {"PATCH 409": 1, "GET 200": 1, "PATCH 200": 1}
        assert won.status["operationState"]["runBy"] == "engine-a"

        # A second engine holding the same stale copy is refused: the operation is running.
        second = app.engine.operation(stale, OperationRequest(), run_by="engine-b")
        with pytest.raises(Busy, match="engine-a"):
            await claim(own, stale, second.state)
    finally:
        await own.close()
    now = await app.engine.kube.get(API_VERSION, "Application", app.name, app.namespace)
    assert now is not None
    assert now["status"]["operationState"]["runBy"] == "engine-a"
