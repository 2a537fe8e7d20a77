"""The command lines of a Helm render (``helm template``, values in Argo CD's order) and its env.

Values are layered as Argo CD layers them (later wins): the chart's ``values.yaml``, then
each of ``valueFiles`` in order, then the inline ``values`` (or ``valuesObject``, which wins
when both are set), then ``parameters``. Inline values go to a file in the render's private
directory, never onto the command line. Helm's home, cache and config are private to the
render too, so no render reads the machine's Helm setup or another render's files.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from tether.api.source import HelmParameter, HelmSource
from tether.errors import RenderError

# Helm's own rule for release names (DNS-1123 subdomain, at most 53 characters).
_RELEASE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
MAX_RELEASE_NAME = 53
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


@dataclass(frozen=True)
class TemplateOptions:
    release: str
    chart_dir: Path
    namespace: str = ""
    kube_version: str = ""
    api_versions: Sequence[str] = ()
    include_crds: bool = True
    value_files: Sequence[str] = ()
    """Paths (or URLs) helm reads with ``--values``, in order, inline values last."""
    parameters: Sequence[HelmParameter] = ()


def template_argv(binary: str, options: TemplateOptions) -> list[str]:
    """``helm template``'s arguments; every flag in ``--flag=value`` form, so no value can be
    read as another flag."""
    argv = [binary, "template", options.release, str(options.chart_dir)]
    if options.namespace:
        argv.append(f"--namespace={options.namespace}")
    if options.kube_version:
        argv.append(f"--kube-version={options.kube_version}")
    argv.extend(f"--api-versions={version}" for version in options.api_versions)
    if options.include_crds:
        argv.append("--include-crds")
    argv.extend(f"--values={path}" for path in options.value_files)
    argv.extend(parameter_args(options.parameters))
    return argv


def dependency_build_argv(
    binary: str, chart_dir: Path, *, remote: bool, plain_http: bool = False
) -> list[str]:
    """``helm dependency build``; offline (no repository refresh) unless a dependency is
    remote; ``plain_http`` for an OCI registry on a loopback address, which speaks HTTP."""
    argv = [binary, "dependency", "build", str(chart_dir)]
    if not remote:
        argv.append("--skip-refresh")
    if plain_http:
        argv.append("--plain-http")
    return argv


def release_name(helm: HelmSource, default: str) -> str:
    name = helm.release_name or default
    if not name:
        raise RenderError(
            "no Helm release name",
            hint="set spec.source.helm.releaseName (it defaults to the Application's name)",
        )
    if len(name) > MAX_RELEASE_NAME or not _RELEASE_NAME.fullmatch(name):
        raise RenderError(
            f"Helm release name {name!r} is not valid: helm wants lower-case letters, digits, "
            f"'-' and '.', at most {MAX_RELEASE_NAME} characters",
            hint="set spec.source.helm.releaseName to a valid name",
        )
    return name


def parameter_args(parameters: Sequence[HelmParameter]) -> list[str]:
    """``--set`` (or ``--set-string``) per parameter, commas in values escaped as Argo CD does,
    so ``a,b`` stays one value; a ``{x,y}`` value stays a Helm list."""
    args: list[str] = []
    for parameter in parameters:
        name = parameter.name
        if not name or "=" in name or _UNESCAPED_COMMA.search(name):
            raise RenderError(
                f"Helm parameter name {name!r} is not valid",
                hint="check spec.source.helm.parameters: a name is a dotted path such as "
                "image.tag, without '=' or ','",
            )
        flag = "--set-string" if parameter.force_string else "--set"
        args.append(f"{flag}={name}={_escape_value(parameter.value)}")
    return args


def _escape_value(value: str) -> str:
    if value.startswith("{") and value.endswith("}"):
        return value
    return _UNESCAPED_COMMA.sub(r"\\,", value)


INLINE_VALUES = "spec.source.helm.values"
INLINE_VALUES_OBJECT = "spec.source.helm.valuesObject"


def inline_values(helm: HelmSource) -> tuple[str, str] | None:
    """(the field it came from, YAML text) of the inline values, or None when there are none.

    ``valuesObject`` wins over ``values`` when both are set, as in Argo CD."""
    if helm.values_object:
        return INLINE_VALUES_OBJECT, json.dumps(helm.values_object, sort_keys=True)
    if not helm.values.strip():
        return None
    try:
        parsed = yaml.safe_load(helm.values)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise RenderError(
            f"{INLINE_VALUES} is not valid YAML{where}: {getattr(e, 'problem', None) or e}",
            hint=f"fix {INLINE_VALUES}, or use {INLINE_VALUES_OBJECT}",
        ) from e
    if parsed is not None and not isinstance(parsed, dict):
        raise RenderError(
            f"{INLINE_VALUES} is not a YAML mapping",
            hint="write the values as key: value pairs, as in a values.yaml",
        )
    return INLINE_VALUES, helm.values


@dataclass(frozen=True)
class HelmHome:
    """A render's private Helm directories, under one fresh directory."""

    base: Path

    @classmethod
    def create(cls, base: Path) -> HelmHome:
        home = cls(base)
        for directory in (home.home, home.cache, home.config, home.data, home.values):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return home

    @property
    def home(self) -> Path:
        return self.base / "home"

    @property
    def cache(self) -> Path:
        return self.base / "cache"

    @property
    def config(self) -> Path:
        return self.base / "config"

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def values(self) -> Path:
        return self.base / "values"

    def env(self, extra: Mapping[str, str]) -> dict[str, str]:
        """What helm's environment holds beyond the runner's minimal one: the private
        directories, no kubeconfig (a render never talks to a cluster), then ``extra``
        (repository and registry configuration prepared for this render)."""
        env = {
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.cache),
            "HELM_CONFIG_HOME": str(self.config),
            "HELM_DATA_HOME": str(self.data),
            "KUBECONFIG": os.devnull,
        }
        env.update(extra)
        return env
