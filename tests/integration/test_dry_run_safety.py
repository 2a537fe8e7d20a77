"""A dry run changes nothing: not by apply, not by prune (mass prune included), not by
namespace creation; and it fails, as the real sync would, into a namespace that is missing."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from typing import Any

import yaml
from own_namespace_app import app, engine, home
from test_engine import TETHER, AppFixture, cm

from tether.api.application import API_VERSION
from tether.kube import KubeClient

# Named so that pytest sees these fixtures in this module.
_FIXTURES = (app, engine, home)


def tether(a: AppFixture, *args: str) -> subprocess.CompletedProcess[str]:
    """``tether app sync`` (and its ``args``) of ``a``, with JSON output."""
    return subprocess.run(
        [TETHER, "app", "sync", a.name, *args, "-n", a.namespace, "-o", "json"],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=120,
        check=False,
    )


def namespace_yaml(name: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


async def versions(kube: KubeClient, a: AppFixture, extra_ns: str) -> dict[str, str]:
    """resourceVersion of every ConfigMap in the destination, the extra Namespace and the
    Application: any write to any of them moves its version."""
    items, _ = await kube.list("v1", "ConfigMap", a.dest)
    out = {f"cm/{o['metadata']['name']}": o["metadata"]["resourceVersion"] for o in items}
    for kind, name, ns, av in (
        ("Namespace", extra_ns, "", "v1"),
        ("Namespace", a.dest, "", "v1"),
        ("Application", a.name, a.namespace, API_VERSION),
    ):
        obj = await kube.get(av, kind, name, ns)
        assert obj is not None, (kind, name)
        out[f"{kind}/{name}"] = obj["metadata"]["resourceVersion"]
    return out


def actions(r: subprocess.CompletedProcess[str]) -> dict[tuple[str, str], str]:
    body: dict[str, Any] = json.loads(r.stdout)
    return {(x["kind"], x["name"]): x["action"] for x in body["resources"]}


async def test_dry_run_sync_with_prune_and_mass_prune_changes_nothing(
    app: AppFixture, kube: KubeClient
) -> None:
    extra = f"t-extra-{uuid.uuid4().hex[:6]}"
    app.repo.commit(
        {
            **{f"app/{n}.yaml": cm(n, {"v": "1"}) for n in "abcd"},
            "app/ns.yaml": namespace_yaml(extra),
        }
    )
    a = await app.create()
    try:
        res = await app.engine.sync(a)
        assert res.ok, res.message

        # Every kind of change at once: update a, create e, prune b.
        app.repo.commit({"app/a.yaml": cm("a", {"v": "2"}), "app/e.yaml": cm("e", {"v": "1"})})
        app.repo.commit({"app/b.yaml": None})
        before = await versions(kube, app, extra)
        r = tether(app, "--dry-run", "--prune")
        assert r.returncode == 0, r.stdout + r.stderr
        assert actions(r) == {
            ("ConfigMap", "a"): "configured",
            ("ConfigMap", "b"): "pruned",
            ("ConfigMap", "c"): "unchanged",
            ("ConfigMap", "d"): "unchanged",
            ("ConfigMap", "e"): "created",
            ("Namespace", extra): "unchanged",
        }
        assert await versions(kube, app, extra) == before
        assert await kube.get("v1", "ConfigMap", "e", app.dest) is None

        # A mass prune, a Namespace among it, allowed explicitly: still nothing happens.
        app.repo.commit({"app/c.yaml": None, "app/d.yaml": None, "app/ns.yaml": None})
        r = tether(app, "--dry-run", "--prune")
        assert r.returncode == 1, r.stdout + r.stderr
        assert "--allow-mass-prune" in json.loads(r.stdout)["message"]
        r = tether(app, "--dry-run", "--prune", "--allow-mass-prune")
        assert r.returncode == 0, r.stdout + r.stderr
        pruned = {k for k, v in actions(r).items() if v == "pruned"}
        assert pruned == {
            ("ConfigMap", "b"),
            ("ConfigMap", "c"),
            ("ConfigMap", "d"),
            ("Namespace", extra),
        }
        assert await versions(kube, app, extra) == before
    finally:
        await kube.delete("v1", "Namespace", extra, propagation="Background")


async def test_dry_run_does_not_create_the_namespace(app: AppFixture, kube: KubeClient) -> None:
    app.dest = f"t-new-{uuid.uuid4().hex[:6]}"
    app.repo.commit({"app/cm.yaml": cm("settings", {"mode": "blue"})})
    await app.create(sync_options=["CreateNamespace=true"])
    before = (await app.get()).obj["metadata"]["resourceVersion"]
    r = tether(app, "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert actions(r) == {("Namespace", app.dest): "created", ("ConfigMap", "settings"): "created"}
    assert await kube.get("v1", "Namespace", app.dest) is None
    assert (await app.get()).obj["metadata"]["resourceVersion"] == before


async def test_sync_into_a_missing_namespace_fails_naming_it_and_the_option(
    app: AppFixture, kube: KubeClient
) -> None:
    app.dest = f"t-missing-{uuid.uuid4().hex[:6]}"
    app.repo.commit({"app/a.yaml": cm("a", {"v": "1"}), "app/b.yaml": cm("b", {"v": "1"})})
    await app.create()
    want = f"namespace {app.dest} does not exist"
    for dry_run in (["--dry-run"], []):
        r = tether(app, *dry_run, "--timeout", "0")
        assert r.returncode == 1, r.stdout + r.stderr
        body = json.loads(r.stdout)
        assert body["phase"] == "Failed"
        assert want in body["message"] and "CreateNamespace=true" in body["message"]
        assert {(x["name"], x["action"]) for x in body["resources"]} == {
            ("a", "failed"),
            ("b", "failed"),
        }
        assert all(want in x["message"] for x in body["resources"])
    assert await kube.get("v1", "Namespace", app.dest) is None
    cond = (await app.get()).status["conditions"][0]
    assert cond["type"] == "SyncError" and want in cond["message"]
