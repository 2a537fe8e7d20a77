"""How a failing poll is logged and reported: one line per failure class, the status current."""

from __future__ import annotations

import logging
from typing import cast

import pytest

from tether.controller.polling import RepoPoller
from tether.engine import Engine
from tether.source.failures import REASON_AUTH, REASON_UNREACHABLE, source_error

pytestmark = pytest.mark.unit

URL = "https://git.example.com/team/one.git"


def failing_poller(refreshed: list[str]) -> RepoPoller:
    # The engine is used by a poll itself, never by reporting its failure.
    def refresh(url: str) -> int:
        refreshed.append(url)
        return 1

    return RepoPoller(cast(Engine, None), {}, refresh, 180.0)


def polling_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("polling")]


def test_a_server_going_away_is_one_line_while_the_status_follows_its_wording(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "tether.controller")
    refreshed: list[str] = []
    p = failing_poller(refreshed)
    # The poll in flight when the server stops, then the polls after it.
    p._failed(URL, source_error(REASON_UNREACHABLE, f"cannot reach {URL}: Empty reply"))
    for ms in (0, 3, 1):
        refused = f"Failed to connect to git.example.com port 443 after {ms} ms: refused"
        p._failed(URL, source_error(REASON_UNREACHABLE, f"cannot reach {URL}: {refused}"))
    lines = polling_lines(caplog)
    assert len(lines) == 1 and "Empty reply" in lines[0]
    # The apps were reconciled once per wording (curl's timing aside), so the status says
    # what the poll sees now.
    assert refreshed == [URL, URL]
    assert p.failures[URL].endswith("port 443: refused")

    # A new class of failure is logged at once.
    p._failed(URL, source_error(REASON_AUTH, f"authentication failed for {URL}"))
    lines = polling_lines(caplog)
    assert len(lines) == 2 and REASON_AUTH in lines[1]
    assert refreshed == [URL, URL, URL]
