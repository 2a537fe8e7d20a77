"""The Helm renderer: a chart in the repository rendered by the real ``helm template``.

The chart directory, its value files and its ``file://`` dependencies must lie inside the
repository (``$<ref>/...`` value files inside that source's checkout); the cluster's version
and API versions go to ``--kube-version`` and ``--api-versions`` so ``.Capabilities`` answers
as the cluster would; hooks come out marked for the sync phases (see
:mod:`tether.render.helm_output`). The helm binary is ``$TETHER_HELM``, else ``helm`` on PATH,
else the one beside the Python interpreter.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
import tempfile
from dataclasses import replace
from functools import cache
from pathlib import Path

from tether.api.source import TYPE_HELM, HelmSource, Source
from tether.errors import RenderError
from tether.model import Manifest
from tether.render.base import RenderRequest, RepoView
from tether.render.helm_args import (
    HelmHome,
    TemplateOptions,
    dependency_build_argv,
    inline_values,
    release_name,
    template_argv,
)
from tether.render.helm_capabilities import builtin_api_versions, check_served
from tether.render.helm_deps import (
    Build,
    dependency_inputs,
    load_chart,
    loopback_oci,
    plan_dependencies,
)
from tether.render.helm_output import (
    ChartPaths,
    explain_build_failure,
    explain_failure,
    manifests_from_output,
)
from tether.render.helm_paths import (
    ValueFile,
    chart_directory,
    is_url,
    resolve_value_file,
    split_ref,
)
from tether.sandbox import Runner, ToolError
from tether.tools import tool_path

TOOL = "helm"


def helm_binary() -> str:
    return tool_path("helm")


@cache
def helm_version(binary: str) -> str:
    """``helm version --short`` (e.g. ``v4.3.1+gc0d08d0``), asked once per binary."""
    try:
        done = subprocess.run(
            [binary, "version", "--short"],
            capture_output=True,
            text=True,
            timeout=30,
            env={"PATH": os.environ.get("PATH", os.defpath), "HOME": tempfile.gettempdir()},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolError(
            TOOL,
            f"cannot run {binary}: {e}",
            hint="install helm v3 or v4, or set TETHER_HELM to its path",
        ) from e
    if done.returncode != 0:
        raise ToolError(TOOL, f"{binary} version failed: {done.stderr.strip()}")
    return done.stdout.strip()


class HelmRenderer:
    """The :class:`~tether.render.base.Renderer` for Helm charts kept in a repository."""

    type = TYPE_HELM

    def __init__(self) -> None:
        self.binary = helm_binary()

    def version(self) -> str:
        return helm_version(self.binary)

    def inputs(self, view: RepoView, source: Source, path: str) -> list[str] | None:
        """The chart directory, the value files in this repository and every ``file://``
        dependency; None when a value file or dependency comes from the network.

        ``$<ref>/...`` value files live in another source's repository: see
        :func:`ref_inputs`."""
        helm = source.helm or HelmSource()
        chart_path = _normalized(path)
        if chart_path is None:
            return [path]  # refused by the render; nothing else is read
        found = [chart_path]
        for entry in helm.value_files:
            if is_url(entry):
                return None
            if split_ref(entry) is not None or entry.startswith("/"):
                continue
            file = _normalized(posixpath.join(chart_path, entry))
            if file is not None:
                found.append(file)
        dependencies = dependency_inputs(view, chart_path)
        if dependencies is None:
            return None
        return _without_nested([*found, *dependencies])

    async def render(self, request: RenderRequest, runner: Runner) -> list[Manifest]:
        helm = request.source.helm or HelmSource()
        release = release_name(helm, request.release_name)
        chart_dir, chart_path = chart_directory(request.root, request.path)
        paths = ChartPaths(_chart_name(chart_dir, chart_path), chart_path)
        plan = plan_dependencies(chart_dir, chart_path, request.root, request.allow_remote)
        value_files = _value_files(request, helm, chart_path)
        inline = inline_values(helm)
        with tempfile.TemporaryDirectory(prefix="tether-helm-") as tmp:
            home = HelmHome.create(Path(tmp))
            env = home.env(request.env)
            shown = _hidden_paths(request, Path(tmp))
            for build in plan.builds:
                await self._build(runner, build, env, shown)
            if inline is not None:
                field, text = inline
                file = home.values / "inline-values.yaml"
                file.write_text(text)
                value_files.append(ValueFile(str(file), field))
            options = TemplateOptions(
                release=release,
                chart_dir=chart_dir,
                namespace=helm.namespace or request.destination_namespace,
                kube_version=request.kube_version,
                api_versions=request.api_versions,
                include_crds=not helm.skip_crds,
                value_files=[v.arg for v in value_files],
                parameters=helm.parameters,
            )
            result = await runner.run(
                template_argv(self.binary, options), tool=TOOL, cwd=home.base, env=env, check=False
            )
        if result.returncode != 0:
            names = {v.arg: v.shown for v in value_files} | shown
            failure = explain_failure(result.stderr, paths, names, request.kube_version)
            raise RenderError(
                f"helm template failed: {failure.message}",
                file=failure.file,
                line=failure.line,
                hint=failure.hint,
            )
        manifests = manifests_from_output(result.stdout, paths)
        if request.api_versions:
            builtin = await builtin_api_versions(self.binary, runner)
            check_served(manifests, request.api_versions, builtin, request.kube_version)
        return manifests

    async def _build(
        self, runner: Runner, build: Build, env: dict[str, str], shown: dict[str, str]
    ) -> None:
        """``helm dependency build`` in the checkout: it packages each ``file://`` dependency
        (and, where allowed, fetches remote ones) into ``charts/``."""
        argv = dependency_build_argv(
            self.binary,
            build.chart_dir,
            remote=build.remote,
            plain_http=any(loopback_oci(url) for url in build.repositories),
        )
        result = await runner.run(
            argv,
            tool=TOOL,
            cwd=build.chart_dir,
            env=env,
            limits=replace(runner.limits, network=build.remote),
            check=False,
        )
        if result.returncode == 0:
            return
        failure = explain_build_failure(result.stdout, result.stderr, shown)
        raise RenderError(
            f"helm dependency build failed: {failure.message}",
            file=posixpath.join(build.shown, failure.file),
            hint=failure.hint,
        )


def ref_inputs(source: Source) -> dict[str, list[str]]:
    """For each ``ref`` a source's value files name, the paths it reads in that source's
    repository (``$values/env/prod.yaml`` -> ``{"values": ["env/prod.yaml"]}``), so a render
    cache can key on them too."""
    out: dict[str, list[str]] = {}
    for entry in (source.helm or HelmSource()).value_files:
        parsed = split_ref(entry)
        if parsed is None:
            continue
        name, rest = parsed
        file = _normalized(rest)
        if file is not None and file not in out.setdefault(name, []):
            out[name].append(file)
    return out


def _value_files(request: RenderRequest, helm: HelmSource, chart_path: str) -> list[ValueFile]:
    found: list[ValueFile] = []
    for entry in helm.value_files:
        resolved = resolve_value_file(
            entry,
            root=request.root,
            chart_path=chart_path,
            refs=request.refs,
            allow_remote=request.allow_remote,
            ignore_missing=helm.ignore_missing_value_files,
        )
        if resolved is not None:
            found.append(resolved)
    return found


def _chart_name(chart_dir: Path, chart_path: str) -> str:
    chart = load_chart((chart_dir / "Chart.yaml").read_bytes(), _chart_file(chart_path))
    name = chart.get("name")
    if not isinstance(name, str) or not name:
        raise RenderError(
            "Chart.yaml has no name", file=_chart_file(chart_path), hint="set name: in Chart.yaml"
        )
    return name


def _hidden_paths(request: RenderRequest, tmp: Path) -> dict[str, str]:
    """Private directories as they appear in helm's messages -> what to show instead: the
    checkout's root becomes repository paths, sandbox directories disappear."""
    hidden = {str(request.root) + "/": "", str(tmp) + "/": ""}
    for value in request.env.values():
        if value.startswith("/") and value.count("/") > 1:
            hidden[value.rstrip("/") + "/"] = ""
    return hidden


def _chart_file(chart_path: str) -> str:
    return posixpath.join(chart_path, "Chart.yaml") if chart_path else "Chart.yaml"


def _normalized(path: str) -> str | None:
    """A repository path, normalized; None when it is absolute or leads outside."""
    if path.startswith("/"):
        return None
    cleaned = posixpath.normpath(path) if path else "."
    if cleaned == ".." or cleaned.startswith("../"):
        return None
    return "" if cleaned == "." else cleaned


def _without_nested(paths: list[str]) -> list[str]:
    """The paths, each once, leaving out those inside another one of them."""
    out: list[str] = []
    for path in sorted(set(paths), key=lambda p: (p.count("/"), p)):
        if not any(path == p or not p or path.startswith(p + "/") for p in out):
            out.append(path)
    return sorted(out)
