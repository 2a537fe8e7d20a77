"""Reading Applications from a local YAML file for ``tether app apply``, refusing what would
not do what the file says before anything is sent.

The Application schema declares what tether renders (directories, Jsonnet, Kustomize, Helm,
several sources) and nothing else. A field it does not declare (a config management
plugin, a field of a newer Argo CD) fails server-side apply with a 500 from the API
server; written any other way it is pruned silently and the app renders without it. So
every field the schema does not declare is refused here, by name, with what to do
instead. What the schema declares is read from the packaged CRD, so this check and the
server agree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tether.api.application import (
    API_VERSION,
    GROUP,
    KIND,
    Application,
    crd_manifests,
)
from tether.errors import InvalidSpec
from tether.model import Obj

# Argo CD fields tether does not support, and what to do instead.
_PLUGIN_HINT = (
    "config management plugins are not supported: commit the rendered manifests to the "
    "repository, or use a Kustomize, Helm or Jsonnet source"
)
_UNSUPPORTED = {
    "plugin": _PLUGIN_HINT,
    "helm.fileParameters": "helm.fileParameters is not supported: put the file's content "
    "in a values file and list it in helm.valueFiles",
    "helm.version": "helm.version is not needed: charts render with Helm 3 semantics",
    "kustomize.version": "kustomize.version is not supported: one built-in kustomize "
    "renders every app",
}


def _hint_for(field: str) -> str:
    """What to do about an unsupported field, judged by its path under the source."""
    under = re.sub(r"^spec\.(source|sources\[\d+\])\.", "", field)
    return _UNSUPPORTED.get(under, "")


def _spec_schema() -> dict[str, Any]:
    for crd in crd_manifests():
        if crd["spec"]["names"]["kind"] == KIND:
            version = crd["spec"]["versions"][0]
            schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
            return schema
    raise AssertionError("the packaged CRD has no Application")  # a packaging bug


def dropped_fields(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Paths under ``value`` that the structural ``schema`` does not declare, which the API
    server would refuse or prune (nothing under ``x-kubernetes-preserve-unknown-fields``)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    props = schema.get("properties")
    if isinstance(value, dict) and props is not None:
        for key, sub in value.items():
            where = f"{path}.{key}"
            if key not in props:
                found.append(where)
            else:
                found += dropped_fields(sub, props[key], where)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += dropped_fields(item, schema["items"], f"{path}[{i}]")
    return found


def check_document(doc: Any, where: str, namespace: str) -> Obj:
    """One document of the file as the Application to apply (``metadata.namespace`` filled
    in from ``namespace`` when missing); InvalidSpec naming ``where`` and the field if it is
    not one tether would store as written."""
    if not isinstance(doc, dict):
        raise InvalidSpec(f"{where}: is not a YAML mapping (an object with apiVersion and kind)")
    if doc.get("kind") != KIND or not str(doc.get("apiVersion", "")).startswith(f"{GROUP}/"):
        raise InvalidSpec(
            f"{where}: {doc.get('kind')} {doc.get('apiVersion')} is not a {GROUP} Application",
            hint=f"an Argo CD Application ports by changing apiVersion to {API_VERSION}",
        )
    meta = doc.setdefault("metadata", {})
    if not isinstance(meta, dict) or not meta.get("name"):
        raise InvalidSpec(f"{where}: metadata.name is required")
    meta.setdefault("namespace", namespace)
    file = where
    where = f"{where} (Application {meta['namespace']}/{meta['name']})"
    dropped = dropped_fields(doc.get("spec"), _spec_schema(), "spec")
    if dropped:
        known = [h for h in map(_hint_for, dropped) if h]
        raise InvalidSpec(
            f"{where}: {', '.join(dropped)} {'is' if len(dropped) == 1 else 'are'} "
            "not supported by tether",
            hint=known[0]
            if known
            else "remove it: the Application schema has no such field, so the API server "
            "would refuse or drop it",
        )
    try:
        Application.from_obj(doc)
    except InvalidSpec as e:
        raise InvalidSpec(f"{file}: {e.message}", hint=e.hint) from None
    return doc


def read_application_file(path: Path, namespace: str) -> list[Obj]:
    """Every Application in the YAML file at ``path``, each checked by ``check_document``."""
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        raise InvalidSpec(f"{path}: invalid YAML: {e}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidSpec(f"{path}: cannot read: {e}") from e
    if not docs:
        raise InvalidSpec(f"{path}: holds no Application")
    many = len(docs) > 1
    return [
        check_document(d, f"{path}, document {i}" if many else str(path), namespace)
        for i, d in enumerate(docs, 1)
    ]
