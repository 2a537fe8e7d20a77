"""What ``tether --server`` decides without a server: the documents read back as the direct
path's values, error answers turned into the direct path's errors, the body of a sync, and
the plain refusal of commands the API does not serve."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tether.cli.main import cli
from tether.client.apps import sync_body
from tether.client.http import ApiClient, ApiRefused, ServerOptions, refusal
from tether.client.reading import app_path
from tether.diff import render_diffs
from tether.errors import TetherError
from tether.model import ResourceDiff, ResourceDiffStatus, ResourceKey
from tether.service.documents import diffs_of_document, list_document, outcome_of_document
from tether.service.results import OperationInProgress, SyncOutcome, SyncRequest
from tether.sync.state import ResourceSelector, TaskRecord

pytestmark = pytest.mark.unit


def test_a_diff_document_prints_as_the_diffs_it_came_from() -> None:
    diffs = [
        ResourceDiff(
            ResourceKey("apps", "Deployment", "shop", "web"),
            ResourceDiffStatus.OUT_OF_SYNC,
            "--- live\n+++ git\n@@ -1 +1 @@\n-replicas: 5\n+replicas: 2\n",
            ["spec.replicas"],
        ),
        ResourceDiff(ResourceKey("", "ConfigMap", "shop", "c"), ResourceDiffStatus.MISSING, "+a\n"),
    ]
    doc = {
        "revision": "abc",
        "sync": "OutOfSync",
        "resources": [
            {
                **d.key.to_dict(),
                "status": d.status.value,
                "changedPaths": d.changed_paths,
                "diff": d.diff_text,
            }
            for d in diffs
        ],
    }
    back = diffs_of_document(doc)
    assert back == diffs
    assert render_diffs(back, color=True) == render_diffs(diffs, color=True)
    assert diffs_of_document({"resources": []}) == []


def test_an_outcome_document_reads_back_as_the_outcome() -> None:
    outcome = SyncOutcome(
        "Succeeded",
        "successfully synced (all tasks run)",
        "0123456789abcdef",
        run_by="controller-1",
        by_controller=True,
        records=[TaskRecord(ResourceKey("", "ConfigMap", "shop", "c"), "Sync", 1, "created")],
        operation_id="op-1",
        sync_status="Synced",
        health_status="Healthy",
    )
    assert outcome_of_document(outcome.to_dict()).to_dict() == outcome.to_dict()


def test_the_list_document_hides_managed_fields_and_masks_credentials() -> None:
    app = {
        "metadata": {"name": "a", "managedFields": [{"manager": "x"}]},
        "spec": {"source": {"repoURL": "https://user:s3cr3t@git.example.com/r.git"}},
    }
    doc = list_document([app])
    assert doc["kind"] == "List" and doc["apiVersion"] == "v1"
    (item,) = doc["items"]
    assert "managedFields" not in item["metadata"]
    assert "s3cr3t" not in str(item) and "***@git.example.com" in str(item)
    assert app["metadata"]["managedFields"], "the input is left alone"


def test_error_answers_become_the_errors_a_person_can_act_on() -> None:
    shown = "https://tether.example.com"
    e = refusal(401, {"error": "the token is not valid", "code": 401}, b"", shown)
    assert isinstance(e, ApiRefused) and e.status == 401
    assert (
        e.message
        == f"the tether server at {shown} did not accept the token: the token is not valid"
    )
    assert "--token or $TETHER_TOKEN" in e.hint

    e = refusal(403, {"error": "u may not sync", "hint": "ask for sync"}, b"", shown)
    assert e.message == f"the tether server at {shown} refused: u may not sync"
    assert e.hint == "ask for sync"

    body = {"error": "a sync of ns/a is Running", "reason": "OperationInProgress", "hint": "h"}
    e = refusal(409, body, b"", shown)
    assert isinstance(e, OperationInProgress) and (e.message, e.hint) == (body["error"], "h")

    e = refusal(404, {"error": "Application ns/a not found", "reason": "NotFound"}, b"", shown)
    assert isinstance(e, ApiRefused) and e.message == "Application ns/a not found"

    e = refusal(502, None, b"Bad Gateway", shown)
    assert e.message == f"the tether server at {shown} answered 502: Bad Gateway"


def test_the_server_url_is_checked_and_shown_without_credentials() -> None:
    options = ServerOptions("https://admin:pa55word@tether.example.com/")
    assert options.shown == "https://***@tether.example.com"
    with pytest.raises(TetherError) as err:
        ApiClient(ServerOptions("tether.example.com:8080"))
    assert "is not an http(s) URL" in err.value.message


def test_a_sync_request_is_sent_as_the_api_reads_it() -> None:
    req = SyncRequest(
        "web",
        "shop",
        revision="v2",
        prune=True,
        resources=[ResourceSelector("apps", "Deployment", "web", "shop")],
        force_window=True,
    )
    assert sync_body(req, dry_run=True) == {
        "revision": "v2",
        "prune": True,
        "dryRun": True,
        "resources": [{"group": "apps", "kind": "Deployment", "name": "web", "namespace": "shop"}],
        "forceWindow": True,
        "ignoreDependencies": False,
    }
    assert app_path("a b", "x/y", "/sync") == "/api/v1/applications/a%20b/x%2Fy/sync"


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (["app", "create", "x", "--repo", "https://git.example.com/r.git"], "app create"),
        (["app", "apply", "-f", __file__], "app apply"),
        (["controller"], "controller"),
        (["install-crds"], "install-crds"),
        (["blame", "x"], "blame"),
        (["app", "delete", "x"], "app delete"),
    ],
)
def test_commands_the_api_does_not_serve_exit_2_saying_so(args: list[str], path: str) -> None:
    result = CliRunner().invoke(cli, ["--server", "http://127.0.0.1:9", *args])
    assert result.exit_code == 2, result.output
    assert (
        f"error: 'tether {path}' talks to the Kubernetes API; it is not available with --server"
        in result.output
    )
