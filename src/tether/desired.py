"""The desired objects of an app: repository credentials, Git source, render, and marking.

Resolves the app's revision, reads its files, renders them, fills in the destination
namespace and marks every object as the app's; the same commit and spec render once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from tether.api.application import REPO_SECRET_LABEL, Application
from tether.errors import InvalidSpec, KubeError, RenderError
from tether.kube import KubeClient
from tether.kube.client import split_api_version
from tether.kube.secrets import decode_secret_data
from tether.model import Manifest, Obj, ResourceKey
from tether.render import DirectoryOptions, Tree, render_directory
from tether.source import GitCache, RepoCredentials, from_secret_data, match_credentials
from tether.sync.defaults import set_native_defaults
from tether.sync.tracking import manifest_hash, mark


@dataclass
class CommitInfo:
    sha: str
    author: str = ""
    message: str = ""
    time: str = ""


@dataclass
class Desired:
    revision: str
    commit: CommitInfo
    manifests: list[Manifest]
    """Marked (tracking id, label, hash) and namespaced; ready to apply."""
    sources: dict[ResourceKey, Manifest]
    """The same objects as Git has them, with file and line, for messages."""


class DesiredSource:
    def __init__(
        self,
        kube: KubeClient,
        git: GitCache,
        *,
        credentials_ttl: float = 0.0,
        render_cache_size: int = 0,
        credentials_namespace: str = "",
    ) -> None:
        self.kube = kube
        self.git = git
        self.credentials_ttl = credentials_ttl
        """Seconds a namespace's repository Secrets are reused (0: read them every time)."""
        self.credentials_namespace = credentials_namespace
        """Where repository Secrets live (default: each Application's own namespace)."""
        self._secrets: dict[str, tuple[float, list[Obj]]] = {}
        self._secrets_locks: dict[str, asyncio.Lock] = {}
        self.render_cache_size = render_cache_size
        self._desired_cache: dict[tuple[str, str, str, str], Desired] = {}

    # ---- repository credentials ---------------------------------------------------------
    async def _repo_secrets(self, namespace: str) -> list[Obj]:
        lock = self._secrets_locks.setdefault(namespace, asyncio.Lock())
        async with lock:
            hit = self._secrets.get(namespace)
            if hit is not None and time.monotonic() - hit[0] < self.credentials_ttl:
                return hit[1]
            secrets, _ = await self.kube.list(
                "v1", "Secret", namespace, label_selector=f"{REPO_SECRET_LABEL}=repository"
            )
            self._secrets[namespace] = (time.monotonic(), secrets)
            return secrets

    async def credentials_for(self, app: Application) -> RepoCredentials | None:
        secrets = await self._repo_secrets(self.credentials_namespace or app.namespace)
        candidates = []
        for s in secrets:
            data = decode_secret_data(s)
            if data.get("url"):
                meta = s.get("metadata") or {}
                origin = f"Secret {meta.get('namespace')}/{meta.get('name')}"
                candidates.append((data["url"], from_secret_data(data, origin)))
        return match_credentials(app.source.repo_url, candidates)

    # ---- source + render --------------------------------------------------------------
    async def fetch_desired(self, app: Application, revision: str | None = None) -> Desired:
        creds = await self.credentials_for(app)
        url = app.source.repo_url
        rev = revision or app.source.target_revision
        commit = await self.git.resolve(url, rev, creds)
        # The same commit and spec always render the same: reuse it (the controller
        # compares on every live change, and rendering is most of a compare's work).
        cache_key = (app.namespace, app.name, commit, _spec_key(app))
        hit = self._desired_cache.get(cache_key)
        if hit is not None:
            return hit
        await self.git.fetch(url, creds, commit)
        content = await asyncio.to_thread(self.git.read_tree, url, commit, app.source.path)
        info = self.git.commit_info(url, commit)
        tree = Tree(files=content.files, symlinks=content.symlinks)
        d = app.source.directory
        opts = DirectoryOptions(recurse=d.recurse, include=d.include, exclude=d.exclude)
        manifests = await asyncio.to_thread(render_directory, tree, app.source.path, opts)
        marked, sources = await self.prepare(app, manifests)
        author = (
            f"{info.author_name} <{info.author_email}>" if info.author_email else (info.author_name)
        )
        desired = Desired(
            revision=commit,
            commit=CommitInfo(commit, author, info.message.strip(), str(info.time)),
            manifests=marked,
            sources=sources,
        )
        if self.render_cache_size:
            if len(self._desired_cache) >= self.render_cache_size:
                self._desired_cache.pop(next(iter(self._desired_cache)))
            self._desired_cache[cache_key] = desired
        return desired

    async def prepare(
        self, app: Application, manifests: list[Manifest]
    ) -> tuple[list[Manifest], dict[ResourceKey, Manifest]]:
        """Fills in the destination namespace and marks every object as this app's."""
        crd_scopes = _crd_scopes(manifests)
        out: list[Manifest] = []
        sources: dict[ResourceKey, Manifest] = {}
        for m in manifests:
            obj = dict(m.obj)
            api_version, kind = str(obj["apiVersion"]), str(obj["kind"])
            namespaced = await self._namespaced(api_version, kind, crd_scopes, m)
            meta = dict(obj.get("metadata") or {})
            if namespaced and not meta.get("namespace"):
                if not app.destination.namespace:
                    raise InvalidSpec(
                        f"{m.source_file}:{m.line}: {kind} {meta.get('name')} has no namespace "
                        "and the Application sets no destination.namespace",
                        hint="set spec.destination.namespace or metadata.namespace",
                    )
                meta["namespace"] = app.destination.namespace
            elif not namespaced:
                meta.pop("namespace", None)
            obj["metadata"] = meta
            marked = Manifest(set_native_defaults(mark(app, obj)), m.source_file, m.line)
            if marked.key in sources:
                first = sources[marked.key]
                raise RenderError(
                    f"{marked.key} is defined twice once the destination namespace is filled "
                    f"in: here and at {first.source_file}:{first.line}",
                    file=m.source_file,
                    line=m.line,
                    hint="remove one of the two definitions",
                )
            sources[marked.key] = m
            out.append(marked)
        return out, sources

    async def _namespaced(
        self, api_version: str, kind: str, crd_scopes: dict[tuple[str, str], bool], m: Manifest
    ) -> bool:
        group, _ = split_api_version(api_version)
        if (group, kind) in crd_scopes:
            return crd_scopes[(group, kind)]
        try:
            return (await self.kube.resource_for(api_version, kind)).namespaced
        except KubeError as e:
            raise KubeError(
                f"{m.source_file}:{m.line}: {e.message}", status=e.status, hint=e.hint
            ) from e


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "tether" / "git"


def _spec_key(app: Application) -> str:
    spec = app.obj.get("spec") or {}
    return manifest_hash({"source": spec.get("source"), "destination": spec.get("destination")})


def _crd_scopes(manifests: list[Manifest]) -> dict[tuple[str, str], bool]:
    out: dict[tuple[str, str], bool] = {}
    for m in manifests:
        if m.obj.get("kind") == "CustomResourceDefinition":
            spec = m.obj.get("spec") or {}
            kind = (spec.get("names") or {}).get("kind")
            if kind:
                out[(str(spec.get("group", "")), str(kind))] = spec.get("scope") != "Cluster"
    return out
