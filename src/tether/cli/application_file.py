"""Reading Applications from a local YAML file for ``tether app apply``, refusing what would
not do what the file says before anything is sent.

The Application schema has no field for Helm, Kustomize, plugins or several sources. Sent
with server-side apply, such a field fails with a 500 from the API server; written any
other way it is pruned silently and the app syncs a plain directory instead. So every
field the schema does not declare is refused here, by name, with what to do instead. What
the schema declares is read from the packaged CRD, so this check and the server agree.
"""

from __future__ import annotations

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

# Argo CD fields for sources tether does not render yet, and what to do instead.
_NOT_YET = {
    "spec.source.helm": "Helm charts are not rendered yet: commit the output of "
    "'helm template' to the repository and point spec.source.path at it",
    "spec.source.chart": "Helm charts are not rendered yet: commit the output of "
    "'helm template' to the repository and point spec.source.path at it",
    "spec.source.kustomize": "Kustomize is not rendered yet: commit the output of "
    "'kustomize build' to the repository and point spec.source.path at it",
    "spec.source.plugin": "config management plugins are not supported: commit the rendered "
    "manifests to the repository",
    "spec.sources": "several sources are not supported yet: use one spec.source",
}


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
        known = [_NOT_YET[f] for f in dropped if f in _NOT_YET]
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
