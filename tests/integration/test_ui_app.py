"""The web UI in a real browser against the real controller, control plane and git server:
log in with a ServiceAccount token, see the app Synced and Healthy, see a `kubectl`-style edit
turn it OutOfSync without reloading, sync it from its page and see it healed; the resource
tree down to the Pods, and a Secret's diff masked."""

from __future__ import annotations

import uuid

import yaml
from devcluster.gitserver import GitServer
from playwright.async_api import expect

from api_fixtures import app_account
from cluster_helpers import WEB_DEPLOYMENT, cm_yaml, eventually, new_app
from tether.kube import KubeClient
from ui_browser import UI_WAIT, UiAt, browser, ui_at, ui_pages  # noqa: F401

SECRET_VALUE = "hunter2-do-not-show"


def secret_yaml() -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "stringData": {"password": SECRET_VALUE},
        }
    )


async def test_log_in_see_drift_sync_and_see_it_healed(
    kube: KubeClient,
    home: str,
    namespace: str,
    git_server: GitServer,
    ui_at: UiAt,  # noqa: F811
) -> None:
    # Named as a team would name it: the screenshots in the docs show it.
    git_repo = git_server.create_repo(f"shop-{uuid.uuid4().hex[:6]}")
    git_repo.commit(
        {
            "app/cm.yaml": cm_yaml("settings", {"color": "blue"}),
            "app/deploy.yaml": WEB_DEPLOYMENT,
            "app/secret.yaml": secret_yaml(),
            "api/cm.yaml": cm_yaml("api-settings", {"replicas": "2"}),
            "worker/cm.yaml": cm_yaml("worker-settings", {"queue": "jobs"}),
        },
        message="first",
        author=("Alice", "alice@example.com"),
    )
    await kube.apply(new_app("shop", home, git_repo.http_url, namespace))
    await kube.apply(new_app("worker", home, git_repo.http_url, namespace, path="worker"))
    await kube.apply(
        new_app("api", home, git_repo.http_url, namespace, path="api", auto_sync=False)
    )
    token = await app_account(kube, home, "operator", ["get", "list", "sync"])

    async with ui_at() as ui:
        page = ui.page

        # Logged out: the login page, served with the strict CSP.
        resp = await page.goto(ui.url + "/")
        assert resp is not None and "script-src 'self'" in resp.headers["content-security-policy"]
        await expect(page.get_by_label("Token")).to_be_visible(timeout=UI_WAIT)
        await ui.screenshot("login")
        await ui.login(token)

        row = page.locator(f'#app-rows tr[data-key="{home}/shop"]')
        await expect(row.locator(".c-sync")).to_have_text("✓ Synced", timeout=UI_WAIT)
        await expect(row.locator(".c-health")).to_have_text("♥ Healthy", timeout=UI_WAIT)
        await expect(row).to_contain_text("Alice")
        api = page.locator(f'#app-rows tr[data-key="{home}/api"]')
        await expect(api.locator(".c-sync")).to_have_text("↻ OutOfSync", timeout=UI_WAIT)
        await expect(page.locator(f'#app-rows tr[data-key="{home}/worker"] .c-sync')).to_have_text(
            "✓ Synced", timeout=UI_WAIT
        )
        await ui.screenshot("list")

        # Filters and search narrow the rows; "All" and an empty search bring them back.
        await page.get_by_label("Sync").select_option("OutOfSync")
        await expect(page.locator("#app-rows > tr")).to_have_count(1)
        await expect(page.locator("#list-count")).to_have_text("1 of 3 applications shown")
        await page.get_by_label("Sync").select_option("")
        await page.get_by_label("Search").fill("work")
        await expect(page.locator("#app-rows > tr")).to_have_count(1)
        await expect(page.locator("#app-rows")).to_contain_text("worker")
        await page.get_by_label("Search").fill("")
        await expect(page.locator("#app-rows > tr")).to_have_count(3)

        # The row is a link, reachable by keyboard.
        link = row.get_by_role("link", name="shop")
        await link.focus()
        await page.keyboard.press("Enter")
        await expect(page).to_have_title("shop · tether", timeout=UI_WAIT)
        summary = page.locator("#summary")
        await expect(summary).to_contain_text("Synced", timeout=UI_WAIT)

        # The tree: Deployment -> ReplicaSet -> Pod through owner references.
        deployment = page.locator("#tree li.tree-node").filter(
            has=page.locator(':scope > button[data-kind="Deployment"]')
        )
        pod = deployment.locator(
            'li.tree-node:has(> button[data-kind="ReplicaSet"]) button[data-kind="Pod"]'
        )
        await expect(pod.first).to_be_visible(timeout=UI_WAIT)
        await ui.screenshot("app")

        # A page that stays loaded: the marker survives only if nothing reloads it.
        await page.evaluate("window.__notReloaded = true")

        # Edited live, the way kubectl does: drift shows without a reload.
        cm = await kube.get("v1", "ConfigMap", "settings", namespace)
        secret = await kube.get("v1", "Secret", "creds", namespace)
        assert cm is not None and secret is not None
        await kube.merge_patch(cm, {"data": {"color": "hacked"}}, field_manager="kubectl-edit")
        await kube.merge_patch(
            secret, {"stringData": {"password": "changed-live"}}, field_manager="kubectl-edit"
        )
        await expect(summary.locator("dd .badge").first).to_have_text(
            "↻ OutOfSync", timeout=UI_WAIT
        )
        assert await page.evaluate("window.__notReloaded === true")
        await expect(page.locator('#tree button[data-kind="ConfigMap"]')).to_contain_text(
            "OutOfSync", timeout=UI_WAIT
        )

        # The Secret's diff: which key changed, never its value.
        await page.locator('#tree button[data-kind="Secret"]').click()
        panel = page.locator("#panel")
        await expect(panel.locator("pre.diff")).to_contain_text("(changed)", timeout=UI_WAIT)
        text = await panel.inner_text()
        assert SECRET_VALUE not in text and "changed-live" not in text
        assert "********" in text
        await ui.screenshot("diff")
        await page.locator('#tree button[data-kind="ConfigMap"]').click()
        await expect(panel.locator("pre.diff")).to_contain_text("hacked", timeout=UI_WAIT)

        # Sync, confirmed in a dialog that takes the focus and closes with Escape.
        await page.get_by_role("button", name="Sync", exact=True).click()
        dialog = page.get_by_role("dialog")
        await expect(dialog).to_be_visible()
        assert await page.evaluate("document.activeElement.id") == "sync-prune"
        await ui.screenshot("sync-dialog")
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        # A dry run says what would change and changes nothing.
        cm = await kube.get("v1", "ConfigMap", "settings", namespace)
        assert cm is not None
        await page.get_by_role("button", name="Sync", exact=True).click()
        await page.get_by_label("Dry run").check()
        await dialog.get_by_role("button", name="Sync").click()
        await expect(page.locator("#result")).to_contain_text("Dry run", timeout=UI_WAIT)
        await expect(page.locator("#result pre")).to_contain_text("settings")
        after = await kube.get("v1", "ConfigMap", "settings", namespace)
        assert after is not None
        assert after["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]
        await page.get_by_role("button", name="Sync", exact=True).click()
        await dialog.get_by_role("button", name="Sync").click()
        await expect(page.locator("#result")).to_contain_text("Sync requested", timeout=UI_WAIT)
        await expect(summary.locator("dd .badge").first).to_have_text("✓ Synced", timeout=UI_WAIT)

        async def healed() -> bool:
            live = await kube.get("v1", "ConfigMap", "settings", namespace)
            return bool((live or {}).get("data", {}).get("color") == "blue")

        await eventually(healed, what="the ConfigMap put back by the sync")
        # The sync is in the history with who asked for it.
        await expect(page.locator("#history")).to_contain_text(
            f"system:serviceaccount:{home}:operator", timeout=UI_WAIT
        )
        assert await page.evaluate("window.__notReloaded === true")

        # Refresh, confirmed: recorded in the audit trail with the user.
        await page.get_by_role("button", name="Refresh").click()
        await dialog.get_by_role("button", name="Refresh").click()
        await expect(page.locator("#result")).to_contain_text("Refresh requested")
        assert ui.runtime is not None
        store = ui.runtime.store
        assert store is not None

        async def refresh_users() -> list[str]:
            return [r.user for r in await store.query(app=f"{home}/shop") if r.kind == "refresh"]

        users = await eventually(refresh_users, what="the refresh's audit record")
        assert users == [f"system:serviceaccount:{home}:operator"]
        assert ui.csp_violations() == []
        # Nothing else went wrong in the page: the only errors are the 401s of the
        # session check made before logging in.
        assert [m for m in ui.console if "status of 401" not in m] == [], ui.console
