"""Errors point at the actual mistake: a webhook sent as a form, a Kustomize file in a plain
directory app."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tether.errors import RenderError
from tether.render import DirectoryOptions, Tree, render_directory
from tether.server.webhooks import WebhookBadRequest, WebhookSecrets, parse_webhook

pytestmark = pytest.mark.unit

SECRET = "generic-secret"
PUSH = json.dumps({"repoURL": "https://git.example.com/x.git", "ref": "refs/heads/main"}).encode()


def generic(body: bytes, content_type: str | None) -> dict[str, str]:
    sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Tether-Signature": f"sha256={sig}"}
    if content_type:
        headers["Content-Type"] = content_type
    return headers


def test_generic_webhook_sent_as_a_form_names_the_content_type_to_use() -> None:
    # `curl -d '{...}'` without -H sends JSON under a form content type.
    with pytest.raises(WebhookBadRequest) as e:
        parse_webhook(
            generic(PUSH, "application/x-www-form-urlencoded"),
            PUSH,
            WebhookSecrets(generic=SECRET),
        )
    assert "application/x-www-form-urlencoded" in e.value.message
    assert "Content-Type: application/json" in e.value.message
    assert "is not JSON" not in e.value.message


def test_a_body_that_is_not_json_says_what_was_sent_and_what_to_send() -> None:
    body = b"repoURL=https://git.example.com/x.git"
    with pytest.raises(WebhookBadRequest) as e:
        parse_webhook(generic(body, "text/plain"), body, WebhookSecrets(generic=SECRET))
    assert "not JSON (Content-Type: text/plain)" in e.value.message
    assert "Content-Type: application/json" in e.value.message


def test_the_same_push_as_json_is_accepted() -> None:
    event = parse_webhook(generic(PUSH, "application/json"), PUSH, WebhookSecrets(generic=SECRET))
    assert event is not None and event.ref == "refs/heads/main"


KUSTOMIZATIONS = [
    ("kustomization.yaml", "resources:\n- cm.yaml\n"),
    (
        "kustomization.yml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [cm.yaml]\n",
    ),
]
CM = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"


@pytest.mark.parametrize(("name", "text"), KUSTOMIZATIONS)
def test_a_kustomization_file_is_named_as_such_with_what_to_do(name: str, text: str) -> None:
    tree = Tree(files={f"app/{name}": text.encode(), "app/cm.yaml": CM}, symlinks={})
    with pytest.raises(RenderError) as e:
        render_directory(tree, "app", DirectoryOptions())
    assert e.value.file == f"app/{name}"
    assert "Kustomize file" in e.value.message and "no apiVersion" not in e.value.message
    assert "kustomize build" in e.value.hint and f"directory.exclude: '{name}'" in e.value.hint
    # The advice works: excluding the file renders the rest.
    rendered = render_directory(tree, "app", DirectoryOptions(exclude=name))
    assert [m.obj["metadata"]["name"] for m in rendered] == ["a"]


def test_a_kubernetes_object_in_a_file_named_kustomization_is_rendered() -> None:
    flux = (
        b"apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        b"metadata: {name: apps, namespace: flux-system}\nspec: {path: ./apps}\n"
    )
    tree = Tree(files={"app/kustomization.yaml": flux}, symlinks={})
    (m,) = render_directory(tree, "app", DirectoryOptions())
    assert m.obj["kind"] == "Kustomization"
