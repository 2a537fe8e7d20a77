"""`tether app sync --revision`: the result is judged against, and recorded as, the revision
that was synced, not the app's targetRevision."""

from __future__ import annotations

import json
import os
import subprocess

from own_namespace_app import app, engine, home
from test_engine import TETHER, AppFixture, cm

from tether.kube import KubeClient

# Named so that pytest sees these fixtures in this module.
_FIXTURES = (app, engine, home)


async def test_sync_to_a_tag_is_judged_and_recorded_at_that_tag(
    app: AppFixture, kube: KubeClient
) -> None:
    v1 = app.repo.commit({"app/old.yaml": cm("old", {"v": "1"})}, message="v1")
    app.repo.tag("v1", v1)
    head = app.repo.commit({"app/old.yaml": None, "app/new.yaml": cm("new", {"v": "2"})})
    await app.create()  # targetRevision HEAD

    args = ["app", "sync", app.name, "--revision", "v1", "--timeout", "30", "-n", app.namespace]
    r = subprocess.run(
        [TETHER, *args, "-o", "json"],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    body = json.loads(r.stdout)
    assert (body["phase"], body["revision"]) == ("Succeeded", v1)
    assert (body["sync"], body["health"]) == ("Synced", "Healthy")
    assert await kube.get("v1", "ConfigMap", "old", app.dest) is not None
    assert await kube.get("v1", "ConfigMap", "new", app.dest) is None

    st = (await app.get()).status
    assert st["sync"] == {"status": "Synced", "revision": v1}
    entry = st["history"][0]
    assert entry["revision"] == v1 and entry["source"]["targetRevision"] == "v1"
    assert st["operationState"]["revision"] == v1

    # A plain sync goes back to the target (HEAD) and records that.
    res = await app.engine.sync(await app.get())
    assert res.ok and res.revision == head
    entry = (await app.get()).status["history"][0]
    assert entry["revision"] == head and entry["source"]["targetRevision"] == "HEAD"
