"""The resource tree in a real browser: a sync hook marked as a hook (with the Pod its Job
ran), and an object the last sync pruned marked as pruned, after a commit removed it and a
Refresh from the page had the controller sync again."""

from __future__ import annotations

from typing import Any

import yaml
from devcluster.gitserver import RepoHandle
from playwright.async_api import expect

from cluster_helpers import cm_yaml, new_app
from tether.kube import KubeClient
from ui_browser import UI_WAIT, UiAt, browser, ui_at, ui_pages  # noqa: F401


def hook_job(name: str, phase: str) -> str:
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "annotations": {"tether.dev/hook": phase}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "run", "image": "busybox", "command": ["true"]}],
                }
            },
        },
    }
    return yaml.safe_dump(job)


async def test_hooks_and_pruned_objects_are_marked(
    kube: KubeClient,
    home: str,
    namespace: str,
    git_repo: RepoHandle,
    ui_at: UiAt,  # noqa: F811
) -> None:
    git_repo.commit(
        {
            "app/keep.yaml": cm_yaml("keep", {"a": "1"}),
            "app/old.yaml": cm_yaml("old", {"b": "2"}),
            "app/migrate.yaml": hook_job("migrate", "PreSync"),
        },
        message="first",
    )
    await kube.apply(new_app("tree", home, git_repo.http_url, namespace))
    admin = await kube.bearer_token()
    assert admin
    async with ui_at() as ui:
        page = ui.page
        await ui.login(admin)
        row = page.locator(f'#app-rows tr[data-key="{home}/tree"]')
        await expect(row.locator(".c-sync")).to_have_text("✓ Synced", timeout=UI_WAIT)
        await row.get_by_role("link", name="tree").click()

        hook = page.locator("#tree li.tree-node").filter(
            has=page.locator(':scope > button[data-kind="Job"][data-name="migrate"]')
        )
        await expect(hook.locator(":scope > button .mark.hook")).to_have_text(
            "hook", timeout=UI_WAIT
        )
        await expect(hook.locator('button[data-kind="Pod"]').first).to_be_visible(timeout=UI_WAIT)
        await expect(page.locator('#tree button[data-name="old"]')).to_be_visible()

        # A commit removes "old"; Refresh from the page, and the auto-sync prunes it.
        git_repo.commit({"app/old.yaml": None}, message="drop old")
        await page.get_by_role("button", name="Refresh").click()
        await page.get_by_role("dialog").get_by_role("button", name="Refresh").click()
        pruned = page.locator('#tree li.is-pruned > button[data-name="old"]')
        await expect(pruned).to_be_visible(timeout=UI_WAIT)
        await expect(pruned.locator(".mark.pruned")).to_have_text("pruned")
        assert await kube.get("v1", "ConfigMap", "old", namespace) is None
        await expect(page.locator("#history")).to_contain_text("drop old", timeout=UI_WAIT)
        assert ui.csp_violations() == [], ui.console
