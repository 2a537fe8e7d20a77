"""A Project's rules as pure functions: what an Application, or an object of its render,
does that its project does not allow, as a list of violations (empty: allowed).

``check_app`` judges the Application itself (the namespace it lives in, its repositories, its
destination namespace) before anything is fetched; ``check_objects`` judges every object of
the render, hooks included, once the destination namespace is filled in (a namespaced object
then has a namespace and a cluster-scoped one has none).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tether.api.application import Application
from tether.api.project import KindRule, Project, glob_match, repo_match
from tether.kube.client import split_api_version
from tether.model import Manifest
from tether.source.credentials import redact


@dataclass(frozen=True)
class Violation:
    """One rule broken: ``rule`` is the spec field (``sourceRepos``...), ``message`` says
    what was refused and quotes the rule."""

    rule: str
    message: str


def check_app(project: Project, app: Application) -> list[Violation]:
    """The Application against ``project``: may its namespace use the project, are its
    repositories and its destination namespace allowed."""
    p = project.label
    found: list[Violation] = []
    if not glob_match(app.namespace, project.source_namespaces):
        found.append(
            Violation(
                "sourceNamespaces",
                f"{p} does not allow Applications in namespace {app.namespace} "
                f"(sourceNamespaces: {_listed(project.source_namespaces)})",
            )
        )
    for url in app.repo_urls:
        if not repo_match(url, project.source_repos):
            found.append(
                Violation(
                    "sourceRepos",
                    f"{p} does not allow source repository {redact(url)} "
                    f"(sourceRepos: {_listed(project.raw_repos)})",
                )
            )
    dest = app.destination.namespace
    if dest and not destination_allowed(project, dest):
        found.append(
            Violation(
                "destinations",
                f"{p} does not allow destination namespace {dest} "
                f"(destinations: {_destinations(project)})",
            )
        )
    return found


def destination_allowed(project: Project, namespace: str) -> bool:
    """Whether ``namespace`` of this cluster is among the project's destinations; an entry
    naming another cluster (server or name) never matches."""
    entries = [d for d in project.destinations if d.matches_cluster()]
    return glob_match(namespace, tuple(d.namespace for d in entries))


def check_objects(project: Project, manifests: Iterable[Manifest]) -> list[Violation]:
    """Every object against the project's kind lists and destinations. A cluster-scoped
    kind must be whitelisted (none is by default) and not blacklisted; a namespaced one must
    be whitelisted when a whitelist is given, not blacklisted, and sit in a destination."""
    found: list[Violation] = []
    for m in manifests:
        v = check_object(project, m)
        if v is not None:
            found.append(v)
    return found


def check_object(project: Project, m: Manifest) -> Violation | None:
    obj = m.obj
    group, _ = split_api_version(str(obj.get("apiVersion") or ""))
    kind = str(obj.get("kind") or "")
    meta = obj.get("metadata") or {}
    ns = str(meta.get("namespace") or "")
    name = str(meta.get("name") or f"{meta.get('generateName') or ''}*")
    where = f"{m.source_file}:{m.line}: " if m.source_file and m.line else ""
    gk = str(KindRule(group, kind))
    p = project.label
    if not ns:
        what = f"{where}{p} does not allow cluster-scoped {kind} {name}"
        if _kind_in(project.cluster_blacklist, group, kind):
            return Violation(
                "clusterResourceBlacklist",
                f"{what} (clusterResourceBlacklist: {_kinds(project.cluster_blacklist)})",
            )
        if not _kind_in(project.cluster_whitelist, group, kind):
            listed = _kinds(project.cluster_whitelist)
            why = (
                f"{gk} is not in clusterResourceWhitelist: {listed}"
                if project.cluster_whitelist
                else "clusterResourceWhitelist is empty: no cluster-scoped kind is allowed"
            )
            return Violation("clusterResourceWhitelist", f"{what} ({why})")
        return None
    what = f"{where}{p} does not allow {kind} {ns}/{name}"
    if _kind_in(project.namespace_blacklist, group, kind):
        return Violation(
            "namespaceResourceBlacklist",
            f"{what} (namespaceResourceBlacklist: {_kinds(project.namespace_blacklist)})",
        )
    if project.namespace_whitelist and not _kind_in(project.namespace_whitelist, group, kind):
        return Violation(
            "namespaceResourceWhitelist",
            f"{what} ({gk} is not in namespaceResourceWhitelist: "
            f"{_kinds(project.namespace_whitelist)})",
        )
    if not destination_allowed(project, ns):
        return Violation(
            "destinations",
            f"{what}: namespace {ns} is not among its destinations "
            f"(destinations: {_destinations(project)})",
        )
    return None


def _kind_in(rules: tuple[KindRule, ...], group: str, kind: str) -> bool:
    return any(r.matches(group, kind) for r in rules)


def _listed(items: Iterable[str]) -> str:
    shown = ", ".join(items)
    return shown or "none"


def _kinds(rules: tuple[KindRule, ...]) -> str:
    return _listed(str(r) for r in rules)


def _destinations(project: Project) -> str:
    return _listed(str(d) for d in project.destinations)
