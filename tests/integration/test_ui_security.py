"""The web UI's guards, in a real browser against the real controller: the security headers
of every file, no CSP violation on a page load, a `javascript:` repository URL never made a
link, a user who may list one namespace sees only its apps, and no session (none, refused,
ended) shows the login page."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from devcluster.gitserver import RepoHandle
from playwright.async_api import expect

from api_fixtures import app_account
from cluster_helpers import cm_yaml, new_app, release_applications
from tether.kube import KubeClient
from tether.server.auth import AuthSettings
from tether.server.ui import CSP, add_ui_routes
from ui_browser import UI_WAIT, UiAt, browser, ui_at, ui_pages  # noqa: F401

READER = ["list", "get"]
EVIL_URL = "javascript:0/alert(document.domain)"
"""A script URL the Application schema accepts (it reads as host ``javascript``, port 0)."""


@pytest.fixture
async def ui_only() -> AsyncIterator[str]:
    """An HTTP server with the UI's routes alone: its files need no caller and no cluster."""
    app = web.Application()
    add_ui_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_every_ui_response_carries_the_security_headers(ui_only: str) -> None:
    async with aiohttp.ClientSession() as http:
        for path, ctype in (
            ("/", "text/html"),
            ("/ui/app.js", "text/javascript"),
            ("/ui/style.css", "text/css"),
            ("/ui/favicon.svg", "image/svg+xml"),
        ):
            async with http.get(ui_only + path) as resp:
                assert resp.status == 200, path
                assert resp.headers["Content-Type"].startswith(ctype), path
                assert resp.headers["Content-Security-Policy"] == CSP
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
                assert resp.headers["Referrer-Policy"] == "no-referrer"
                assert resp.headers["X-Frame-Options"] == "DENY"
                assert resp.headers["Cache-Control"] == "no-cache"
                etag = resp.headers["ETag"]
            async with http.get(ui_only + path, headers={"If-None-Match": etag}) as resp:
                assert resp.status == 304
        # Only the shipped files: nothing else of the package, nothing of the file system.
        for path in ("/ui/missing.js", "/ui/..%2f__init__.py", "/ui/%2e%2e%2f%2e%2e%2fhttp.py"):
            async with http.get(ui_only + path) as resp:
                assert resp.status == 404, path
                assert "def " not in await resp.text()
                assert resp.headers["Content-Security-Policy"] == CSP
    assert "frame-ancestors 'none'" in CSP and "script-src 'self'" in CSP


async def test_a_javascript_repo_url_is_never_a_link(
    kube: KubeClient,
    home: str,
    ui_at: UiAt,  # noqa: F811
) -> None:
    app = new_app("evil", home, EVIL_URL, home, auto_sync=False)
    app["metadata"]["annotations"].update(
        {
            "link.tether.dev/runbook": "javascript:alert(1)",
            "link.argocd.argoproj.io/dashboard": "https://grafana.example/d/shop",
        }
    )
    await kube.apply(app)
    admin = await kube.bearer_token()
    assert admin
    async with ui_at() as ui:
        page = ui.page
        await ui.login(admin)
        await page.get_by_role("link", name="evil").click()
        summary = page.locator("#summary")
        await expect(summary.locator(".nolink").first).to_have_text(EVIL_URL, timeout=UI_WAIT)
        await expect(summary.get_by_text("runbook")).to_be_visible()
        hrefs = await page.locator("a").evaluate_all("els => els.map(e => e.href)")
        assert not [h for h in hrefs if not h.startswith(("http://", "https://"))], hrefs
        # The http(s) link annotation is a link; the script one is text.
        dashboard = summary.get_by_role("link", name="dashboard")
        assert await dashboard.get_attribute("href") == "https://grafana.example/d/shop"
        assert await summary.get_by_role("link", name="runbook").count() == 0
        await page.goto(ui.url + "/#/")
        await expect(page.locator("#app-rows")).to_contain_text("evil", timeout=UI_WAIT)
        hrefs = await page.locator("a").evaluate_all("els => els.map(e => e.href)")
        assert not [h for h in hrefs if not h.startswith(("http://", "https://"))], hrefs
        # The one guard every outside link goes through.
        verdicts = await page.evaluate(
            """async () => {
                const { safeHref } = await import('/ui/dom.js');
                return [
                    'javascript:alert(1)', ' JavaScript:alert(1)', 'data:text/html,x',
                    'vbscript:x', '//evil.example/x', '/relative', 'git@github.com:o/r.git',
                    'ssh://git@host/r.git', 'https://github.com/o/r', 'http://h/x',
                ].map((u) => safeHref(u));
            }"""
        )
        assert verdicts[:8] == [None] * 8
        assert verdicts[8:] == ["https://github.com/o/r", "http://h/x"]
        assert ui.csp_violations() == [], ui.console


async def test_a_user_allowed_in_one_namespace_sees_only_its_apps(
    kube: KubeClient,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    ui_at: UiAt,  # noqa: F811
) -> None:
    git_repo.commit({"app/cm.yaml": cm_yaml("settings", {"color": "blue"})}, message="first")
    await kube.apply(new_app("mine", home, git_repo.http_url, home, auto_sync=False))
    await kube.apply(new_app("theirs", namespace, git_repo.http_url, namespace, auto_sync=False))
    token = await app_account(kube, home, "reader", READER)
    try:
        async with ui_at(namespaces=[home, namespace]) as ui:
            page = ui.page
            await ui.login(token)
            await expect(page.locator("#list-count")).to_have_text("1 application")
            await expect(page.locator("#app-rows")).to_contain_text("mine")
            assert await page.locator(f'#app-rows tr[data-key="{namespace}/theirs"]').count() == 0
            # May read, may not sync: the API's refusal is shown in the dialog.
            await page.get_by_role("link", name="mine").click()
            await page.get_by_role("button", name="Sync", exact=True).click()
            await page.get_by_role("dialog").get_by_role("button", name="Sync").click()
            await expect(page.locator("#confirm-error")).to_contain_text(
                "may not sync", timeout=UI_WAIT
            )
            await page.keyboard.press("Escape")
            # The other namespace's app answers as a missing one does.
            await page.goto(f"{ui.url}/#/apps/{namespace}/theirs")
            await expect(page.locator("main .error")).to_contain_text("not found", timeout=UI_WAIT)
            await page.goto(f"{ui.url}/#/apps/{namespace}/no-such-app")
            missing = await page.locator("main .error").inner_text()
            await page.goto(f"{ui.url}/#/apps/{namespace}/theirs")
            await expect(page.locator("main .error")).to_have_text(
                missing.replace("no-such-app", "theirs"), timeout=UI_WAIT
            )
            assert ui.csp_violations() == [], ui.console
    finally:
        await release_applications(kube, namespace)


async def test_without_a_session_the_login_page_shows(
    kube: KubeClient,
    home: str,
    ui_at: UiAt,  # noqa: F811
) -> None:
    token = await app_account(kube, home, "viewer", READER)
    user = f"system:serviceaccount:{home}:viewer"
    admin = await kube.bearer_token()
    async with ui_at() as ui:
        page = ui.page
        # No session: the login page; a refused token says so and stays there.
        await page.goto(ui.url + "/#/apps/x/y")
        await expect(page).to_have_title("Log in · tether", timeout=UI_WAIT)
        await page.get_by_label("Token").fill("not-a-token")
        await page.get_by_role("button", name="Log in").click()
        await expect(page.locator("#login-error")).to_contain_text("the token is not valid")
        await ui.login(token)
        await expect(page.locator("#who")).to_contain_text(user)
        cookies = await page.context.cookies()
        session = next(c for c in cookies if c["name"] == "tether_session")
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        assert await page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it

        # A reload keeps the session (the cookie), and asks for it again.
        await page.reload()
        await expect(page.locator("#who")).to_contain_text(user, timeout=UI_WAIT)

        # Ended by an administrator: the next request lands on the login page.
        async with (
            aiohttp.ClientSession() as http,
            http.delete(
                f"{ui.url}/api/v1/sessions",
                params={"user": user},
                headers={"Authorization": f"Bearer {admin}"},
            ) as resp,
        ):
            assert resp.status == 200 and (await resp.json())["ended"] == 1
        await page.goto(f"{ui.url}/#/apps/{home}/anything")
        await expect(page).to_have_title("Log in · tether", timeout=UI_WAIT)
        await expect(page.locator("#login-error")).to_contain_text("logged out")

        # Logging out ends the session: the cookie no longer opens anything.
        await ui.login(token)
        await page.get_by_role("button", name="Log out").click()
        await expect(page).to_have_title("Log in · tether", timeout=UI_WAIT)
        await page.reload()
        await expect(page.get_by_label("Token")).to_be_visible(timeout=UI_WAIT)
        assert ui.csp_violations() == [], ui.console


async def test_an_expired_session_returns_the_open_page_to_the_login_form(
    kube: KubeClient,
    home: str,
    ui_at: UiAt,  # noqa: F811
) -> None:
    admin = await kube.bearer_token()
    assert admin
    async with ui_at(auth=AuthSettings(session_ttl=5.0)) as ui:
        page = ui.page
        await ui.login(admin)
        await expect(page.locator("#stream-state")).to_have_text("● live", timeout=UI_WAIT)
        # Nobody touches the page: the event stream's check of the session ends it, and the
        # page says so.
        await expect(page.locator("#login-error")).to_contain_text("logged out", timeout=UI_WAIT)
        await expect(page).to_have_title("Log in · tether")
