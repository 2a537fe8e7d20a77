"""The UI's shipped files: every file a page loads is shipped, nothing is loaded from another
origin, and nothing the CSP forbids (inline script or style, HTML parsed from strings)."""

from __future__ import annotations

import re

import pytest

from tether.server.ui import CONTENT_TYPES, CSP, INDEX, load_assets

pytestmark = pytest.mark.unit

ASSETS = load_assets()


def text(name: str) -> str:
    return ASSETS[name].body.decode()


def test_the_page_and_its_modules_are_shipped_with_their_types() -> None:
    assert INDEX in ASSETS and ASSETS[INDEX].content_type.startswith("text/html")
    html = text(INDEX)
    loaded = re.findall(r'(?:src|href)="/ui/([^"]+)"', html)
    assert {"app.js", "style.css", "favicon.svg"} <= set(loaded)
    for name in loaded:
        assert name in ASSETS, name
    for name in [n for n in ASSETS if n.endswith(".js")]:
        for imported in re.findall(r"from '\./([^']+)'", text(name)):
            assert imported in ASSETS, f"{name} imports {imported}"
        assert ASSETS[name].content_type == CONTENT_TYPES[".js"]


def test_nothing_comes_from_another_origin() -> None:
    for name, asset in ASSETS.items():
        if name.endswith(".svg"):
            continue  # its xmlns is a name, not a fetch
        body = asset.body.decode()
        assert not re.search(r"""(src|href|url\()\s*=?\s*["']?(https?:)?//""", body), name
        assert not re.search(r"https?://", body), f"{name} names an outside address"
        assert "@import" not in body, name


def test_nothing_the_csp_forbids() -> None:
    html = text(INDEX)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    for name in [n for n in ASSETS if n.endswith(".js")]:
        body = text(name)
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in body, f"{name} uses {sink}"
    assert "script-src 'self'" in CSP and "'unsafe-inline'" not in CSP
    assert "default-src 'none'" in CSP and "frame-ancestors 'none'" in CSP


def test_every_file_has_its_own_etag() -> None:
    etags = [a.etag for a in ASSETS.values()]
    assert len(set(etags)) == len(etags)
