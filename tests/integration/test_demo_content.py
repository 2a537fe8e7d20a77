"""What `make demo` pushes besides the plain directory, on the real control plane and git
server: its Kustomize overlay and its Helm chart (with a values file) reach Synced and
Healthy under the controller, as the demo's Applications ask."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from devcluster import demo
from devcluster.gitserver import RepoHandle

from cluster_helpers import WAIT, app_status, eventually, run_tether, runtime_options
from tether.controller.runtime import Runtime
from tether.kube import KubeClient


async def test_the_demos_kustomize_overlay_and_helm_chart_are_synced_and_healthy(
    kube: KubeClient, kubeconfig: str, home: str, git_repo: RepoHandle, tmp_path: Path
) -> None:
    sha = git_repo.commit(demo.RENDERED_FILES)
    apps = {
        demo.KUSTOMIZE_APP: demo.rendered_app(
            demo.KUSTOMIZE_APP, git_repo.http_url, "kustomize/overlays/prod", {}
        ),
        demo.HELM_APP: demo.rendered_app(
            demo.HELM_APP,
            git_repo.http_url,
            "helm/guestbook",
            {"helm": {"valueFiles": ["values-prod.yaml"], "releaseName": "guestbook"}},
        ),
    }
    dests = []
    for obj in apps.values():
        obj["metadata"]["namespace"] = home
        # A destination of this test's own (the demo's is fixed), created by the sync.
        dest = f"{home}-{obj['spec']['destination']['namespace']}"
        obj["spec"]["destination"]["namespace"] = dest
        dests.append(dest)
        # As the demo creates them: `tether app apply -f FILE`.
        path = tmp_path / f"{obj['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(obj, sort_keys=False))
        code, out = await run_tether(kubeconfig, "app", "apply", "-f", str(path))
        assert code == 0, out

    async def healthy(name: str) -> dict[str, Any] | None:
        st = await app_status(kube, home, name)
        ok = (
            (st.get("sync") or {}).get("status") == "Synced"
            and (st.get("sync") or {}).get("revision") == sha
            and (st.get("health") or {}).get("status") == "Healthy"
        )
        return st if ok else None

    try:
        async with Runtime(runtime_options(home, tmp_path, kubeconfig)):
            kust = await eventually(lambda: healthy(demo.KUSTOMIZE_APP), WAIT, "kustomize app")
            helm = await eventually(lambda: healthy(demo.HELM_APP), WAIT, "helm app")
    finally:
        for d in dests:
            await kube.delete("v1", "Namespace", d, propagation="Background")
    assert kust["sourceTypes"] == ["Kustomize"]
    assert helm["sourceTypes"] == ["Helm"]
    kust_ns, helm_ns = dests
    deploy = await kube.get("apps/v1", "Deployment", "prod-guestbook", kust_ns)
    assert deploy is not None and deploy["spec"]["replicas"] == 3
    assert deploy["metadata"]["labels"]["env"] == "prod"
    cm = await kube.get("v1", "ConfigMap", "guestbook-config", helm_ns)
    assert cm is not None and cm["data"]["GREETING"] == "Hello from values-prod.yaml"
    deploy = await kube.get("apps/v1", "Deployment", "guestbook", helm_ns)
    assert deploy is not None and deploy["spec"]["replicas"] == 2
