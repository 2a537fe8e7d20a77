"""Rendering one source: detect its type, key it by content, and on a cache miss render it in
a fresh private directory holding only its files and those of the ``ref`` sources it reads.

The same code serves the engine (``tether.desired``) and ``tether render``: a source's files
come as a :class:`Checkout` (a view without a checkout, and a way to write them out), so a
Git commit and a local directory render alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tether.api.source import TYPE_DIRECTORY, TYPE_HELM, TYPE_KUSTOMIZE, Source
from tether.errors import InvalidSpec
from tether.model import Manifest
from tether.render.base import ReadFiles, Renderer, RenderRequest, RepoView
from tether.render.cache import RenderCache, RenderInputs, content_ids, render_key
from tether.render.helm_deps import remote_repositories
from tether.render.kustomize import uses_helm_charts
from tether.render.registry import detect, renderer_for, repo_path
from tether.sandbox import Runner
from tether.source.credentials import RepoCredentials, match_chart_credentials, normalize_url
from tether.source.helm_repo import repository_env


@dataclass
class Checkout:
    """A source's files at one revision: readable in place, and written out on demand."""

    view: RepoView
    export: Callable[[Path], Awaitable[None]]
    """Writes every file of the revision under the given directory (which does not exist
    yet)."""
    revision: str
    export_only: Callable[[Path, list[str]], Awaitable[None]] | None = None
    """Writes only the given paths (and the directories leading to them), when the source
    can: a plain directory render then writes its own files, not the whole repository."""
    read: ReadFiles | None = None
    """Reads the revision's files straight from git objects, when the source can: a plain
    directory then renders with nothing written to disk."""


@dataclass
class RenderContext:
    """What every render of one app shares."""

    app: str
    """``<namespace>/<name>``, for messages."""
    destination_namespace: str
    release_name: str
    kube_version: str
    api_versions: tuple[str, ...]
    allow_remote: bool
    runner: Runner
    cache: RenderCache | None
    """None: render every time, computing no key (a one-off ``tether render``)."""
    credentials: list[tuple[str, RepoCredentials]] = field(default_factory=list)
    """The repository Secrets' entries (URL prefix, credentials), for the chart repositories
    a Helm chart's remote dependencies come from (only with ``allow_remote``)."""


@dataclass
class RenderPlan:
    """How one Git source renders: its type, its render cache key (None without a cache), and
    the render itself (``run``), to call only when the cache does not hold ``key``."""

    render_type: str
    key: str | None
    run: Callable[[], Awaitable[list[Manifest]]]

    async def manifests(self, cache: RenderCache | None) -> list[Manifest]:
        """The render's output: from ``cache`` when it holds ``key``, else rendered now."""
        if cache is None or self.key is None:
            return await self.run()
        return await cache.get_or_render(self.key, self.run, self.render_type)


async def render_git_source(
    ctx: RenderContext, source: Source, checkout: Checkout, refs: Mapping[str, Checkout]
) -> tuple[str, list[Manifest]]:
    """``(render type, manifests)`` of a source whose files are ``checkout``."""
    plan = plan_git_render(ctx, source, checkout, refs)
    return plan.render_type, await plan.manifests(ctx.cache)


def plan_git_render(
    ctx: RenderContext, source: Source, checkout: Checkout, refs: Mapping[str, Checkout]
) -> RenderPlan:
    """The render of a source whose files are ``checkout``: its type, its cache key (from the
    git ids of what it reads) and the render to run on a miss."""
    path = repo_path(source.path)
    render_type = detect(checkout.view, source, path)
    renderer = renderer_for(render_type)
    used = used_refs(source, refs)

    inputs = renderer.inputs(checkout.view, source, path)

    async def run() -> list[Manifest]:
        if render_type == TYPE_DIRECTORY and checkout.read is not None:
            # Parsed from git objects: a scratch checkout per render (made, written, removed)
            # was most of what a plain directory's render cost.
            from tether.render.directory import DirectoryRenderer

            assert isinstance(renderer, DirectoryRenderer)
            found = await renderer.render_git(source, path, checkout.read)
            if found is not None:
                return found
        async with private_dir() as tmp:
            root = tmp / "repo"
            if render_type == TYPE_DIRECTORY and inputs is not None and checkout.export_only:
                # The files the render reads, and nothing else: exporting a whole repository
                # for each of its many apps made rendering grow with apps x files.
                await checkout.export_only(root, inputs)
            else:
                await checkout.export(root)
            ref_roots = await export_refs(tmp, used)
            request = _request(ctx, source, root, path, ref_roots)
            if render_type == TYPE_HELM and ctx.allow_remote:
                request.env = _dependency_repositories(ctx, source, checkout.view, path, tmp)
            return await renderer.render(request, ctx.runner)

    if ctx.cache is None:
        return RenderPlan(render_type, None, run)
    content = content_ids(inputs, checkout.view.object_id)
    facts = _reads_facts(render_type, checkout.view, source, path)
    content += ref_content(source, used)
    key = _key(ctx, renderer, render_type, source, path, content, cluster_facts=facts)
    return RenderPlan(render_type, key, run)


def reads_cluster_facts(source: Source, checkout: Checkout) -> bool:
    """Whether the render of ``source`` (a Git source whose files are ``checkout``) reads
    the cluster's facts (``RenderContext.kube_version``, ``api_versions``): a Helm chart, or a
    kustomization that inflates Helm charts or may (``uses_helm_charts``). Other renders
    neither read them nor key on them, so they need no discovery of every API served."""
    path = repo_path(source.path)
    return _reads_facts(detect(checkout.view, source, path), checkout.view, source, path)


def _reads_facts(render_type: str, view: RepoView, source: Source, path: str) -> bool:
    return render_type == TYPE_HELM or (
        render_type == TYPE_KUSTOMIZE and uses_helm_charts(view, source, path)
    )


async def render_chart(
    ctx: RenderContext,
    source: Source,
    content: list[tuple[str, str]],
    pull: Callable[[Path], Awaitable[Path]],
    refs: Mapping[str, Checkout],
) -> tuple[str, list[Manifest]]:
    """``(Helm, manifests)`` of a chart from a Helm repository; ``content`` identifies the
    chart (see ``chart_source_key``) and ``pull`` unpacks it under a directory, returning
    the chart's own directory. Nothing is pulled when the cache holds the render."""
    renderer = renderer_for(TYPE_HELM)
    used = used_refs(source, refs)

    async def run() -> list[Manifest]:
        async with private_dir() as tmp:
            chart_dir = await pull(tmp / "chart")
            ref_roots = await export_refs(tmp, used)
            request = _request(ctx, source, chart_dir, "", ref_roots)
            return await renderer.render(request, ctx.runner)

    if ctx.cache is None:
        return TYPE_HELM, await run()
    content = content + ref_content(source, used)
    key = _key(ctx, renderer, TYPE_HELM, source, "", content, cluster_facts=True)
    return TYPE_HELM, await ctx.cache.get_or_render(key, run, TYPE_HELM)


def chart_source_key(source: Source, version: str, digest: str = "") -> list[tuple[str, str]]:
    """What identifies a chart from a Helm repository in the render cache: the repository,
    the chart, its exact version and (when known) its digest."""
    return [("chart", f"{normalize_url(source.repo_url)} {source.chart} {version} {digest}")]


def used_refs(source: Source, refs: Mapping[str, Checkout]) -> dict[str, Checkout]:
    """The ``ref`` sources whose files ``source`` reads (``$<ref>/...`` value files)."""
    used: dict[str, Checkout] = {}
    for name, _ in _ref_files(source):
        if name not in refs:
            raise InvalidSpec(
                f"helm.valueFiles names ${name}, but no Git source has ref: {name}",
                hint="add a source with that ref to spec.sources, or fix the value file",
            )
        used[name] = refs[name]
    return used


def ref_content(source: Source, used: Mapping[str, Checkout]) -> list[tuple[str, str]]:
    """``($<ref>/path, object id)`` of every ref file ``source`` reads."""
    return [
        (f"${name}/{rest}", used[name].view.object_id(repo_path(rest)) or "")
        for name, rest in _ref_files(source)
    ]


def _ref_files(source: Source) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for value_file in source.helm.value_files if source.helm else []:
        if value_file.startswith("$"):
            name, _, rest = value_file[1:].partition("/")
            out.append((name, rest))
    return out


async def export_refs(tmp: Path, used: Mapping[str, Checkout]) -> dict[str, Path]:
    roots: dict[str, Path] = {}
    for name, checkout in used.items():
        roots[name] = tmp / f"ref-{name}"
        await checkout.export(roots[name])
    return roots


@contextlib.asynccontextmanager
async def private_dir() -> AsyncIterator[Path]:
    """A fresh directory only this process's user can read (0700), removed afterwards: no
    render sees another app's files or leaves its own behind."""
    tmp = Path(tempfile.mkdtemp(prefix="tether-render-"))
    try:
        yield tmp
    finally:
        await asyncio.to_thread(shutil.rmtree, tmp, True)


def _dependency_repositories(
    ctx: RenderContext, source: Source, view: RepoView, path: str, tmp: Path
) -> dict[str, str]:
    """Helm settings that give each remote dependency repository of the chart its own
    credentials (and only its own): a repositories file and a registry config in ``tmp``."""
    urls = remote_repositories(view, path)
    if not urls:
        return {}
    pairs = [(url, match_chart_credentials(url, ctx.credentials)) for url in urls]
    passing = bool(source.helm and source.helm.pass_credentials)
    return repository_env(tmp / "helm-repos", pairs, pass_credentials=passing)


def _request(
    ctx: RenderContext, source: Source, root: Path, path: str, refs: dict[str, Path]
) -> RenderRequest:
    return RenderRequest(
        app=ctx.app,
        source=source,
        root=root,
        path=path,
        destination_namespace=ctx.destination_namespace,
        release_name=ctx.release_name,
        kube_version=ctx.kube_version,
        api_versions=ctx.api_versions,
        refs=refs,
        allow_remote=ctx.allow_remote,
    )


def _key(
    ctx: RenderContext,
    renderer: Renderer,
    render_type: str,
    source: Source,
    path: str,
    content: list[tuple[str, str]],
    *,
    cluster_facts: bool,
) -> str:
    # Only Helm names a release, and only Helm (and Kustomize's helmCharts) reads the
    # cluster's facts: leaving them out of other keys lets apps that differ only by name
    # share a render, and a new CRD or server version does not re-render every directory
    # and kustomization.
    return render_key(
        RenderInputs(
            render_type=render_type,
            tool_version=renderer.version(),
            source=source,
            path=path,
            destination_namespace=ctx.destination_namespace,
            release_name=ctx.release_name if render_type == TYPE_HELM else "",
            kube_version=ctx.kube_version if cluster_facts else "",
            api_versions=ctx.api_versions if cluster_facts else (),
            content=tuple(content),
        )
    )
