"""``tether controller``'s audit flags are checked before anything starts: a store URL that
is not PostgreSQL and a retention under a day are refused, and the URL is never echoed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
TETHER = str(Path(sys.executable).with_name("tether"))


def controller(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TETHER, "controller", "--kubeconfig", "/nonexistent", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_a_url_that_is_not_postgres_is_refused_without_echoing_it() -> None:
    p = controller(env={"TETHER_AUDIT_URL": "mysql://root:hunter2secret@db/x"})
    assert p.returncode == 2
    assert "--audit-url must be a postgresql:// URL" in p.stderr
    assert "hunter2secret" not in p.stdout + p.stderr


@pytest.mark.parametrize(("value", "why"), [("2h", "shorter than 1 day"), ("soon", "invalid")])
def test_a_retention_under_a_day_or_malformed_is_refused(value: str, why: str) -> None:
    p = controller("--audit-retention", value)
    assert p.returncode == 2 and why in p.stderr, p.stderr
