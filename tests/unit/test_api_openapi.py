"""The OpenAPI document and the routes the server registers cannot drift apart: every
``/api/v1`` route (method and path) is in the document, and the document has no other."""

from __future__ import annotations

import json
from typing import cast

import pytest

import tether
from tether.engine import Engine
from tether.kube import KubeClient
from tether.server import KubeAccessReview, create_app
from tether.server.api import ApiContext, api_routes, document
from tether.server.webhooks import WebhookSecrets

pytestmark = pytest.mark.unit
METHODS = ("get", "post", "put", "patch", "delete")


async def no_push(_: object) -> int:
    return 0


async def no_secrets() -> WebhookSecrets:
    return WebhookSecrets.from_secret_data({})


def served() -> set[tuple[str, str]]:
    # Registering routes reads nothing from the engine or the API server: both are only
    # stored.
    ctx = ApiContext(
        engine=cast(Engine, None), namespaces=lambda: ["apps"], identity="test", version="0"
    )
    app = create_app(
        on_push=no_push,
        get_secrets=no_secrets,
        is_ready=lambda: True,
        access=KubeAccessReview(cast(KubeClient, None)),
        extensions=[api_routes(ctx)],
    )
    out: set[tuple[str, str]] = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = str(info.get("path") or info.get("formatter") or "")
        if path.startswith("/api/v1/") and route.method.lower() in METHODS:
            out.add((route.method.lower(), path))
    return out


def documented() -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document()["paths"].items()
        for method in item
        if method in METHODS
    }


def test_every_route_is_documented_and_nothing_else() -> None:
    routes = served()
    assert ("get", "/api/v1/applications/{namespace}/{name}/tree") in routes
    assert routes - documented() == set(), "routes missing from the OpenAPI document"
    assert documented() - routes == set(), "documented routes the server does not serve"


def test_the_document_is_openapi_3_1_with_the_error_shape() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1")
    schemas = doc["components"]["schemas"]
    assert schemas["Error"]["required"] == ["error", "reason", "code", "hint"]
    assert doc["info"]["version"] == tether.__version__
    json.dumps(doc)  # serializable as served
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                assert item[method]["summary"], f"{method} {path} has no summary"
                assert item[method]["responses"], f"{method} {path} has no responses"
    # Every reference resolves.
    text = json.dumps(doc)
    for name in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in schemas, name


def test_path_parameters_are_declared() -> None:
    for path, item in document()["paths"].items():
        names = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert names == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}, path
