"""A real browser for the UI's tests: Debian's headless Chromium driven by Playwright, a page
that records the console (a CSP violation is logged there), a page on a controller runtime
started for the test (``ui_at``), logging in with a token, and screenshots saved to
``.dev/screenshots/`` (and to ``$TETHER_UI_SCREENSHOTS`` when set, e.g. ``docs/ui``, to
refresh the pictures in the docs)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from api_fixtures import Serve
from tether.controller.runtime import Runtime

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/lib/chromium/chromium-headless-shell"
VIEWPORT = {"width": 1280, "height": 800}
UI_WAIT = 60_000
"""Milliseconds any UI condition may take to appear: a bound, never a performance claim."""


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        await b.close()


@dataclass
class UiPage:
    """A page in a context of its own (its own cookies), and what its console said."""

    page: Page
    url: str
    console: list[str] = field(default_factory=list)
    runtime: Runtime | None = None
    """The controller runtime serving the page, when ``ui_at`` started it."""

    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m]

    async def login(self, token: str) -> None:
        """Logs in through the login form and waits for the application list."""
        await self.page.goto(self.url + "/")
        await self.page.get_by_label("Token").fill(token)
        await self.page.get_by_role("button", name="Log in").click()
        await expect(self.page.locator("#list-count")).to_contain_text(
            "application", timeout=UI_WAIT
        )
        await expect(self.page.locator("#list-count")).not_to_contain_text(
            "Loading", timeout=UI_WAIT
        )

    async def screenshot(self, name: str) -> Path:
        """``name``.png of the viewport, in .dev/screenshots (and $TETHER_UI_SCREENSHOTS)."""
        out = REPO / ".dev" / "screenshots" / f"{name}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(out))
        extra = os.environ.get("TETHER_UI_SCREENSHOTS")
        if extra:
            target = (REPO / extra / f"{name}.png").resolve()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(out.read_bytes())
        return out


async def open_page(browser: Browser, url: str) -> UiPage:
    """A fresh context (no cookies) at 1280x800, its console recorded."""
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = await context.new_page()
    ui = UiPage(page, url)

    def record(msg: ConsoleMessage) -> None:
        ui.console.append(f"{msg.type}: {msg.text}")

    page.on("console", record)
    return ui


@pytest.fixture
async def ui_pages(browser: Browser) -> AsyncIterator[list[UiPage]]:
    """Pages a test opens (``open_page``); their contexts are closed afterwards."""
    pages: list[UiPage] = []
    yield pages
    for ui in pages:
        await ui.page.context.close()


UiAt = Callable[..., AbstractAsyncContextManager[UiPage]]


@pytest.fixture
def ui_at(serve: Serve, browser: Browser, ui_pages: list[UiPage]) -> UiAt:
    """``async with ui_at(**runtime_options) as ui``: a controller runtime for the test's
    ``home`` (``serve``) and a fresh page at its URL, both closed afterwards."""

    @asynccontextmanager
    async def running(**kw: Any) -> AsyncIterator[UiPage]:
        async with serve(**kw) as server:
            ui = await open_page(browser, server.url)
            ui.runtime = server.rt
            ui_pages.append(ui)
            yield ui

    return running
