"""The HTTP API under ``/api/v1``: Applications (list, get, tree, diff, resources, history,
events, drift), their operations (sync, refresh, terminate, rollback, pin), a stream of their
changes, the server's settings and the OpenAPI document. ``api_routes(ctx)`` is what
``create_app(extensions=[...])`` takes."""

from tether.server.api.context import ApiContext
from tether.server.api.openapi import document
from tether.server.api.routes import api_routes

__all__ = ["ApiContext", "api_routes", "document"]
