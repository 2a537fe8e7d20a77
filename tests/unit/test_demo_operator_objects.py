"""The objects of the demo's UI user: one ServiceAccount, its token Secret, and a binding of
``tether-operator`` (as deploy/rbac.yaml defines it) in the demo's namespace only."""

from __future__ import annotations

import pytest
from devcluster import demo

pytestmark = pytest.mark.unit


def test_the_demo_user_is_bound_in_one_namespace_to_the_operator_role() -> None:
    role, account, secret, binding = demo.operator_objects("ns-x")
    assert (role["kind"], role["metadata"]["name"]) == ("ClusterRole", "tether-operator")
    verbs = {v for r in role["rules"] if "applications" in r["resources"] for v in r["verbs"]}
    assert {"get", "list", "sync"} <= verbs
    assert (account["kind"], account["metadata"]) == (
        "ServiceAccount",
        {"name": demo.OPERATOR, "namespace": "ns-x"},
    )
    assert secret["type"] == "kubernetes.io/service-account-token"
    assert secret["metadata"]["annotations"] == {
        "kubernetes.io/service-account.name": demo.OPERATOR
    }
    assert binding["kind"] == "RoleBinding" and binding["metadata"]["namespace"] == "ns-x"
    assert binding["roleRef"]["kind"] == "ClusterRole"
    assert binding["roleRef"]["name"] == "tether-operator"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": demo.OPERATOR, "namespace": "ns-x"}
    ]
