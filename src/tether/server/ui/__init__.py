"""The web UI's static files: ``/`` answers ``index.html``, ``/ui/<file>`` the scripts, styles
and images beside it, each with a strict Content-Security-Policy.

The files hold no data (the page reads everything from ``/api/v1`` once logged in), so they
are served without a caller. Only the files shipped in ``static/`` are ever answered: the
names are read once, so no path from a request reaches the file system.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
CACHE_CONTROL = "no-cache"
"""Revalidate every time (by ETag): the names carry no version, so an upgrade must show."""
INDEX = "index.html"


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Every file of ``static/`` of a type the UI serves, by name."""
    folder = resources.files(__package__) / "static"
    assets: dict[str, Asset] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        assets[entry.name] = Asset(body, CONTENT_TYPES[suffix], etag)
    return assets


def add_ui_routes(app: web.Application) -> None:
    """``GET /`` and ``GET /ui/{file}``: what ``create_app(extensions=[...])`` takes."""
    assets = load_assets()

    def answer(request: web.Request, name: str) -> web.Response:
        asset = assets.get(name)
        if asset is None:
            return web.Response(
                status=404,
                text=f"no such file: /ui/{name}\n",
                headers={**SECURITY_HEADERS, "Cache-Control": CACHE_CONTROL},
            )
        headers = {**SECURITY_HEADERS, "Cache-Control": CACHE_CONTROL, "ETag": asset.etag}
        if asset.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = asset.content_type
        return web.Response(body=asset.body, headers=headers)

    async def index(request: web.Request) -> web.Response:
        return answer(request, INDEX)

    async def file(request: web.Request) -> web.Response:
        return answer(request, request.match_info["file"])

    app.router.add_get("/", index)
    app.router.add_get("/ui/{file}", file)
