"""The YAML reader under every render: YAML text into values, safely.

Safe loading only (no Python objects), with what Kubernetes manifests need on top of it:
timestamps stay strings (Kubernetes fields hold text, not dates), alias bombs ("billion
laughs") and self-containing aliases are refused on the composed graph before any value is
built, a value that does not fit an explicit tag is a YAML error at its node, and error
messages never quote the file's text (it may be a Secret). ``tether.render.parse`` turns
the values into objects.
"""

from __future__ import annotations

import re
from itertools import chain
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tether.errors import RenderError

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # PyYAML built without libyaml: same results, several times slower
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

__all__ = ["yaml_documents"]

_MAX_ALIASES = 100
# Kubernetes stores at most 1.5 MiB per object, and every node costs at least a byte or two of
# JSON, so no object the API server would accept expands to more nodes than this.
_MAX_EXPANDED_NODES = 1_000_000

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"


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


def yaml_documents(text: str, file: str) -> list[tuple[object, Node]]:
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
