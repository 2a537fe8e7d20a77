"""A Secret in Git whose value YAML reads as a tag (``password: !s3cret``) fails to render; the
error names the file and line and never the value: not in the CLI's output or log, not in the
Application's status."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

from test_engine import TETHER, AppFixture, app, engine, repo_secret  # noqa: F401  (fixtures)

from tether.engine import Engine


async def test_a_secret_value_read_as_a_yaml_tag_is_never_shown(
    engine: Engine,  # noqa: F811
    app: AppFixture,  # noqa: F811
) -> None:
    canary = f"CANARY{uuid.uuid4().hex}"
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\n"
        f"stringData:\n  user: app\n  password: !{canary}\n"
    )
    app.repo.commit({"app/secret.yaml": secret})
    await app.create()

    def tether(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TETHER, *args],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=120,
            check=False,
        )

    sync = tether("--verbose", "app", "sync", app.name, "--timeout", "30")
    diff = tether("--verbose", "app", "diff", app.name)
    shown = tether("app", "get", app.name, "-o", "json")

    assert sync.returncode != 0
    assert "app/secret.yaml:8: invalid YAML" in sync.stdout + sync.stderr
    assert "put the value in quotes" in sync.stdout + sync.stderr
    status = json.loads(shown.stdout)["status"]
    assert any("app/secret.yaml:8" in c["message"] for c in status["conditions"])
    for out in (sync.stdout, sync.stderr, diff.stdout, diff.stderr, shown.stdout, shown.stderr):
        assert canary not in out
