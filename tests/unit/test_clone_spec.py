"""The clone of an Application as data (``tether.service.clone_spec``), from a YAML fixture of
a production app with several sources, a pin, automated sync, windows and dependencies; and
how the controller names who asked in its audit records
(``tether.controller.requested_by``)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.api.application import Application
from tether.controller.requested_by import requester, rollback_details
from tether.model import Manifest
from tether.service.clone_spec import (
    CLONED_FROM_LABEL,
    CLONED_REVISIONS_ANNOTATION,
    CloneRefused,
    build_clone,
    check_existing,
    check_request,
    history_revisions,
    misplaced,
    refuse_misplaced,
    synced_revisions,
)
from tether.sync.state import OperationRequest

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "clone"
SHAS = ["a" * 40, "b" * 40, "c" * 40]


def shop() -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((FIXTURES / "several-sources.yaml").read_text())
    return obj


def clone_of(obj: dict[str, Any], **kw: Any) -> Any:
    args: dict[str, Any] = {
        "create_namespace": False,
        "user": "bob@host",
        "at": "2026-11-27T04:00:00Z",
    }
    args.update(kw)
    return build_clone(obj, "shop-staging", "staging", SHAS, ["shop", "", ""], **args)


def test_clone_pins_every_source_and_keeps_the_render_parameters() -> None:
    original = shop()
    spec = clone_of(original)
    obj = spec.obj
    sources = obj["spec"]["sources"]
    assert [s["targetRevision"] for s in sources] == SHAS
    helm = sources[0]["helm"]
    assert helm["releaseName"] == "shop", "the original's effective release name, set"
    assert helm["parameters"] == original["spec"]["sources"][0]["helm"]["parameters"]
    assert helm["valueFiles"] == ["$values/prod/values.yaml"]
    assert helm["namespace"] == "staging", "it named the original's destination"
    assert sources[2]["kustomize"]["namespace"] == "other", "not the destination: kept"
    assert sources[2]["kustomize"]["images"] == ["shop=registry.example.com/shop:1.4"]
    assert obj["spec"]["destination"] == {"namespace": "staging"}
    assert obj["spec"]["ignoreDifferences"] == original["spec"]["ignoreDifferences"]
    assert obj["spec"]["syncPolicy"] == {
        "syncOptions": ["ServerSideApply=true", "CreateNamespace=false"]
    }
    for gone in ("pin", "syncWindows", "dependsOn"):
        assert gone not in obj["spec"]
    assert obj["metadata"]["labels"] == {"team": "payments", CLONED_FROM_LABEL: "shop"}
    assert obj["metadata"]["annotations"][CLONED_REVISIONS_ANNOTATION] == ",".join(SHAS)
    assert "notify.tether.dev/on-sync-failed" not in obj["metadata"]["annotations"]
    assert any("automated sync removed" in n and "fixed commit" in n for n in spec.notes)
    assert any("helm.namespace prod → staging" in n for n in spec.notes)
    assert original == shop(), "the original is not changed"
    app = Application.from_obj(obj)  # a valid Application
    assert not app.sync_policy.automated and app.pin is None


def test_create_namespace_replaces_the_option() -> None:
    obj = clone_of(shop(), create_namespace=True).obj
    assert obj["spec"]["syncPolicy"]["syncOptions"] == [
        "ServerSideApply=true",
        "CreateNamespace=true",
    ]


def test_revisions_from_a_history_id_or_from_status() -> None:
    obj = shop()
    assert history_revisions(obj, "7") == SHAS
    assert history_revisions(obj, "6") == ["d" * 40]
    assert history_revisions(obj, "8") is None, "no such entry: a Git revision"
    assert history_revisions(obj, "main") is None
    assert synced_revisions(obj) == ["1" * 40, "2" * 40, "3" * 40]
    assert synced_revisions({"status": {}}) == []


def test_refusals_name_what_to_do() -> None:
    obj = shop()
    with pytest.raises(CloneRefused, match="take over the original's objects"):
        check_request(obj, "shop-copy", "prod")
    with pytest.raises(CloneRefused, match="that is the original"):
        check_request(obj, "shop", "staging")
    with pytest.raises(CloneRefused, match="cannot name a clone"):
        check_request(obj, "Shop_Copy", "staging")
    check_request(obj, "shop-staging", "staging")

    earlier = clone_of(obj).obj
    check_existing(None, "shop", "staging")
    check_existing(earlier, "shop", "staging")  # an earlier clone: brought to the revision
    with pytest.raises(CloneRefused, match="into namespace staging, not qa"):
        check_existing(earlier, "shop", "qa")
    other = copy.deepcopy(earlier)
    other["metadata"]["labels"][CLONED_FROM_LABEL] = "cart"
    with pytest.raises(CloneRefused, match="is a clone of cart"):
        check_existing(other, "shop", "staging")
    with pytest.raises(CloneRefused, match="is not a clone"):
        check_existing(obj, "shop", "staging")


def test_objects_outside_the_namespace_are_named_with_file_and_line() -> None:
    def m(kind: str, name: str, ns: str = "", f: str = "a.yaml", line: int = 1) -> Manifest:
        meta: dict[str, Any] = {"name": name}
        if ns:
            meta["namespace"] = ns
        return Manifest({"apiVersion": "v1", "kind": kind, "metadata": meta}, f, line)

    found = misplaced(
        [
            m("ConfigMap", "ok", "staging"),
            m("ClusterRole", "reader", f="rbac.yaml", line=3),
            m("ConfigMap", "shared", "prod", f="shared.yaml", line=9),
        ],
        "staging",
    )
    assert found == [
        "ClusterRole reader (rbac.yaml:3) is cluster-scoped",
        "ConfigMap shared (shared.yaml:9) is in namespace prod",
    ]
    refuse_misplaced("shop", "shop-staging", "staging", [])
    with pytest.raises(CloneRefused) as e:
        refuse_misplaced("shop", "shop-staging", "staging", found)
    assert "2 object(s) outside namespace staging" in e.value.message
    assert "Nothing was created" in e.value.message and e.value.hint


def test_who_asked_and_what_a_rollback_restores() -> None:
    assert requester(OperationRequest(trigger="auto", initiated_by="controller")) == ""
    assert requester(OperationRequest(trigger="manual", initiated_by="alice@laptop")) == (
        "alice@laptop"
    )
    assert requester(OperationRequest(trigger="rollback", initiated_by="bob")) == "bob"
    assert requester(None) == ""
    sha = "0123456789abcdef0123456789abcdef01234567"
    msg = f'Revert "bump image"\n\nThis reverts commit {sha}.\n'
    details = rollback_details("f" * 40, msg)["rollback"]
    assert details == {"commit": "f" * 40, "restores": "", "reverts": [sha], "commitMessage": msg}
    assert rollback_details("f" * 40, "Restore app/ to 0123456789ab")["rollback"]["restores"] == (
        "0123456789ab"
    )
    assert rollback_details("f" * 40, "tidy up")["rollback"]["restores"] == ""
