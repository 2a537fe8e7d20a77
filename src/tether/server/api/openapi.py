"""The OpenAPI 3.1 document of ``/api/v1`` (``GET /api/v1/openapi.json``): ``openapi.json``
next to this module, written by hand with the routes; a unit test holds the two to the same
set of paths and methods, so neither changes without the other."""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

from aiohttp import web

import tether


@functools.cache
def _loaded() -> dict[str, Any]:
    text = resources.files(__package__ or "tether.server.api").joinpath("openapi.json")
    doc: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return doc


def document() -> dict[str, Any]:
    """The document, with this server's version."""
    doc = copy.deepcopy(_loaded())
    doc["info"]["version"] = tether.__version__
    return doc


async def document_route(_: web.Request) -> web.Response:
    return web.json_response(document())
