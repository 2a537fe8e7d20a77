"""The rollback's result document (``RollbackResult.to_dict``, what ``tether app rollback -o
json`` prints and ``POST .../rollback`` answers) read back by ``from_dict``: the same
document, the same git commands and the same exit-relevant fields, so ``tether --server``
prints what the direct command prints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tether.service.identity import Identity
from tether.service.results import SyncOutcome
from tether.service.rollback_plan import MANUAL, SYNCED, RepoPlan, RollbackResult
from tether.source.commits import CommitSummary, Person

pytestmark = pytest.mark.unit

WHEN = datetime(2026, 11, 27, 3, 2, 41, tzinfo=UTC)
ADA = Identity("Ada Lovelace", "ada@example.com")


def commit(sha: str, subject: str, *, touches: bool = True) -> CommitSummary:
    return CommitSummary(
        sha=sha * 40,
        subject=subject,
        author=Person("Mallory Example", "mallory@example.com"),
        time=WHEN,
        paths=("app/cm.yaml",),
        only_ours=touches,
        touches=touches,
    )


def plan(**kw: object) -> RepoPlan:
    fields: dict[str, object] = {
        "url": "https://tok3n-secret@git.example.com/shop/deploy.git",
        "branch": "main",
        "sources": [0],
        "head": "b" * 40,
        "target": commit("a", "Blue buttons"),
        "paths": ["app", "app/new.yaml"],
        "between": [commit("b", "Paint it red"), commit("c", "docs", touches=False)],
        "message": 'Revert "Paint it red"\n\nThis reverts commit ' + "b" * 40 + ".\n",
        "tree": "d" * 40,
        "changes": True,
        "creds": None,
        "write": None,
        "paths_at_head": ["app", "app/new.yaml"],
        "paths_at_target": ["app"],
    }
    fields.update(kw)
    return RepoPlan(**fields)  # type: ignore[arg-type]


def test_a_manual_result_reads_back_with_the_same_commands() -> None:
    result = RollbackResult(MANUAL, "payments/shop", [plan()], notices=["n"], author=ADA)
    doc = result.to_dict()
    back = RollbackResult.from_dict(doc)
    assert back.to_dict() == doc
    assert back.author == ADA and back.state == MANUAL and back.notices == ["n"]
    [r] = back.repos
    assert r.commands(ADA) == result.repos[0].commands(ADA) == doc["repositories"][0]["commands"]
    assert "git checkout " + "a" * 40 + " -- app" in r.commands(ADA)
    assert [c.subject for c in r.rolled_back] == ["Paint it red"]
    assert r.target.subject == "Blue buttons" and r.target.time == WHEN
    assert "tok3n-secret" not in str(doc), "no credential in the document"


def test_a_synced_result_keeps_what_printing_and_the_exit_code_need() -> None:
    outcome = SyncOutcome(
        phase="Succeeded",
        message="changed 1 object(s)",
        revision="e" * 40,
        run_by="tether-controller-1",
        by_controller=True,
        runner="run by controller tether-controller-1",
        health_status="Degraded",
        health_message="Deployment web: 0/1 ready",
        waited_for_health=True,
        notices=["outside the sync window"],
    )
    done = plan(new_sha="e" * 40, pushed_to="main")
    result = RollbackResult(SYNCED, "payments/shop", [done], outcome=outcome, author=ADA)
    doc = result.to_dict()
    assert doc["repositories"][0]["commands"] == ""
    back = RollbackResult.from_dict(doc)
    assert back.to_dict() == doc
    o = back.outcome
    assert o is not None
    assert (o.runner, o.health_message, o.waited_for_health) == (
        outcome.runner,
        outcome.health_message,
        True,
    )
    assert not o.healthy and o.notices == outcome.notices
    assert back.repos[0].new_sha == "e" * 40 and back.repos[0].pushed_to == "main"


def test_an_older_document_without_the_new_fields_still_reads() -> None:
    back = RollbackResult.from_dict(
        {
            "state": "nothing",
            "app": "payments/shop",
            "repositories": [{"repoURL": "https://git.example.com/x.git", "target": "a" * 40}],
        }
    )
    assert back.state == "nothing" and back.author is None and back.outcome is None
    assert back.repos[0].target.short == "a" * 10 and back.repos[0].changes
