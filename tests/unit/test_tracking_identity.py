"""Which app an object belongs to: label values that carry the app's namespace, the older
label form still recognised, objects another app tracks, and what a sync needs to create."""

from __future__ import annotations

import re

import pytest

from tether.api.application import Application, new_application
from tether.engine import shared_message
from tether.health import of_objects
from tether.model import HealthStatus, Manifest, ResourceKey
from tether.source import redact
from tether.sync.namespaces import missing_namespace_message, namespaces_to_check
from tether.sync.tracking import label_selector, mark, other_owner, without_bookkeeping

pytestmark = pytest.mark.unit

# What the API server accepts as a label value.
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def app(
    name: str = "web",
    namespace: str = "team-a",
    dest: str = "prod",
    sync_options: list[str] | None = None,
) -> Application:
    return Application.from_obj(
        new_application(
            name,
            namespace,
            repo_url="https://g/x",
            path="p",
            dest_namespace=dest,
            sync_options=sync_options,
        )
    )


def cm(name: str, ns: str = "prod", **meta: object) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, **meta},
    }


def test_same_name_in_two_namespaces_gets_two_label_values() -> None:
    a, b = app("web", "team-a"), app("web", "team-b")
    assert a.label_value == "team-a_web"
    assert b.label_value == "team-b_web"
    la = mark(a, cm("c"))["metadata"]["labels"]["tether.dev/app"]
    lb = mark(b, cm("c"))["metadata"]["labels"]["tether.dev/app"]
    assert la != lb


def test_long_names_give_a_valid_unique_label_value() -> None:
    ns = "n" * 63
    a = app("x" * 200, ns)
    b = app("x" * 199 + "y", ns)
    for v in (a.label_value, b.label_value):
        assert len(v) <= 63 and LABEL_VALUE.match(v), v
    assert a.label_value != b.label_value
    # Stable: the same app always gets the same value.
    assert app("x" * 200, ns).label_value == a.label_value
    # Whatever the characters at the cut, the value stays valid.
    for name in ("a." * 40 + "b", "a-" * 40 + "b"):
        v = app(name, "ns").label_value
        assert len(v) <= 63 and LABEL_VALUE.match(v), v


def test_the_older_label_form_still_selects_the_apps_objects() -> None:
    a = app("web", "team-a")
    assert a.label_values == ("team-a_web", "web")
    assert label_selector(a) == "tether.dev/app in (team-a_web,web)"


def test_older_label_on_a_live_object_is_bookkeeping_not_drift() -> None:
    a = app()
    desired = mark(a, cm("c"))
    old = mark(a, cm("c"))
    old["metadata"]["labels"]["tether.dev/app"] = "web"  # as applied before the namespace
    comparable = without_bookkeeping(a, desired, old)
    assert "tether.dev/app" not in comparable["metadata"]["labels"]
    assert "tether.dev/manifest-hash" not in comparable["metadata"]["annotations"]
    assert "tether.dev/tracking-id" in comparable["metadata"]["annotations"]
    # Any other value (another app's, or a hand edit) is still compared.
    other = mark(a, cm("c"))
    other["metadata"]["labels"]["tether.dev/app"] = "someone-else"
    assert without_bookkeeping(a, desired, other)["metadata"]["labels"] == {
        "tether.dev/app": "team-a_web"
    }


def test_other_owner_names_the_app_in_the_tracking_id() -> None:
    a = app("web", "team-a")
    assert other_owner(a, mark(a, cm("c"))) is None
    assert other_owner(a, mark(app("web", "team-b"), cm("c"))) == ("team-b", "web")
    assert other_owner(a, mark(app("api", "team-a"), cm("c"))) == ("team-a", "api")
    assert other_owner(a, cm("c")) is None  # not tracked by anyone
    assert other_owner(a, cm("c", annotations={"tether.dev/tracking-id": "garbage"})) is None


def test_shared_message_names_both_apps_and_how_to_resolve() -> None:
    keys = [ResourceKey("", "ConfigMap", "prod", "c")]
    text = shared_message("team-b/web", "team-a/web", keys)
    assert "part of applications team-a/web and team-b/web" in text
    assert "ConfigMap prod/c is" in text and "tether.dev/tracking-id" in text
    many = [ResourceKey("", "ConfigMap", "prod", f"c{i}") for i in range(8)]
    assert "and 3 more are part of" in shared_message("a/x", "b/y", many)


def test_namespaces_to_check_skips_existing_objects_and_namespaces_the_sync_creates() -> None:
    plain = app(dest="new-ns")
    created = app(dest="new-ns", sync_options=["CreateNamespace=true"])
    ms = [
        Manifest(cm("a", "new-ns")),
        Manifest(cm("b", "other")),
        Manifest(cm("c", "made-here")),
        Manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "made-here"}}),
        Manifest(cm("d", "exists")),
    ]
    live = {ResourceKey("", "ConfigMap", "exists", "d"): cm("d", "exists")}
    a_key, b_key = ms[0].key, ms[1].key
    assert namespaces_to_check(plain, ms, live) == {"new-ns": [a_key], "other": [b_key]}
    assert namespaces_to_check(created, ms, live) == {"other": [b_key]}


def test_missing_namespace_message_names_the_namespace_and_the_option() -> None:
    a = app(dest="new-ns")
    assert "namespace new-ns does not exist" in missing_namespace_message(a, "new-ns")
    assert "CreateNamespace=true" in missing_namespace_message(a, "new-ns")
    other = missing_namespace_message(a, "elsewhere")
    assert "namespace elsewhere does not exist" in other and "Namespace manifest" in other


def test_health_of_objects_needs_only_the_live_objects() -> None:
    pod_key = ResourceKey("", "Pod", "prod", "p")
    cm_key = ResourceKey("", "ConfigMap", "prod", "c")
    gone = ResourceKey("apps", "Deployment", "prod", "gone")
    crashing = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "prod"},
        "spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "x"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {"name": "c", "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ],
        },
    }
    live = {pod_key: crashing, cm_key: cm("c")}
    assert of_objects([pod_key, cm_key], live).status == HealthStatus.DEGRADED
    assert of_objects([cm_key], live).status == HealthStatus.HEALTHY
    assert of_objects([cm_key, gone], live).status == HealthStatus.MISSING


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("http://user:TOKEN@host/x.git", "http://***@host/x.git"),
        ("https://TOKEN@host/x.git", "https://***@host/x.git"),
        ("ssh://git@host/x.git", "ssh://git@host/x.git"),
        ("ssh://git:TOKEN@host/x.git", "ssh://git:***@host/x.git"),
        (
            "fetching 'http://u:TOKEN@h/x.git' failed; see http://h/y",
            "fetching 'http://***@h/x.git' failed; see http://h/y",
        ),
        (
            '{"repoURL": "http://u:TOKEN@h/x.git", "b": "a@b"}',
            '{"repoURL": "http://***@h/x.git", "b": "a@b"}',
        ),
    ],
)
def test_redact_masks_url_credentials(text: str, want: str) -> None:
    assert redact(text) == want
