"""Namespaces a sync needs: which ones it creates itself, and what to say about a missing one.

A server-side-apply dry-run into a namespace that does not exist answers 404, exactly like
one whose namespace is created earlier in the same sync. Telling the two apart here keeps a
dry run honest: it fails, naming the namespace and the option, as the real sync would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tether.api.application import Application
from tether.model import Manifest, Obj, ResourceKey

CREATE_NAMESPACE = "CreateNamespace"


def creates_destination(app: Application) -> bool:
    """True when the sync creates ``destination.namespace`` (``CreateNamespace=true``)."""
    return bool(app.destination.namespace) and app.sync_policy.option(CREATE_NAMESPACE) == "true"


def namespaces_to_check(
    app: Application, manifests: Iterable[Manifest], live: Mapping[ResourceKey, Obj]
) -> dict[str, list[ResourceKey]]:
    """Namespace → the objects to be created in it, for each namespace this sync does not
    create itself (by ``CreateNamespace=true`` or a Namespace in the render).

    Objects that already exist prove their namespace exists, so only new ones count.
    """
    manifests = list(manifests)
    created = {m.key.name for m in manifests if m.key.group == "" and m.key.kind == "Namespace"}
    if creates_destination(app):
        created.add(app.destination.namespace)
    out: dict[str, list[ResourceKey]] = {}
    for m in manifests:
        ns = m.key.namespace
        if ns and ns not in created and m.key not in live:
            out.setdefault(ns, []).append(m.key)
    return out


def missing_namespace_message(app: Application, namespace: str) -> str:
    """Why objects in ``namespace`` cannot be created, and what to do about it."""
    if namespace == app.destination.namespace:
        return (
            f"namespace {namespace} does not exist: add the sync option "
            f"{CREATE_NAMESPACE}=true to have tether create it, or create it first"
        )
    return (
        f"namespace {namespace} does not exist: create it first or add a Namespace manifest "
        f"for it ({CREATE_NAMESPACE}=true creates only destination.namespace)"
    )
