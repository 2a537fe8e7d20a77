"""What ``helm template`` prints, made into manifests; what it says when it fails, made readable.

Each object keeps the repository file it came from (helm's ``# Source:`` comment). Helm hooks
are kept and marked with ``tether.dev/hook`` and ``tether.dev/hook-weight`` so the sync phases
can run them at their time (``tether.sync.hooks``); hooks named by ``generateName`` are
allowed; test hooks are dropped, as ``helm install`` and Argo CD do.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass

from tether.errors import RenderError
from tether.model import Manifest
from tether.render.parse import check_unique, parse_manifests

HELM_HOOK = "helm.sh/hook"
HELM_HOOK_WEIGHT = "helm.sh/hook-weight"
HOOK = "tether.dev/hook"
ARGOCD_HOOK = "argocd.argoproj.io/hook"
HOOK_WEIGHT = "tether.dev/hook-weight"
TEST_HOOKS = frozenset({"test", "test-success", "test-failure"})
"""Run by ``helm test`` only; never part of a sync."""

_DOC_SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$", re.MULTILINE)
_SOURCE = re.compile(r"^# Source: (.+?)[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class ChartPaths:
    """How helm names a chart's files (``<chart name>/templates/x.yaml``) and where they are."""

    chart_name: str
    chart_path: str
    """The chart directory, relative to the repository root (``""`` for the root)."""

    def repo_file(self, helm_file: str) -> str:
        """The repository path of a file helm names; best effort for packaged subcharts."""
        head, _, rest = helm_file.partition("/")
        if head != self.chart_name or not rest:
            return helm_file
        return posixpath.join(self.chart_path, rest) if self.chart_path else rest


def manifests_from_output(stdout: bytes, paths: ChartPaths) -> list[Manifest]:
    """The objects helm printed, each with the repository file of its template; test hooks
    dropped, other hooks marked."""
    text = stdout.decode("utf-8", errors="replace")
    manifests: list[Manifest] = []
    for helm_file, chunk in _groups(text):
        file = paths.repo_file(helm_file) if helm_file else "(helm output)"
        for manifest in parse_manifests(chunk.encode(), file):
            if not is_test_hook(manifest.obj):
                mark_hook(manifest.obj, file)
                manifests.append(Manifest(manifest.obj, file, 0))
    check_unique(manifests)
    return manifests


def _groups(text: str) -> list[tuple[str, str]]:
    """The output cut into (helm file, its documents); a document with no ``# Source:`` line
    belongs to the template before it (one template may print several documents)."""
    groups: list[tuple[str, list[str]]] = []
    for document in _DOC_SEPARATOR.split(text):
        if not document.strip():
            continue
        found = _SOURCE.search(document)
        if found is not None or not groups:
            groups.append((found.group(1) if found else "", [document]))
        else:
            groups[-1][1].append(document)
    return [(file, "\n---\n".join(documents)) for file, documents in groups]


def hook_names(obj: Mapping[str, object]) -> list[str]:
    annotations = _annotations(obj)
    value = annotations.get(HELM_HOOK) if annotations is not None else None
    if not isinstance(value, str):
        return []
    return [name.strip() for name in value.split(",") if name.strip()]


def is_test_hook(obj: Mapping[str, object]) -> bool:
    """Helm treats an object as a test when any of its hooks is one."""
    return any(name in TEST_HOOKS for name in hook_names(obj))


def mark_hook(obj: dict[str, object], file: str) -> None:
    """Add ``tether.dev/hook`` (the hook names, comma separated; unless the object already
    carries tether's or Argo CD's hook annotation) and ``tether.dev/hook-weight`` (helm's
    weight, 0 when unset) to a hook object; other objects are left alone."""
    names = hook_names(obj)
    if not names:
        return
    annotations = _annotations(obj)
    assert annotations is not None
    weight = annotations.get(HELM_HOOK_WEIGHT, "0")
    text = str(weight).strip() or "0"
    if not re.fullmatch(r"[+-]?\d+", text):
        raise RenderError(
            f"{HELM_HOOK_WEIGHT} {text!r} is not a whole number",
            file=file,
            hint='hook weights are integers, quoted: "-5", "0", "10"',
        )
    if annotations.get(HOOK) is None and annotations.get(ARGOCD_HOOK) is None:
        # An object the chart also annotates as a tether or Argo CD hook is that hook (as in
        # Argo CD, whose annotation wins over Helm's).
        annotations[HOOK] = ",".join(names)
    annotations[HOOK_WEIGHT] = str(int(text))


def _annotations(obj: Mapping[str, object]) -> dict[str, object] | None:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return None
    annotations = metadata.get("annotations")
    return annotations if isinstance(annotations, dict) else None


# --- helm's errors --------------------------------------------------------------------------------


_YAML_LINE = re.compile(r"yaml: line (\d+)")


@dataclass(frozen=True)
class HelmFailure:
    message: str
    file: str = ""
    line: int = 0
    hint: str = ""


def explain_failure(
    stderr: str,
    paths: ChartPaths,
    value_files: Mapping[str, str],
    kube_version: str,
) -> HelmFailure:
    """Helm's message with sandbox paths replaced by the names the user wrote, and the
    repository file and line it is about.

    ``value_files`` maps each path helm was given to the name messages should use."""
    message = _clean(stderr, value_files)
    for arg, shown in value_files.items():
        if f"failed to parse {arg}" in stderr or f"open {arg}" in stderr:
            return HelmFailure(message, shown, _yaml_line(stderr), _VALUES_HINT)
    chart_file = (
        posixpath.join(paths.chart_path, "Chart.yaml") if paths.chart_path else "Chart.yaml"
    )
    if "requires kubeVersion" in stderr:
        return HelmFailure(
            message,
            chart_file,
            hint=f"the cluster runs Kubernetes {kube_version or 'of another version'}; pick a "
            "chart version that supports it",
        )
    loaded = re.search(r"cannot load ([\w.-]+\.yaml)", stderr)
    if loaded:
        file = posixpath.join(paths.chart_path, loaded.group(1))
        return HelmFailure(message, file, _yaml_line(stderr), "fix the YAML at that line")
    file, line = _template_location(stderr, paths)
    if file:
        return HelmFailure(message, file, line, _TEMPLATE_HINT)
    return HelmFailure(message, hint="see helm's message above")


_VALUES_HINT = "fix the values file: it must be a YAML mapping"
_TEMPLATE_HINT = "fix the template at that line, or the values it reads"


def _clean(stderr: str, value_files: Mapping[str, str]) -> str:
    text = stderr.strip()
    for arg, shown in sorted(value_files.items(), key=lambda item: -len(item[0])):
        text = text.replace(arg, shown)
    lines = [
        line.removeprefix("Error: ").strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith("Use --debug flag")
    ]
    joined = " ".join(lines)
    return joined if len(joined) <= 2000 else joined[:2000] + "…"


def _yaml_line(stderr: str) -> int:
    found = _YAML_LINE.search(stderr)
    return int(found.group(1)) if found else 0


def _template_location(stderr: str, paths: ChartPaths) -> tuple[str, int]:
    """The first ``<chart>/templates/...:<line>`` helm mentions (parse errors, failed
    executions, YAML that does not parse after rendering). A line helm gives only for the
    rendered text (``yaml: line N``) is not a line of the template, so it is left out."""
    name = re.escape(paths.chart_name)
    found = re.search(rf"({name}/[^\s:()\"]+)(?::(\d+))?", stderr)
    if not found:
        return "", 0
    line = int(found.group(2)) if found.group(2) else 0
    return paths.repo_file(found.group(1)), line


_FETCH_FAILED = re.compile(
    r"^\s*(failed to fetch .+|.*(?:Unauthorized|Forbidden|not found).*)$", re.M
)


def explain_build_failure(stdout: bytes, stderr: str, hidden: Mapping[str, str]) -> HelmFailure:
    """``helm dependency build``'s failure: the file it is about (``Chart.lock`` or
    ``Chart.yaml``, relative to the chart) and why, with the repository errors helm printed
    only as warnings on stdout (a 401 from a chart repository) put first."""
    fetch = _FETCH_FAILED.findall(stdout.decode("utf-8", errors="replace"))
    message = "; ".join([*(_clean(line, hidden) for line in fetch), _clean(stderr, hidden)])
    if "Chart.lock" in message or "lock file" in message:
        hint = "run 'helm dependency update' on the chart and commit Chart.lock"
        return HelmFailure(message, "Chart.lock", hint=hint)
    hint = "check the dependencies listed in Chart.yaml and the credentials for their repositories"
    return HelmFailure(message, "Chart.yaml", hint=hint)
