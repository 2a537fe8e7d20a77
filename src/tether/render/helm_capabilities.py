"""What ``.Capabilities.APIVersions`` claims in ``helm template``; objects the cluster can't serve.

``helm template`` cannot be told the cluster's API list exactly: ``--api-versions`` is added
to the list of every group/version helm itself was built with. So on a Kubernetes 1.20
cluster ``.Capabilities.APIVersions.Has "autoscaling/v2"`` is true, and a chart that chooses
with it renders an ``autoscaling/v2`` HorizontalPodAutoscaler the cluster cannot store.
(A ``group/version/Kind`` query, and ``.Capabilities.KubeVersion``, are answered from the
cluster.) Rather than let such an object fail at apply time, the render names the template,
the version the cluster lacks, and why.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from tether.errors import RenderError
from tether.model import Manifest
from tether.sandbox import Runner, ToolError

_PROBE_CHART = "apiVersion: v2\nname: capabilities-probe\nversion: 0.1.0\n"
_PROBE_TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: probe
data:
  versions: {{ join " " .Capabilities.APIVersions | quote }}
"""

_builtin: dict[str, frozenset[str]] = {}


async def builtin_api_versions(binary: str, runner: Runner) -> frozenset[str]:
    """The group/versions helm claims for every cluster (asked once per binary)."""
    hit = _builtin.get(binary)
    if hit is not None:
        return hit
    with tempfile.TemporaryDirectory(prefix="tether-helm-probe-") as tmp:
        chart = Path(tmp) / "probe"
        (chart / "templates").mkdir(parents=True)
        (chart / "Chart.yaml").write_text(_PROBE_CHART)
        (chart / "templates" / "probe.yaml").write_text(_PROBE_TEMPLATE)
        env = {"HELM_CACHE_HOME": tmp, "HELM_CONFIG_HOME": tmp, "HELM_DATA_HOME": tmp}
        result = await runner.run(
            [binary, "template", "probe", str(chart)], tool="helm", cwd=Path(tmp), env=env
        )
    try:
        doc = yaml.safe_load(result.stdout)
        versions = frozenset(str(doc["data"]["versions"]).split())
    except (yaml.YAMLError, KeyError, TypeError) as e:
        raise ToolError("helm", f"cannot read its built-in API versions: {e}") from e
    _builtin[binary] = versions
    return versions


def check_served(
    manifests: Iterable[Manifest],
    served: Sequence[str],
    builtin: frozenset[str],
    kube_version: str,
) -> None:
    """Refuse an object of a built-in API group that the cluster does not serve.

    ``served`` is the cluster's list (group/versions and group/version/Kinds); custom
    resources are left to the sync, which knows about CRDs applied in the same sync."""
    if not served:
        return
    served_set = set(served)
    kinds_known = any(entry.count("/") == 2 or _is_core_kind(entry) for entry in served)
    builtin_groups = {_group(gv) for gv in builtin}
    cluster = f"Kubernetes {kube_version}" if kube_version else "the cluster"
    for manifest in manifests:
        api_version = str(manifest.obj.get("apiVersion", ""))
        kind = str(manifest.obj.get("kind", ""))
        if _group(api_version) not in builtin_groups:
            continue
        if api_version not in served_set:
            raise _unserved(manifest, f"{api_version} {kind}", cluster, api_version in builtin)
        if kinds_known and f"{api_version}/{kind}" not in served_set:
            raise _unserved(manifest, f"{kind} in {api_version}", cluster, False)


def _unserved(manifest: Manifest, what: str, cluster: str, helm_claims: bool) -> RenderError:
    version = str(manifest.obj.get("apiVersion", ""))
    kind = str(manifest.obj.get("kind", ""))
    why = (
        f'; if the chart chose it with .Capabilities.APIVersions.Has "{version}": helm '
        "answers that from its own built-in list, not the cluster's"
        if helm_claims
        else ""
    )
    return RenderError(
        f"renders {what}, which {cluster} does not serve{why}",
        file=manifest.source_file,
        hint=f'test for "{version}/{kind}" (group/version/Kind is checked against the '
        "cluster) or .Capabilities.KubeVersion in the chart, or set the chart's value that "
        "picks the API version",
    )


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def _is_core_kind(entry: str) -> bool:
    return entry.startswith("v1/")
