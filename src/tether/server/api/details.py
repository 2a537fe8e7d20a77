"""What is under one Application: its resource tree, its diff with Git, and one resource's
live and desired manifests. Only objects in the app's tree are ever read for a caller: the
server's own identity may read anything, its callers may not."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from tether.api.application import MANIFEST_HASH_ANNOTATION
from tether.diff.redact import is_secret, redact
from tether.errors import KubeError
from tether.model import Obj, ResourceKey
from tether.server.api import tree
from tether.server.api.context import ApiContext, context_of
from tether.server.api.guard import app_for
from tether.server.errors import ApiError
from tether.service import ApplicationService
from tether.service.documents import diff_document


async def tree_route(request: web.Request) -> web.Response:
    target = await app_for(request)
    return web.json_response({"nodes": await nodes_of(context_of(request), target.obj)})


async def diff_route(request: web.Request) -> web.Response:
    target = await app_for(request)
    service = ApplicationService(context_of(request).engine)
    revision = request.query.get("revision") or None
    cmp = await service.diff(target.name, target.namespace, revision)
    return web.json_response(diff_document(cmp))


async def resource_route(request: web.Request) -> web.Response:
    """``{"live", "desired", "diff"}`` of one object of the app's tree, Secrets masked."""
    target = await app_for(request)
    ctx = context_of(request)
    q = request.query
    key = ResourceKey(
        q.get("group", ""), q.get("kind", ""), q.get("namespace", ""), q.get("name", "")
    )
    version = q.get("version", "")
    if not key.kind or not key.name or not version:
        raise ApiError(400, "kind, version and name are required", hint="take them from /tree")
    nodes = await nodes_of(ctx, target.obj)
    if not tree.contains(nodes, key):
        raise ApiError(
            404,
            f"{key} is not part of Application {target.namespace}/{target.name}",
            hint="only the objects of the app's tree (GET .../tree) can be read here",
        )
    api_version = f"{key.group}/{version}" if key.group else version
    live = await ctx.kube.get(api_version, key.kind, key.name, key.namespace)
    desired: Obj | None = None
    diff = ""
    if any(n["managed"] and _same(n, key) for n in nodes):
        cmp = await ctx.engine.compare(target.app())
        if cmp.error is None:
            desired = cmp.desired_objects.get(key)
            state = cmp.resources.get(key)
            diff = state.diff.diff_text if state is not None else ""
    return web.json_response({"live": _shown(live), "desired": _shown(desired), "diff": diff})


async def nodes_of(ctx: ApiContext, app: Obj) -> list[dict[str, Any]]:
    """The tree's nodes: roots read live, and the objects they own in their namespaces."""
    roots = tree.roots(app)
    live: dict[ResourceKey, Obj] = {}

    async def fetch(r: tree.Root) -> None:
        if r.pruned or not r.version:
            return
        api_version = f"{r.key.group}/{r.version}" if r.key.group else r.version
        with contextlib.suppress(KubeError):  # a kind no longer served: shown without a uid
            obj = await ctx.kube.get(api_version, r.key.kind, r.key.name, r.key.namespace)
            if obj is not None:
                live[r.key] = obj

    await asyncio.gather(*(fetch(r) for r in roots))
    candidates: list[Obj] = []
    if tree.may_own(roots):
        namespaces = sorted({r.key.namespace for r in roots if r.key.namespace})

        async def children(ns: str, api_version: str, kind: str) -> None:
            with contextlib.suppress(KubeError):
                items, _ = await ctx.kube.list(api_version, kind, ns)
                candidates.extend(items)

        await asyncio.gather(
            *(children(ns, av, kind) for ns in namespaces for av, kind in tree.OWNED_KINDS)
        )
    return tree.build(app, live, candidates)


def _same(node: dict[str, Any], key: ResourceKey) -> bool:
    return (node["group"], node["kind"], node["namespace"], node["name"]) == (
        key.group,
        key.kind,
        key.namespace,
        key.name,
    )


def _shown(obj: Obj | None) -> Obj | None:
    """``obj`` as a person reads it: Secret values masked, no managedFields; a Secret
    without its manifest hash either (a hash of its values could be guessed at offline)."""
    if obj is None:
        return None
    out = redact(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    if is_secret(out) and meta.get("annotations"):
        meta["annotations"] = {
            k: v for k, v in meta["annotations"].items() if k != MANIFEST_HASH_ANNOTATION
        }
    return {**out, "metadata": meta}
