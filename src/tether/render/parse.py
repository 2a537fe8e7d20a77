"""The one manifest parser: YAML or JSON text into Kubernetes objects, with their lines.

Every renderer's output goes through here (files of a directory app, Jsonnet's JSON, the
output of ``kustomize build`` and ``helm template``), so every source gets the same safety
checks (alias bombs, non-object documents, objects without apiVersion/kind/name, an object
defined twice) and the same messages, which never quote the file's text. A hook
(``tether.sync.hooks.is_hook``) may have ``metadata.generateName`` instead of a name.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable
from itertools import chain
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tether.errors import RenderError
from tether.model import Manifest, ResourceKey
from tether.sync.hooks import is_hook

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # PyYAML built without libyaml: same results, several times slower
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


__all__ = [
    "check_unique",
    "duplicate_error",
    "manifests_of",
    "parse_documents",
    "parse_manifests",
    "to_manifest",
    "unique_key",
]

_MAX_ALIASES = 100
# Kubernetes stores at most 1.5 MiB per object, and every node costs at least a byte or two of
# JSON, so no object the API server would accept expands to more nodes than this.
_MAX_EXPANDED_NODES = 1_000_000

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"

_JSON = json.JSONDecoder()
_JSON_SPACE = re.compile(r"[ \t\n\r]*")

_OBJECT_HINT = "every object needs apiVersion, kind and metadata.name"


class _Loader(_BaseLoader):
    """SafeLoader, except that timestamps stay strings: Kubernetes fields hold text, not dates.

    Resolving a plain scalar's tag runs a handful of regexes in Python, the largest cost of a
    render after parsing itself; manifests repeat the same keys and values over and over, so
    the answers are cached.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._plain_tags: dict[str, str] = {}

    def resolve(self, kind: type[Node], value: str, implicit: tuple[bool, bool]) -> str:
        # Resolver.resolve, minus the path resolvers (none are registered): a plain scalar's tag
        # depends on its text alone, every other node gets the default tag of its kind.
        if kind is ScalarNode:
            if not implicit[0]:
                return _STR
            tag = self._plain_tags.get(value)
            if tag is None:
                tag = self._plain_tags[value] = _plain_tag(value)
            return tag
        return _SEQ if kind is SequenceNode else _MAP

    # Only path resolvers use this bookkeeping, and none are registered; composing calls it on
    # every node.
    def descend_resolver(self, current_node: object, current_index: object) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


def _timestamp_as_str(loader: _Loader, node: ScalarNode) -> str:
    return loader.construct_scalar(node)


def _plain_tag(value: str) -> str:
    resolvers = _Loader.yaml_implicit_resolvers
    for tag, pattern in chain(resolvers.get(value[:1], ()), resolvers.get(None, ())):
        if pattern.match(value):
            return str(tag)
    return _STR


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_str)
_SCALARS = {
    tag: _Loader.yaml_constructors[tag]
    for tag in (
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:null",
        "tag:yaml.org,2002:timestamp",
    )
}


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
    docs = [value for value, _ in _yaml_documents(_decode(data, file), file)]
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
    for value, node in _yaml_documents(text, file):
        _expand_yaml(value, node, file, out)
    return out


def _yaml_documents(text: str, file: str) -> list[tuple[object, Node]]:
    """Each non-empty document with its node, read with the alias and depth checks."""
    try:
        return _load_documents(text, file)
    except yaml.YAMLError as e:
        raise _yaml_error(e, text, file) from e
    except RecursionError as e:
        raise RenderError(
            "YAML is nested too deeply to read", file=file, hint="flatten the document"
        ) from e


def _load_documents(text: str, file: str) -> list[tuple[object, Node]]:
    out: list[tuple[object, Node]] = []
    # An alias needs an anchor ("&a") and a use ("*a"); most files have neither character.
    may_alias = "&" in text and "*" in text
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            if may_alias:
                _check_aliases(node, file)
            value = _construct(loader, node)
            if value is not None:
                out.append((value, node))
    finally:
        loader.dispose()
    return out


def _yaml_error(error: yaml.YAMLError, text: str, file: str) -> RenderError:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        problem = " ".join(part for part in (error.problem, error.context) if part)
        column = f" (column {mark.column + 1})" if mark else ""
        return RenderError(
            f"invalid YAML: {_without_values(problem)}{column}",
            file=file,
            line=mark.line + 1 if mark else 0,
            hint=_yaml_hint(problem),
        )
    if isinstance(error, yaml.reader.ReaderError) and isinstance(error.character, int):
        at = text.find(chr(error.character))
        return RenderError(
            f"invalid YAML: character #x{error.character:04x} is not allowed: {error.reason}",
            file=file,
            line=text.count("\n", 0, at) + 1 if at >= 0 else 0,
            hint="remove the character or escape it in a double-quoted string",
        )
    return RenderError(f"invalid YAML: {error}", file=file, hint="fix the YAML")


# A quoted fragment of a parser message: the parser quotes what it read, and what it read may be
# a Secret's value (``password: !s3cret`` is a tag to YAML, ``*s3cret`` an alias).
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
# What may still be shown: one character (a tab, an escape) or a token name like '<block end>'.
_HARMLESS = re.compile(r"(?:\\?.|\\x[0-9a-f]{2}|<[a-z ]+>)", re.DOTALL)


def _without_values(message: str) -> str:
    """``message`` with every quoted piece of the file's text left out.

    Render errors reach the sync output, status conditions and logs, and the file may be a
    Secret: naming the line and column is enough to find the problem.
    """

    def hide(match: re.Match[str]) -> str:
        inner = match.group(0)[1:-1]
        return match.group(0) if _HARMLESS.fullmatch(inner) else "(text not shown)"

    return _QUOTED.sub(hide, message)


def _yaml_hint(problem: str) -> str:
    if "constructor for the tag" in problem or "tag handle" in problem:
        return "a value starting with '!' is read by YAML as a tag: put the value in quotes"
    if "undefined alias" in problem:
        return "a value starting with '*' is read by YAML as an alias: put the value in quotes"
    return "fix the YAML at that line"


def _check_aliases(root: Node, file: str) -> None:
    """Refuse alias bombs ("billion laughs") on the composed graph, before any object is built.

    An alias shares its anchor's node, so the graph stays small while the tree it stands for
    can grow exponentially. The walk meets a node a second time exactly where an alias is
    used, and sums how many nodes each subtree expands to.
    """
    line = root.start_mark.line + 1
    # Expanded size of each node met so far; 0 while the walk is still inside it.
    sizes: dict[int, int] = {id(root): 0}
    aliases = 0

    def expanded_size(node: Node) -> int:
        nonlocal aliases
        total = 1
        children = node.value if isinstance(node, SequenceNode) else chain.from_iterable(node.value)
        for child in children:
            key = id(child)
            known = sizes.get(key)
            if known is None:
                if isinstance(child, ScalarNode):
                    sizes[key] = 1
                    total += 1
                    continue
                sizes[key] = 0
                known = sizes[key] = expanded_size(child)
            elif known == 0:
                raise RenderError(
                    "YAML alias refers to a node that contains it",
                    file=file,
                    line=child.start_mark.line + 1,
                    hint="a Kubernetes object cannot contain itself; replace the alias",
                )
            else:
                aliases += 1
                if aliases > _MAX_ALIASES:
                    raise _alias_bomb(file, line, f"uses more than {_MAX_ALIASES} aliases")
            total += known
            if total > _MAX_EXPANDED_NODES:
                raise _alias_bomb(file, line, f"expands to more than {_MAX_EXPANDED_NODES} nodes")
        return total

    if not isinstance(root, ScalarNode):
        expanded_size(root)


def _alias_bomb(file: str, line: int, problem: str) -> RenderError:
    return RenderError(
        f"YAML document {problem}, which looks like an alias bomb",
        file=file,
        line=line,
        hint="write the repeated parts out, or use fewer anchors and aliases",
    )


def _construct(loader: _Loader, node: Node) -> object:
    """The Python value of a composed node, as SafeLoader builds it, several times faster.

    Plain strings, mappings (merge keys included) and sequences are built here; other tags go to
    SafeConstructor so values keep its semantics. Each use of an alias is built afresh, so no two
    places in the result share a mutable dict or list that a later edit could change at once.
    """
    tag = node.tag
    if isinstance(node, ScalarNode):
        if tag == _STR:
            return node.value
        constructor = _SCALARS.get(tag)
        if constructor is not None:
            return _checked(constructor, loader, node)
    elif isinstance(node, MappingNode) and tag == _MAP:
        return _construct_mapping(loader, node)
    elif isinstance(node, SequenceNode) and tag == _SEQ:
        return [_construct(loader, item) for item in node.value]
    return _checked(_Loader.construct_document, loader, node)


def _checked(constructor: Any, loader: _Loader, node: Node) -> object:
    """``constructor(loader, node)``, its failure on a value that does not fit an explicit tag
    (``!!int abc``) turned into a YAML error at the node; Python's own message quotes the
    value."""
    try:
        return constructor(loader, node)
    except (ValueError, KeyError, TypeError, OverflowError) as e:
        short = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise ConstructorError(
            None, None, f"the value is not a valid {short}", node.start_mark
        ) from e


def _construct_mapping(loader: _Loader, node: MappingNode) -> dict[object, object]:
    result: dict[object, object] = {}
    merged: dict[object, object] = {}
    for key_node, value_node in node.value:
        # Nearly every key and many values are plain strings: take them without a call.
        if key_node.tag == _STR and isinstance(key_node, ScalarNode):
            key = key_node.value
        elif key_node.tag == _MERGE:
            _merge(loader, node, value_node, merged)
            continue
        else:
            key = key_node.value if key_node.tag == _VALUE else _construct(loader, key_node)
            try:
                hash(key)
            except TypeError as e:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found unhashable key",
                    key_node.start_mark,
                ) from e
        if value_node.tag == _STR and isinstance(value_node, ScalarNode):
            result[key] = value_node.value
        else:
            result[key] = _construct(loader, value_node)
    if merged:
        merged.update(result)
        return merged
    return result


def _merge(
    loader: _Loader, node: MappingNode, value_node: Node, into: dict[object, object]
) -> None:
    """Apply a ``<<`` merge key as SafeConstructor does: the first source to set a key wins."""
    sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
    for source in sources:
        if not isinstance(source, MappingNode):
            raise ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"expected mappings to merge, but found a {_node_kind(source)}",
                source.start_mark,
            )
        for key, value in _construct_mapping(loader, source).items():
            into.setdefault(key, value)


def _node_kind(node: Node) -> str:
    return "sequence" if isinstance(node, SequenceNode) else "scalar"


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
