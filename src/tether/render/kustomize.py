"""The Kustomize renderer: ``kubectl kustomize`` on a private checkout, load restrictor on,
remote bases and Helm charts only when allowed, the Application's overrides applied.

Everything a kustomization reads is found statically first (see ``kustomize_files``), so a
path leaving the repository, a remote base or a kustomization including itself is refused
with the file and entry named before the tool runs, and the render cache can key a render
by exactly the directories and files it reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from tether.api.source import TYPE_KUSTOMIZE, KustomizeSource, Source
from tether.errors import InvalidSpec, RenderError
from tether.model import Manifest
from tether.render.base import RenderRequest, RepoView
from tether.render.dir_select import app_directory
from tether.render.kustomize_files import (
    DiskView,
    Walk,
    find_kustomization,
    walk,
)
from tether.render.kustomize_overrides import apply_overrides, edit_kustomization, has_overrides
from tether.render.parse import parse_manifests
from tether.sandbox import Runner, ToolError, tool_message
from tether.tools import tool_path

TOOL = "kustomize"
KUBECTL_ENV = "TETHER_KUBECTL"
"""Names the kubectl binary whose built-in kustomize renders (default: the one installed
beside tether's Python, else the first on PATH)."""

_SECURITY = re.compile(r"security; file '([^']+)' is not in or below '([^']+)'")
_ACCUMULATING = re.compile(r"accumulating resources from '([^']+)'")


class KustomizeRenderer:
    """The :class:`~tether.render.base.Renderer` for a directory holding a kustomization."""

    type = TYPE_KUSTOMIZE

    def __init__(self) -> None:
        self._version: str | None = None

    def version(self) -> str:
        """kustomize's version (``v5.8.1``), read once from ``kubectl version --client``."""
        if self._version is None:
            self._version = _kustomize_version()
        return self._version

    def inputs(self, view: RepoView, source: Source, path: str) -> list[str] | None:
        """The app's kustomization directory, every local base and component reached from
        it, and files named from elsewhere; None when a remote base or Helm chart (content
        not in the repository) or a tree that will not render makes that unknowable."""
        found = _walk_view(view, source, path)
        if found is None or found.remote or found.helm_pulls:
            return None
        return found.inputs()

    async def render(self, request: RenderRequest, runner: Runner) -> list[Manifest]:
        disk = DiskView(request.root)
        options = request.source.kustomize
        found = await asyncio.to_thread(
            walk, disk, request.path, edit=_editor(options), confine=disk.confine
        )
        _refuse_remote(found, request)
        helm_flags = _helm_flags(found, request)
        app_dir = app_directory(request.path)
        argv = [
            kubectl_path(),
            "kustomize",
            str(request.root / app_dir) if app_dir else str(request.root),
            "--load-restrictor",
            "LoadRestrictionsRootOnly",
            *helm_flags,
        ]
        limits = replace(runner.limits, network=bool(found.remote or found.helm_pulls))
        with _overrides_written(request.root, found.app_file, options):
            try:
                result = await runner.run(
                    argv,
                    tool=TOOL,
                    cwd=request.root,
                    env=tool_env(request.env),
                    limits=limits,
                    check=False,
                )
            except ToolError as e:
                raise ToolError(
                    TOOL,
                    f"{found.app_file}: {e.message.removeprefix(TOOL + ': ')}",
                    stderr=e.stderr,
                    hint=e.hint,
                    kind=e.kind,
                    bytes_read=e.bytes_read,
                ) from e
            except OSError as e:
                raise ToolError(
                    TOOL,
                    f"{found.app_file}: cannot run {argv[0]}: {e.strerror}",
                    hint=f"install tether's dependencies (they include kubectl) or set "
                    f"{KUBECTL_ENV} to a kubectl binary",
                ) from e
        if result.returncode != 0:
            raise kustomize_error(result.stderr, request.root, found.app_file)
        return _manifests(result.stdout, found.app_file)


def uses_helm_charts(view: RepoView, source: Source, path: str) -> bool:
    """Whether the app's kustomization (or a base) inflates Helm charts, or may: only then
    does its output depend on the cluster's version and API versions. A remote base may (it
    is not seen before kustomize fetches it), and so may a tree that will not walk."""
    found = _walk_view(view, source, path)
    return found is None or bool(found.helm) or bool(found.remote)


def _walk_view(view: RepoView, source: Source, path: str) -> Walk | None:
    """The walk over git objects, or None for a tree that will not render."""
    # A view of git objects does not follow symlinks; its resolve() says where they lead.
    resolve = getattr(view, "resolve", None)
    try:
        return walk(view, path, edit=_editor(source.kustomize), resolve=resolve)
    except (RenderError, InvalidSpec):
        return None


# --- tools ---------------------------------------------------------------------------------------


def kubectl_path() -> str:
    return tool_path("kubectl", tool=TOOL)


def helm_path() -> str:
    return tool_path("helm", tool=TOOL)


def _kustomize_version() -> str:
    try:
        out = subprocess.run(
            [kubectl_path(), "version", "--client", "-o", "json"],
            capture_output=True,
            timeout=30,
            check=True,
            env={"PATH": os.environ.get("PATH", os.defpath), "KUBECONFIG": os.devnull},
        )
        version = json.loads(out.stdout).get("kustomizeVersion")
    except (OSError, ToolError, subprocess.SubprocessError, ValueError, AttributeError):
        return ""
    return str(version or "")


def tool_env(extra: Mapping[str, str]) -> dict[str, str]:
    """What kustomize gets besides the runner's minimal environment (PATH, a private HOME):
    no kubeconfig to read, git (remote bases) never prompting; then what the caller adds."""
    return {"KUBECONFIG": os.devnull, "GIT_TERMINAL_PROMPT": "0", **extra}


# --- policy --------------------------------------------------------------------------------------


def _editor(
    options: KustomizeSource | None,
) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    if options is None or not has_overrides(options):
        return None

    def edit(kustomization: dict[str, Any]) -> dict[str, Any]:
        return apply_overrides(kustomization, options)

    return edit


def _refuse_remote(found: Walk, request: RenderRequest) -> None:
    if not found.remote or request.allow_remote:
        return
    entry = found.remote[0]
    raise RenderError(
        f"{entry} is a remote base, and this controller does not fetch remote sources",
        file=entry.file,
        hint="copy the base into the repository, or start the controller with "
        "--allow-remote-sources to let kustomize fetch it",
    )


def wants_helm(options: KustomizeSource | None) -> bool:
    """Whether the Application lets kustomize inflate ``helmCharts`` (``enableHelm``)."""
    return options is not None and options.enable_helm


def _helm_flags(found: Walk, request: RenderRequest) -> list[str]:
    if not found.helm:
        return []
    entry = found.helm[0]
    if not wants_helm(request.source.kustomize):
        raise RenderError(
            "uses helmCharts, which kustomize inflates by running helm (and downloading the "
            "chart unless it is committed); this is off unless the Application turns it on",
            file=entry.file,
            hint="set spec.source.kustomize.enableHelm: true, or deploy the chart as a Helm "
            "source (spec.source.chart or a path holding Chart.yaml)",
        )
    if found.helm_pulls and not request.allow_remote:
        pull = found.helm_pulls[0]
        raise RenderError(
            f"helmCharts chart {pull.value!r} is not in the repository, so kustomize would "
            "download it, and this controller does not fetch remote sources",
            file=pull.file,
            hint="commit the chart under the kustomization's helmGlobals.chartHome (charts/ "
            "by default), or start the controller with --allow-remote-sources",
        )
    flags = ["--enable-helm", "--helm-command", helm_path()]
    if request.kube_version:
        flags.append(f"--helm-kube-version={request.kube_version}")
    if request.api_versions:
        flags.append("--helm-api-versions=" + ",".join(request.api_versions))
    return flags


@contextlib.contextmanager
def _overrides_written(root: Path, file: str, options: KustomizeSource | None) -> Iterator[None]:
    """The app's kustomization with the overrides in while kustomize runs, as it was after."""
    if options is None or not has_overrides(options):
        yield
        return
    target = root / file
    original = target.read_bytes()
    target.write_text(edit_kustomization(original.decode("utf-8-sig"), options), encoding="utf-8")
    try:
        yield
    finally:
        target.write_bytes(original)


# --- results -------------------------------------------------------------------------------------


def kustomize_error(stderr: str, root: Path, app_file: str) -> RenderError:
    """kustomize's own message as a RenderError naming the kustomization file; its load
    restrictor's "security; file ... is not in or below ..." says which entry and why."""
    text = _relative(tool_message(stderr), root).strip()
    for prefix in ("Error: ", "error: "):
        text = text.removeprefix(prefix)
    security = _SECURITY.search(text)
    if security is None:
        return RenderError(
            f"kustomize failed: {text}",
            file=app_file,
            hint="the message is kustomize's own; fix the kustomization it names",
        )
    outside, directory = security.groups()
    file = _kustomization_of(root, directory) or app_file
    accumulating = _ACCUMULATING.search(text)
    entry = accumulating.group(1) if accumulating else outside
    return RenderError(
        f"entry {entry!r} reads {_link_target(root, outside)}, which is not in or below "
        f"{directory}/: kustomize only lets a kustomization read files inside its own directory",
        file=file,
        hint=f"move the file under {directory}/, or give its directory a kustomization and "
        "list that directory under resources",
    )


def _link_target(root: Path, path: str) -> str:
    """``path``, or where it leads when it is a symlink (kustomize names the link)."""
    full = root / path
    if path.startswith("/") or not full.is_symlink():
        return path
    real = os.path.realpath(full)
    base = os.path.realpath(root)
    shown = os.path.relpath(real, base) if real.startswith(base + os.sep) else real
    return f"{shown} (through the symlink {path})"


def _kustomization_of(root: Path, directory: str) -> str | None:
    if directory.startswith("/"):
        return None
    try:
        return find_kustomization(DiskView(root), "" if directory == "." else directory)
    except RenderError:
        return None


def _relative(text: str, root: Path) -> str:
    """Paths inside the checkout made repository-relative: the temporary directory means
    nothing to the reader."""
    for base in sorted({str(root), os.path.realpath(root)}, key=len, reverse=True):
        text = text.replace(base + "/", "").replace(base, ".")
    return text


def _manifests(stdout: bytes, app_file: str) -> list[Manifest]:
    manifests = parse_manifests(stdout, f"{app_file} (kustomize output)")
    # kustomize's output has no per-object origin: every object comes from the app's
    # kustomization as far as anyone can tell.
    return [Manifest(m.obj, app_file, 0) for m in manifests]
