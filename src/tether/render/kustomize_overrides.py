"""An Application's ``spec.source.kustomize`` overrides, applied to the app's kustomization
the way Argo CD's ``kustomize edit`` commands apply them (``set image``, ``set nameprefix``,
``add label --force``, ``set replicas``, ``add component``, and its own ``patches`` merge).

Editing the app's own kustomization (in a private copy of the repository), rather than
wrapping it in another one, gives Argo CD's results: an override replaces the app's own
``namePrefix`` instead of stacking on it, and an image override replaces the app's own
entry for that image instead of running after it.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import yaml

from tether.api.source import KustomizeSource
from tether.errors import InvalidSpec

_TAG = re.compile(r"^(.*):([a-zA-Z0-9._-]*|\*)$")
_KEEP = "*"
"""``*`` as a new name, tag or digest keeps what the kustomization already has."""

_IMAGE_FORMS = (
    "use one of <image>=<new-image>:<tag>, <image>=<new-image>@<digest>, "
    "<image>=<new-image>, <image>:<tag>, <image>@<digest>"
)


@dataclass(frozen=True)
class ImageOverride:
    name: str
    new_name: str = ""
    new_tag: str = ""
    digest: str = ""

    def as_entry(self) -> dict[str, str]:
        entry = {"name": self.name}
        for key, value in (
            ("newName", self.new_name),
            ("newTag", self.new_tag),
            ("digest", self.digest),
        ):
            if value:
                entry[key] = value
        return entry


def has_overrides(options: KustomizeSource | None) -> bool:
    if options is None:
        return False
    return bool(
        options.images
        or options.name_prefix
        or options.name_suffix
        or options.common_labels
        or options.common_annotations
        or options.namespace
        or options.replicas
        or options.patches
        or options.components
    )


def parse_image(text: str) -> ImageOverride:
    """``nginx=registry/nginx:1.27`` and the other forms of ``kustomize edit set image``."""
    if text.count("=") == 1:
        name, rest = text.split("=")
        new_name, tag, digest = _split_reference(rest, text, name_only=True)
        if not name:
            raise _bad_image(text)
        return ImageOverride(name, new_name, tag, digest)
    name, tag, digest = _split_reference(text, text, name_only=False)
    return ImageOverride(name, "", tag, digest)


def _split_reference(text: str, whole: str, *, name_only: bool) -> tuple[str, str, str]:
    if "@" in text:
        name, digest = text.split("@", 1)
        return name, "", digest
    match = _TAG.match(text)
    if match:
        return match.group(1), match.group(2), ""
    if text and name_only:
        return text, "", ""
    raise _bad_image(whole)


def _bad_image(text: str) -> InvalidSpec:
    return InvalidSpec(
        f"spec.source.kustomize.images entry {text!r} is not an image override",
        hint=_IMAGE_FORMS,
    )


def apply_overrides(kustomization: dict[str, Any], options: KustomizeSource) -> dict[str, Any]:
    """A copy of ``kustomization`` with the overrides in; the input is left as it was."""
    out = copy.deepcopy(kustomization)
    if options.name_prefix:
        out["namePrefix"] = options.name_prefix
    if options.name_suffix:
        out["nameSuffix"] = options.name_suffix
    if options.namespace:
        out["namespace"] = options.namespace
    if options.images:
        out["images"] = _merged_images(out.get("images"), options.images)
    if options.replicas:
        out["replicas"] = _merged_replicas(out.get("replicas"), options)
    if options.common_labels:
        out["commonLabels"] = {**_mapping(out.get("commonLabels")), **options.common_labels}
    if options.common_annotations:
        annotations = _mapping(out.get("commonAnnotations"))
        out["commonAnnotations"] = {**annotations, **options.common_annotations}
    if options.components:
        components = _list(out.get("components"))
        components += [c for c in options.components if c not in components]
        out["components"] = components
    if options.patches:
        out["patches"] = [*_list(out.get("patches")), *copy.deepcopy(options.patches)]
    return out


def _merged_images(current: object, overrides: list[str]) -> list[dict[str, Any]]:
    """``kustomize edit set image``: an override replaces the entry of the same name (``*``
    keeps that entry's field); the others stay; the list ends sorted by name."""
    wanted: dict[str, ImageOverride] = {}
    for text in overrides:
        image = parse_image(text)
        wanted[image.name] = image
    merged: dict[str, dict[str, Any]] = {}
    for entry in _list(current):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        name = entry["name"]
        override = wanted.pop(name, None)
        merged[name] = entry if override is None else _replace_image(entry, override)
    for name, override in wanted.items():
        merged[name] = _replace_image({}, override)
    return [merged[name] for name in sorted(merged)]


def _replace_image(entry: dict[str, Any], override: ImageOverride) -> dict[str, Any]:
    def pick(value: str, key: str) -> str:
        return str(entry.get(key) or "") if value == _KEEP else value

    return ImageOverride(
        override.name,
        pick(override.new_name, "newName"),
        pick(override.new_tag, "newTag"),
        pick(override.digest, "digest"),
    ).as_entry()


def _merged_replicas(current: object, options: KustomizeSource) -> list[dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for entry in _list(current):
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            merged[entry["name"]] = entry
    for replica in options.replicas:
        merged[replica.name] = {"name": replica.name, "count": replica.count}
    return [merged[name] for name in sorted(merged)]


def _mapping(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list) else []


# --- writing the kustomization back -------------------------------------------------------------


class _Plain(str):
    """A scalar written without quotes, kept as its text: ``newTag: 1.10`` stays ``1.10``
    (not the float 1.1) and ``count: 3`` stays a number when the file is written back."""

    __slots__ = ()


class _Loader(yaml.SafeLoader):
    pass


def _scalar(loader: _Loader, node: yaml.ScalarNode) -> str:
    value = loader.construct_scalar(node)
    return _Plain(value) if node.style is None else str(value)


for _tag in ("str", "int", "float", "bool", "null", "timestamp"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _scalar)


class _Dumper(yaml.SafeDumper):
    pass


def _represent_plain(dumper: _Dumper, value: _Plain) -> yaml.ScalarNode:
    # Tagged as YAML would read the bare text, so the emitter writes it bare again.
    tag = dumper.resolve(yaml.ScalarNode, str(value), (True, False))  # type: ignore[no-untyped-call]
    return dumper.represent_scalar(tag, str(value))


_Dumper.add_representer(_Plain, _represent_plain)


def edit_kustomization(text: str, options: KustomizeSource) -> str:
    """The kustomization file ``text`` with the overrides in, every value it had written as
    it was written (the caller has already checked that it reads as a mapping)."""
    value = yaml.load(text, Loader=_Loader)  # a SafeLoader: no Python objects
    edited = apply_overrides(value if isinstance(value, dict) else {}, options)
    return yaml.dump(edited, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
