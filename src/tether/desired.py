"""The desired objects of an app: credentials, each source resolved, fetched, verified and
rendered, the results combined and marked as the app's.

Every source of the app (``spec.source`` or ``spec.sources[]``) is resolved to a commit (Git)
or a chart version (Helm repository); a source with ``verify`` must be signed by a trusted
key; its render type is detected (``tether.render.registry``); a render runs in a fresh
private directory holding only that source's files (and the ``ref`` sources it reads), with
the shared sandboxed runner, unless the render cache already holds the same inputs. A failure
anywhere raises, so nothing is applied or pruned on a bad render.

Hooks (objects annotated ``tether.dev/hook`` or an alias) are split out into
``Desired.hooks``: which phase runs them is decided later, when an operation plans its steps
(Helm's install and upgrade hooks depend on whether the app was ever deployed).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tether.api.application import Application
from tether.api.project import Project
from tether.api.source import Source
from tether.desired_memo import Basis, DesiredMemo, basis_of
from tether.desired_memo import Entry as MemoEntry
from tether.errors import InvalidSpec, KubeError, RenderError
from tether.kube import KubeClient
from tether.kube.client import split_api_version
from tether.kube.secrets import decode_secret_data
from tether.kube.server_info import cluster_facts
from tether.model import Manifest, Obj, ResourceKey
from tether.project import ProjectSource, enforce_app, enforce_render
from tether.render.base import LinkedRepoView
from tether.render.cache import RenderCache
from tether.render.pipeline import (
    Checkout,
    RenderContext,
    chart_source_key,
    plan_git_render,
    reads_cluster_facts,
    render_chart,
)
from tether.sandbox import Runner
from tether.source import GitCache, RepoCredentials
from tether.source.credentials import (
    REPO_SECRET_SELECTOR,
    REPO_TYPE_GIT,
    REPO_TYPE_HELM,
    REPO_TYPE_OCI,
    entries_from_secrets,
    is_oci_url,
    match_credentials,
    redact,
)
from tether.sync.defaults import set_native_defaults
from tether.sync.hooks import hook_of, is_hook
from tether.sync.hooks import mark as mark_hook
from tether.sync.options import SKIP_DRY_RUN, SyncOptions
from tether.sync.tracking import mark

log = logging.getLogger(__name__)
T = TypeVar("T")

DESIRED_MEMO_SIZE = 256
"""Apps whose last desired objects are kept by default (``tether.desired_memo``): each costs
about a copy of its marked objects."""


@dataclass
class CommitInfo:
    sha: str
    author: str = ""
    message: str = ""
    time: str = ""


@dataclass
class SourceRevision:
    """What one source of the app was compared at."""

    repo_url: str
    revision: str
    """The commit (Git) or the chart version (Helm repository)."""
    path: str
    chart: str
    type: str
    """The render type (``Kustomize``, ``Helm``...); ``""`` for a ``ref`` source that only
    lends its files to the others."""


@dataclass
class Desired:
    revision: str
    """The first Git source's commit (the chart version when the app has no Git source)."""
    commit: CommitInfo
    manifests: list[Manifest]
    """Marked (tracking id, label, hash) and namespaced; ready to apply."""
    sources: dict[ResourceKey, Manifest]
    """The same objects as rendered, with file and line, for messages."""
    source_revisions: list[SourceRevision] = field(default_factory=list)
    """One per source of the app, in spec order."""
    hooks: list[Manifest] = field(default_factory=list)
    """Hook objects (``tether.sync.hooks``), namespaced like ``manifests`` but not among
    them: not in the inventory, the diff or the prune. Marked as hooks of the app
    (``tether.sync.hooks.mark``: ``tether.dev/hook-of``, the app label and
    ``instance_labels``), never with its tracking id. A hook made from ``generateName`` has
    no ``metadata.name``; each keeps its file and line."""
    project: Project | None = None
    """The Project whose rules the render was checked against."""
    options_checked: bool = False
    """Every manifest's sync and compare options are known ones (``check_object_options``
    passed): a comparison need not check them again."""


NO_FACTS: tuple[str, tuple[str, ...]] = ("", ())
"""The cluster facts a render that reads none is given (and remembered under)."""


@dataclass
class Resolved:
    """One source pinned to a revision: a commit (git) or a chart version (Helm repository)."""

    source: Source
    revision: str
    checkout: Checkout | None = None
    """Git sources only: the files at the commit."""
    creds: RepoCredentials | None = None


class DesiredSource:
    def __init__(
        self,
        kube: KubeClient,
        git: GitCache,
        *,
        credentials_ttl: float = 0.0,
        render_cache_size: int = 0,
        credentials_namespace: str = "",
        runner: Runner | None = None,
        render_cache: RenderCache | None = None,
        allow_remote: bool = False,
        memo_size: int = DESIRED_MEMO_SIZE,
    ) -> None:
        self.kube = kube
        self.git = git
        self.credentials_ttl = credentials_ttl
        """Seconds a namespace's repository Secrets are reused (0: read them every time)."""
        self.credentials_namespace = credentials_namespace
        """Where repository Secrets live (default: each Application's own namespace)."""
        self.runner = runner or Runner()
        """The one sandboxed runner every render tool goes through."""
        self.render_cache = (
            render_cache if render_cache is not None else RenderCache(render_cache_size)
        )
        """Shared by every app this process renders; size 0 turns it off."""
        self.allow_remote = allow_remote
        """Remote kustomize bases may be fetched (chart repositories always may)."""
        self._secrets: dict[str, tuple[float, list[Obj]]] = {}
        self._secrets_locks: dict[str, asyncio.Lock] = {}
        self._entries: dict[str, tuple[list[Obj], list[tuple[str, RepoCredentials]]]] = {}
        self.projects = ProjectSource(kube, ttl=credentials_ttl)
        """Each app's Project, read as often as repository credentials are."""
        self.memo = DesiredMemo(memo_size if self.render_cache.size > 0 else 0)
        """The last desired objects of ``memo_size`` apps and what they came from (none
        without a render cache)."""

    # ---- repository credentials ---------------------------------------------------------
    async def _repo_secrets(self, namespace: str) -> list[Obj]:
        lock = self._secrets_locks.setdefault(namespace, asyncio.Lock())
        async with lock:
            hit = self._secrets.get(namespace)
            if hit is not None and time.monotonic() - hit[0] < self.credentials_ttl:
                return hit[1]
            secrets, _ = await self.kube.list(
                "v1", "Secret", namespace, label_selector=REPO_SECRET_SELECTOR
            )
            self._secrets[namespace] = (time.monotonic(), secrets)
            return secrets

    async def credentials_for(
        self, app: Application, url: str | None = None, *, chart: bool = False
    ) -> RepoCredentials | None:
        """The credentials for ``url`` (default: the app's first source) from the repository
        Secrets of the app's namespace: a Git repository's, or with ``chart`` a Helm
        repository's or OCI registry's. Never those of another host or another type."""
        target = url or app.source.repo_url
        if chart or (url is None and app.source.is_helm_repository):
            repo_type = REPO_TYPE_OCI if is_oci_url(target) else REPO_TYPE_HELM
        else:
            repo_type = REPO_TYPE_GIT
        entries = await self._repo_entries(self.credentials_namespace or app.namespace)
        return match_credentials(target, entries, repo_type=repo_type)

    async def _repo_entries(self, namespace: str) -> list[tuple[str, RepoCredentials]]:
        """The repository Secrets of ``namespace`` as ``(url prefix, credentials)``, decoded
        once per read of them."""
        secrets = await self._repo_secrets(namespace)
        hit = self._entries.get(namespace)
        if hit is not None and hit[0] is secrets:
            return hit[1]
        entries = entries_from_secrets((s, decode_secret_data(s)) for s in secrets)
        self._entries[namespace] = (secrets, entries)
        return entries

    # ---- sources + render -------------------------------------------------------------
    async def fetch_desired(
        self, app: Application, revision: str | None = None, *, project: Project | None = None
    ) -> Desired:
        """``revision`` (a sync to another revision) replaces the first rendering source's
        targetRevision; ``spec.pin`` replaces every source's (see ``revision_of``).

        The app's Project (``project``, else read) is enforced here, the one place every
        render goes through: the app itself before any source is fetched, then the whole
        render, hooks included; a violation raises ProjectViolation.

        Every source is resolved each time (a moved branch is seen at once); when neither the
        commits, the Application, the Project nor the render changed since this app's last
        call, what was made of the render then is handed out again (``tether.desired_memo``)."""
        project = project or await self.projects.project_of(app)
        enforce_app(project, app)
        resolved = [
            await self.resolve_source(app, s, revision_of(app, i, revision))
            for i, s in enumerate(app.sources)
        ]
        basis: Basis | None = None
        if all(r.checkout is not None for r in resolved):  # no chart from a Helm repository
            # A render that reads no cluster facts is remembered under none: found so, it
            # needs neither the facts nor the work of telling whether it would read them.
            basis = basis_of(app, revision, [r.revision for r in resolved], NO_FACTS)
            remembered = self.memo.get(app, basis, project, self.render_cache)
            if remembered is not None:
                return remembered
        ctx = await self.render_context(app, resolved)
        facts = (ctx.kube_version, ctx.api_versions)
        if basis is not None and facts != NO_FACTS:
            basis = (basis[0], basis[1], basis[2], facts)
            remembered = self.memo.get(app, basis, project, self.render_cache)
            if remembered is not None:
                return remembered
        refs = {r.source.ref: r.checkout for r in resolved if r.source.ref and r.checkout}
        rendered: list[Manifest] = []
        keys: list[tuple[str, str]] = []
        revisions: list[SourceRevision] = []
        for r in resolved:
            render_type = ""
            if r.source.renders:
                render_type, out, key = await self.render_keyed(ctx, r, refs)
                rendered += out
                if key is None:
                    basis = None
                else:
                    keys.append((render_type, key))
            s = r.source
            revisions.append(SourceRevision(s.repo_url, r.revision, s.path, s.chart, render_type))
        guessed: list[ResourceKey] = []
        marked, sources, hooks = await self.prepare(app, rendered, guessed)
        enforce_render(project, [*marked, *hooks])
        first_git = next((r for r in resolved if r.checkout is not None), None)
        if first_git is None:
            commit = CommitInfo(resolved[0].revision)
        else:
            commit = self._commit_info(first_git.source.repo_url, first_git.revision)
        desired = Desired(commit.sha, commit, marked, sources, revisions, hooks, project)
        if basis is None or guessed:
            # A kind taken as namespaced because it is not served yet is not remembered: it
            # is asked about again next time.
            return desired
        return self.memo.remember(app, MemoEntry(basis, project, keys, rendered, desired))

    async def resolve_source(self, app: Application, s: Source, revision: str | None) -> Resolved:
        """``s`` at ``revision`` (None: the app's revision for it), fetched and checked."""
        if s.is_helm_repository:
            from tether.source.helm_repo import resolve_chart

            if revision:  # a sync to another chart version
                s = dataclasses.replace(s, target_revision=revision)
            creds = await self.credentials_for(app, s.repo_url, chart=True)
            version = await resolve_chart(s, creds, self.runner)
            return Resolved(s, version, creds=creds)
        creds = await self.credentials_for(app, s.repo_url)
        url = s.repo_url
        commit = await self.git.resolve(url, revision or s.target_revision, creds)
        await self.git.fetch(url, creds, commit)
        if s.verify is not None:
            from tether.source.verify import verify_commit

            signer = await verify_commit(
                self.git, url, commit, s.verify, self.kube, app.namespace, self.runner
            )
            log.debug("%s at %s signed by %s", redact(url), commit[:10], signer)
        git = self.git

        async def export(dest: Path) -> None:
            await git.export(url, commit, dest)

        async def export_only(dest: Path, paths: list[str]) -> None:
            await git.export(url, commit, dest, paths)

        def read(fn: Callable[[LinkedRepoView], T]) -> Awaitable[T]:
            return git.read(url, commit, fn)

        view = git.view(url, commit)
        checkout = Checkout(view, export, commit, export_only, read)
        return Resolved(s, commit, checkout, creds)

    async def render_context(
        self, app: Application, resolved: Sequence[Resolved] | None = None
    ) -> RenderContext:
        """The cluster facts and credentials every source of ``app`` renders with.

        The facts (the server's version and every API it serves: a discovery of each group)
        are read only when one of the ``resolved`` sources renders with them (a chart, a
        kustomization that inflates charts or may: ``reads_cluster_facts``), or when
        ``resolved`` is not given (what renders may be of other commits). Otherwise they are
        left empty (``NO_FACTS``), as no such render reads them."""
        facts = NO_FACTS
        if resolved is None or any(_renders_with_facts(r) for r in resolved):
            facts = await cluster_facts(self.kube)
        kube_version, api_versions = facts
        entries: list[tuple[str, RepoCredentials]] = []
        if self.allow_remote:
            entries = await self._repo_entries(self.credentials_namespace or app.namespace)
        return RenderContext(
            app=f"{app.namespace}/{app.name}",
            destination_namespace=app.destination.namespace,
            release_name=app.name,
            kube_version=kube_version,
            api_versions=api_versions,
            allow_remote=self.allow_remote,
            runner=self.runner,
            cache=self.render_cache,
            credentials=entries,
        )

    async def render_source(
        self, ctx: RenderContext, r: Resolved, refs: dict[str, Checkout]
    ) -> tuple[str, list[Manifest]]:
        """Renders one resolved source; returns its render type and manifests."""
        render_type, out, _ = await self.render_keyed(ctx, r, refs)
        return render_type, out

    async def render_keyed(
        self, ctx: RenderContext, r: Resolved, refs: dict[str, Checkout]
    ) -> tuple[str, list[Manifest], str | None]:
        """Renders one resolved source: its render type, its manifests and its render cache
        key (None for a chart from a Helm repository, or without a cache)."""
        if r.checkout is not None:
            plan = plan_git_render(ctx, r.source, r.checkout, refs)
            return plan.render_type, await plan.manifests(ctx.cache), plan.key
        from tether.source.helm_repo import chart_digest, pull_chart

        s, version, creds = r.source, r.revision, r.creds

        async def pull(dest: Path) -> Path:
            return await pull_chart(s, version, creds, dest, ctx.runner)

        key = chart_source_key(s, version, await chart_digest(s, version, creds))
        render_type, out = await render_chart(ctx, s, key, pull, refs)
        return render_type, out, None

    def _commit_info(self, url: str, commit: str) -> CommitInfo:
        info = self.git.commit_info(url, commit)
        author = (
            f"{info.author_name} <{info.author_email}>" if info.author_email else info.author_name
        )
        return CommitInfo(commit, author, info.message.strip(), str(info.time))

    async def prepare(
        self, app: Application, manifests: list[Manifest], guessed: list[ResourceKey] | None = None
    ) -> tuple[list[Manifest], dict[ResourceKey, Manifest], list[Manifest]]:
        """Fills in the destination namespace and marks every object as this app's: the
        objects to deploy (with their rendered form by key, for messages), and apart from
        them the hooks (``tether.sync.hooks``), marked as hooks of this app and not with
        its tracking id, so they never enter the inventory, the diff or the prune.
        ``guessed`` gets the objects whose kind is not served yet (taken as namespaced)."""
        crd_scopes = _crd_scopes(manifests)
        out: list[Manifest] = []
        hooks: list[Manifest] = []
        sources: dict[ResourceKey, Manifest] = {}
        hook_sources: dict[ResourceKey, Manifest] = {}
        for m in manifests:
            obj = await self._namespaced_obj(app, m, crd_scopes, guessed)
            hook = is_hook(obj)
            marked = Manifest(
                set_native_defaults(mark_hook(app, obj) if hook else mark(app, obj)),
                m.source_file,
                m.line,
            )
            if hook:
                # A mistake in a hook's annotations is found with the render's, before any
                # sync; which phases it runs in is decided when an operation starts.
                hook_of(marked, first_install=False)
            if hook and not marked.key.name:
                hooks.append(marked)  # generateName: a new object each time it runs
                continue
            first = sources.get(marked.key) or hook_sources.get(marked.key)
            if first is not None:
                raise RenderError(
                    f"{marked.key} is defined twice once the destination namespace is filled "
                    f"in: here and at {first.source_file}:{first.line}",
                    file=m.source_file,
                    line=m.line,
                    hint="remove one of the two definitions",
                )
            if hook:
                hook_sources[marked.key] = m
                hooks.append(marked)
            else:
                sources[marked.key] = m
                out.append(marked)
        return out, sources, hooks

    async def _namespaced_obj(
        self,
        app: Application,
        m: Manifest,
        crd_scopes: dict[tuple[str, str], bool],
        guessed: list[ResourceKey] | None = None,
    ) -> Obj:
        """A copy of ``m``'s object with the destination namespace filled in when its kind
        is namespaced and it names none, and without a namespace when it is cluster-scoped."""
        obj = dict(m.obj)
        api_version, kind = str(obj["apiVersion"]), str(obj["kind"])
        namespaced = await self._namespaced(api_version, kind, crd_scopes, m, app, guessed)
        meta = dict(obj.get("metadata") or {})
        if namespaced and not meta.get("namespace"):
            if not app.destination.namespace:
                name = meta.get("name") or f"{meta.get('generateName') or ''}*"
                raise InvalidSpec(
                    f"{m.source_file}:{m.line}: {kind} {name} has no namespace "
                    "and the Application sets no destination.namespace",
                    hint="set spec.destination.namespace or metadata.namespace",
                )
            meta["namespace"] = app.destination.namespace
        elif not namespaced:
            meta.pop("namespace", None)
        obj["metadata"] = meta
        return obj

    async def _namespaced(
        self,
        api_version: str,
        kind: str,
        crd_scopes: dict[tuple[str, str], bool],
        m: Manifest,
        app: Application,
        guessed: list[ResourceKey] | None = None,
    ) -> bool:
        group, _ = split_api_version(api_version)
        if (group, kind) in crd_scopes:
            return crd_scopes[(group, kind)]
        try:
            return (await self.kube.resource_for(api_version, kind)).namespaced
        except KubeError as e:
            options = SyncOptions(app.sync_policy.sync_options)
            if e.status == 404 and options.enabled(SKIP_DRY_RUN, m.obj):
                if guessed is not None:
                    guessed.append(m.key)
                return True  # not served yet: taken as namespaced, as Argo CD does
            raise KubeError(
                f"{m.source_file}:{m.line}: {e.message}",
                status=e.status,
                hint=f"{e.hint}; or add the sync option {SKIP_DRY_RUN}=true when something in "
                "the cluster creates its CRD during the sync"
                if e.status == 404
                else e.hint,
            ) from e


def revision_of(app: Application, index: int, revision: str | None) -> str | None:
    """What source ``index`` of ``app`` is resolved at, instead of its targetRevision: the
    ``revision`` asked for (the first rendering source only), else the pinned one while
    ``spec.pin`` is set (the one place a pin holds an app), else None (the target)."""
    s = app.sources[index]
    if revision and s is app.source:
        return revision
    if app.pin is not None:
        return app.pin.revisions[index]
    return None


def _renders_with_facts(r: Resolved) -> bool:
    """Whether rendering ``r`` reads the cluster's facts: a chart from a Helm repository,
    or a Git source that renders with them (``reads_cluster_facts``)."""
    if not r.source.renders:
        return False
    return r.checkout is None or reads_cluster_facts(r.source, r.checkout)


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "tether" / "git"


def _crd_scopes(manifests: list[Manifest]) -> dict[tuple[str, str], bool]:
    out: dict[tuple[str, str], bool] = {}
    for m in manifests:
        if m.obj.get("kind") == "CustomResourceDefinition":
            spec = m.obj.get("spec") or {}
            kind = (spec.get("names") or {}).get("kind")
            if kind:
                out[(str(spec.get("group", "")), str(kind))] = spec.get("scope") != "Cluster"
    return out
