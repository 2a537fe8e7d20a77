"""Reading tether's API without an event loop: list, get, diff and history of Applications.

``tether --server URL app list|get|diff`` sends one or two requests; this is all they load
of the client (no asyncio, nothing of the engine). ``RemoteApplications`` reads through it
too, from a worker thread, so both paths page, refuse and word "not found" the same way."""

from __future__ import annotations

import urllib.parse
from typing import Any

from tether.client.http import ApiClient, ApiRefused
from tether.errors import TetherError
from tether.model import Obj

PAGE = 500
"""Applications asked for per page of the list."""
NOT_FOUND_HINT = "list them with 'tether app list' or check -n/--namespace"


class ApiReader:
    """The reads of ``/api/v1/applications`` over ``api``'s connection."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    @property
    def where(self) -> str:
        return self.api.options.where

    def call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        """The JSON object ``method path`` answers (``options``: ``ApiClient.call_now``'s);
        an app the caller may not read is "not found", with the direct path's words and
        advice."""
        try:
            answer = self.api.call_now(method, path, **options)
        except ApiRefused as e:
            if e.status == 404 and e.reason == "NotFound" and "not found" in e.message:
                raise TetherError(e.message, hint=NOT_FOUND_HINT) from None
            raise
        if not isinstance(answer, dict):
            raise TetherError(f"{self.where} answered {method} {path} with no JSON object")
        return answer

    def list(self, namespace: str) -> list[Obj]:
        """Every Application in ``namespace`` the caller may list, page by page."""
        items: list[Obj] = []
        token = ""
        while True:
            query = {"namespace": namespace, "limit": str(PAGE)}
            if token:
                query["continue"] = token
            answer = self.call("GET", "/api/v1/applications", query=query)
            items.extend(i for i in answer.get("items") or [] if isinstance(i, dict))
            token = str(answer.get("continue") or "")
            if not token:
                return items

    def get(self, name: str, namespace: str) -> Obj:
        return self.call("GET", app_path(namespace, name))

    def diff(self, name: str, namespace: str, revision: str | None) -> dict[str, Any]:
        query = {"revision": revision} if revision else None
        return self.call("GET", app_path(namespace, name, "/diff"), query=query)

    def history(self, name: str, namespace: str) -> dict[str, Any]:
        return self.call("GET", app_path(namespace, name, "/history"))


def app_path(namespace: str, name: str, tail: str = "") -> str:
    quote = urllib.parse.quote
    return f"/api/v1/applications/{quote(namespace, safe='')}/{quote(name, safe='')}{tail}"
