"""The one manifest parser: YAML or JSON text into Kubernetes objects, with their lines.

Every renderer's output goes through here (files of a directory app, Jsonnet's JSON, the
output of ``kustomize build`` and ``helm template``), so every source gets the same safety
checks (those of ``tether.render.yaml_safe`` for YAML, non-object documents, objects without
apiVersion/kind/name, an object defined twice) and the same messages, which never quote the
file's text. By stage: the text decoded, its documents read (YAML through ``yaml_safe``, or
JSON), ``List`` kinds expanded with the line of each item, each value checked to be an object,
and no object defined twice. A hook (``tether.sync.hooks.is_hook``) may have
``metadata.generateName`` instead of a name.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable
from typing import Any

from yaml.nodes import MappingNode, Node, SequenceNode

from tether.errors import RenderError
from tether.model import Manifest, ResourceKey
from tether.render.yaml_safe import yaml_documents
from tether.sync.hooks import is_hook

__all__ = [
    "check_unique",
    "duplicate_error",
    "manifests_of",
    "parse_documents",
    "parse_manifests",
    "to_manifest",
    "unique_key",
]

_JSON = json.JSONDecoder()
_JSON_SPACE = re.compile(r"[ \t\n\r]*")

_OBJECT_HINT = "every object needs apiVersion, kind and metadata.name"


def parse_manifests(data: bytes, file: str, *, first_line: int = 1) -> list[Manifest]:
    """Every Kubernetes object in ``data`` (YAML documents, or JSON when ``file`` ends in
    ``.json``), ``List`` kinds expanded, each with ``file`` and the line it starts on.

    ``first_line`` is the line of ``file`` where ``data`` begins, for text cut out of a larger
    stream. Raises :class:`RenderError` for the first problem, naming the file and line; an
    object defined twice is one.
    """
    shift = first_line - 1
    try:
        manifests = [
            to_manifest(value, file, line + shift) for value, line in parse_documents(data, file)
        ]
    except RenderError as e:
        raise _shifted(e, shift) from e
    check_unique(manifests)
    return manifests


def manifests_of(value: object, file: str, line: int = 0) -> list[Manifest]:
    """The objects in a value already decoded (Jsonnet's output): one object, a ``List``, or an
    array of either. Not checked for duplicates (see :func:`check_unique`)."""
    values = value if isinstance(value, list) else [value]
    out: list[tuple[object, int]] = []
    for item in values:
        _expand_value(item, file, line, out)
    return [to_manifest(item, file, line) for item, line in out]


def _expand_value(value: object, file: str, line: int, out: list[tuple[object, int]]) -> None:
    items = _list_items(value, file, line)
    if items is None:
        out.append((value, line))
        return
    for item in items:
        _expand_value(item, file, line, out)


def _shifted(error: RenderError, shift: int) -> RenderError:
    if not shift or not error.line:
        return error
    prefix = f"{error.file}:{error.line}: "
    message = error.message.removeprefix(prefix)
    return RenderError(message, file=error.file, line=error.line + shift, hint=error.hint)


def parse_documents(data: bytes, file: str) -> list[tuple[object, int]]:
    """Each document of a file with the 1-based line it starts on, ``List`` kinds expanded;
    the values are not checked to be objects (see :func:`to_manifest`)."""
    return _parse(data, file)


def load_mapping(data: bytes, file: str, *, what: str) -> dict[str, Any]:
    """A tool's own file (``kustomization.yaml``, ``Chart.yaml``) as one mapping, read with
    the manifest parser's safeguards (UTF-8, alias bombs, nesting depth): it is read in the
    controller's process, before any sandbox. Empty is ``{}``; anything else but one
    mapping is a RenderError naming the file and ``what`` it should be."""
    docs = [value for value, _ in yaml_documents(_decode(data, file), file)]
    if not docs:
        return {}
    if len(docs) > 1 or not isinstance(docs[0], dict):
        raise RenderError(f"is not {what}: expected one mapping of fields", file=file)
    return {str(key): item for key, item in docs[0].items()}


def check_unique(manifests: Iterable[Manifest]) -> None:
    """Refuse an object defined twice: which one the cluster got would depend on file order.
    Hooks named by ``generateName`` (no ``metadata.name``) are new objects each time they
    run, so they never collide."""
    seen: dict[ResourceKey, Manifest] = {}
    for manifest in manifests:
        key = unique_key(manifest)
        if key is None:
            continue
        first = seen.get(key)
        if first is not None:
            raise duplicate_error(manifest, first)
        seen[key] = manifest


def unique_key(manifest: Manifest) -> ResourceKey | None:
    """The key two definitions of one object share; None for a hook named by
    ``generateName`` (it cannot collide with anything)."""
    key = manifest.key
    return key if key.name else None


def duplicate_error(manifest: Manifest, first: Manifest) -> RenderError:
    """The error for ``manifest`` repeating ``first``'s object, naming both places."""
    where = f"{first.source_file}:{first.line}" if first.line else first.source_file
    return RenderError(
        f"{manifest.key} is defined twice: here and at {where}",
        file=manifest.source_file,
        line=manifest.line,
        hint="remove one of the two definitions",
    )


# --- parsing -------------------------------------------------------------------------------------


def _parse(data: bytes, file: str) -> list[tuple[object, int]]:
    """Each object in a file with the 1-based line it starts on, ``List`` kinds expanded."""
    text = _decode(data, file)
    if file.endswith(".json"):
        return _parse_json(text, file)
    return _parse_yaml(text, file)


def _decode(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RenderError(
            "file is not valid UTF-8",
            file=file,
            line=data.count(b"\n", 0, e.start) + 1,
            hint="save it as UTF-8",
        ) from e


def _parse_yaml(text: str, file: str) -> list[tuple[object, int]]:
    out: list[tuple[object, int]] = []
    for value, node in yaml_documents(text, file):
        _expand_yaml(value, node, file, out)
    return out


def _expand_yaml(value: object, node: Node, file: str, out: list[tuple[object, int]]) -> None:
    line = node.start_mark.line + 1
    items = _list_items(value, file, line)
    if items is None:
        out.append((value, line))
        return
    item_nodes = _items_nodes(node)
    if len(item_nodes) != len(items):  # items came in through a merge key; fall back to the List
        item_nodes = [node] * len(items)
    for item, item_node in zip(items, item_nodes, strict=True):
        _expand_yaml(item, item_node, file, out)


def _items_nodes(node: Node) -> list[Node]:
    found: list[Node] = []
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == "items" and isinstance(value_node, SequenceNode):
                found = value_node.value
    return found


def _parse_json(text: str, file: str) -> list[tuple[object, int]]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise RenderError(
            f"invalid JSON: {e.msg} (column {e.colno})",
            file=file,
            line=e.lineno,
            hint="fix the JSON at that line",
        ) from e
    newlines = [match.start() for match in re.finditer("\n", text)]
    out: list[tuple[object, int]] = []
    _expand_json(value, text, _skip_space(text, 0), newlines, file, out)
    return out


def _expand_json(
    value: object,
    text: str,
    offset: int,
    newlines: list[int],
    file: str,
    out: list[tuple[object, int]],
) -> None:
    line = bisect.bisect_left(newlines, offset) + 1
    items = _list_items(value, file, line)
    if items is None:
        out.append((value, line))
        return
    for item, item_offset in zip(items, _json_item_offsets(text, offset), strict=True):
        _expand_json(item, text, item_offset, newlines, file, out)


def _json_item_offsets(text: str, offset: int) -> list[int]:
    """Where each element of the ``items`` array of the JSON object at ``offset`` starts.

    The text has already decoded, so this only walks the top level of that object, letting the
    decoder skip over every value; like ``json.loads``, the last ``items`` key wins.
    """
    offsets: list[int] = []
    pos = _skip_space(text, offset + 1)
    while text[pos] != "}":
        key, pos = _JSON.raw_decode(text, pos)
        pos = _skip_space(text, _skip_space(text, pos) + 1)
        if key == "items":
            offsets = []
        if key == "items" and text[pos] == "[":
            pos = _skip_space(text, pos + 1)
            while text[pos] != "]":
                offsets.append(pos)
                _, pos = _JSON.raw_decode(text, pos)
                pos = _skip_space(text, pos)
                if text[pos] == ",":
                    pos = _skip_space(text, pos + 1)
            pos += 1
        else:
            _, pos = _JSON.raw_decode(text, pos)
        pos = _skip_space(text, pos)
        if text[pos] == ",":
            pos = _skip_space(text, pos + 1)
    return offsets


def _skip_space(text: str, pos: int) -> int:
    match = _JSON_SPACE.match(text, pos)
    return match.end() if match else pos


# --- objects -------------------------------------------------------------------------------------


def _list_items(value: object, file: str, line: int) -> list[object] | None:
    """The items of a ``kind: List`` (or ``ConfigMapList`` and the like); None for other objects."""
    if not isinstance(value, dict):
        return None
    kind = value.get("kind")
    if not isinstance(kind, str) or not kind.endswith("List"):
        return None
    if "items" not in value:
        return [] if kind == "List" else None
    items = value["items"]
    if items is None:
        return []
    if not isinstance(items, list):
        raise RenderError(
            f"{kind} has items that are {_describe(items)}, not a list",
            file=file,
            line=line,
            hint="items must be a list of objects",
        )
    return items


def to_manifest(value: object, file: str, line: int) -> Manifest:
    """``value`` as a Manifest, or a RenderError saying what it lacks."""
    if not isinstance(value, dict):
        raise RenderError(
            f"expected a Kubernetes object (a mapping) but found {_describe(value)}",
            file=file,
            line=line,
            hint="each YAML document or JSON file must be one Kubernetes object",
        )
    kind = value.get("kind")
    what = f"{kind} object" if isinstance(kind, str) and kind else "object"
    _require_string(value.get("apiVersion"), "apiVersion", what, file, line)
    _require_string(kind, "kind", what, file, line)
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        problem = "no metadata" if metadata is None else f"metadata that is {_describe(metadata)}"
        raise RenderError(f"{what} has {problem}", file=file, line=line, hint=_OBJECT_HINT)
    name = metadata.get("name")
    generate_name = metadata.get("generateName")
    if (name is None or name == "") and isinstance(generate_name, str) and generate_name:
        if is_hook(value):
            # A hook may be made anew each time it runs: the server names it after generateName.
            return Manifest(value, file, line)
        raise RenderError(
            f"{what} has no metadata.name",
            file=file,
            line=line,
            hint="metadata.generateName is allowed only for hooks (objects annotated "
            "tether.dev/hook); give the object a metadata.name",
        )
    _require_string(name, "metadata.name", what, file, line)
    return Manifest(value, file, line)


def _require_string(value: object, field: str, what: str, file: str, line: int) -> None:
    if value is None or value == "":
        raise RenderError(f"{what} has no {field}", file=file, line=line, hint=_OBJECT_HINT)
    if not isinstance(value, str):
        raise RenderError(
            f"{what} has {field} {value!r}, which is {_describe(value)}, not a string",
            file=file,
            line=line,
            hint="quote the value: YAML reads bare yes/no/on/off as booleans and digits as numbers",
        )


def _describe(value: object) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"
