"""ignoreDifferences.jqPathExpressions on the real control plane: a jq expression hides the
fields it selects, and one that runs away fails its own app with a condition, no other."""

from __future__ import annotations

import uuid

from devcluster.gitserver import RepoHandle
from test_engine import APPS_NS, deployment, engine, repo_secret  # noqa: F401  (fixtures)

from tether.api.application import API_VERSION, new_application
from tether.engine import Engine
from tether.kube import KubeClient
from tether.model import SyncStatus


async def create_app(eng: Engine, repo: RepoHandle, dest: str, jq: list[str]) -> str:
    name = f"jq-{uuid.uuid4().hex[:8]}"
    obj = new_application(name, APPS_NS, repo_url=repo.http_url, path="app", dest_namespace=dest)
    rule = {"group": "apps", "kind": "Deployment", "jqPathExpressions": jq}
    obj["spec"]["ignoreDifferences"] = [rule]
    await eng.kube.apply(obj)
    return name


async def test_a_runaway_jq_expression_fails_its_app_only(
    engine: Engine,  # noqa: F811
    repo_secret: str,  # noqa: F811
    git_repo: RepoHandle,
    namespace: str,
    kube: KubeClient,
) -> None:
    git_repo.commit({"app/deploy.yaml": deployment("web", replicas=2)})
    other = f"{namespace}-b"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    good = await create_app(engine, git_repo, namespace, [".spec.replicas"])
    bad = await create_app(engine, git_repo, other, ["[range(1e9)]"])
    try:
        # A first sync creates the objects (nothing live to compare, so no rule runs yet).
        for name, dest in ((good, namespace), (bad, other)):
            await engine.sync(await engine.get_app(name, APPS_NS))
            live = await kube.get("apps/v1", "Deployment", "web", dest)
            assert live is not None
            await kube.merge_patch(live, {"spec": {"replicas": 5}}, field_manager="kubectl-scale")

        cmp_bad = await engine.compare(await engine.get_app(bad, APPS_NS))
        cmp_good = await engine.compare(await engine.get_app(good, APPS_NS))

        # The replica count changed by hand is ignored by the working expression.
        assert cmp_good.error is None
        assert cmp_good.sync_status is SyncStatus.SYNCED
        (condition,) = [c for c in cmp_bad.conditions if c.type == "ComparisonError"]
        assert f"Deployment.apps {other}/web: ignoreDifferences: jqPathExpressions" in (
            condition.message
        )
        assert "'[range(1e9)]'" in condition.message
        assert "MiB of memory" in condition.message or "took longer than 1s" in condition.message
    finally:
        for name in (good, bad):
            await kube.delete(API_VERSION, "Application", name, APPS_NS, propagation="Background")
        await kube.delete("v1", "Namespace", other, propagation="Background")
