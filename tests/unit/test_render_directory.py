"""The directory renderer: which files are read, how they become manifests, what is refused."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import pygit2
import pytest

from tether.api.source import DirectorySource, Source
from tether.errors import RenderError, SourceError
from tether.model import Manifest, ResourceKey
from tether.render import (
    DirectoryOptions,
    DirectoryRenderer,
    Renderer,
    Tree,
    render_directory,
)
from tether.render.base import LinkedRepoView, ReadFiles, RenderRequest
from tether.sandbox import Runner
from tether.source.view import GitTreeView

pytestmark = pytest.mark.unit

T = TypeVar("T")


def configmap(name: str, namespace: str = "") -> str:
    ns = f"  namespace: {namespace}\n" if namespace else ""
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{ns}data:\n  k: v\n"


def make_tree(files: Mapping[str, str | bytes], symlinks: dict[str, str] | None = None) -> Tree:
    return Tree(
        files={p: c.encode() if isinstance(c, str) else c for p, c in files.items()},
        symlinks=symlinks or {},
    )


# Every test through these helpers runs three times: on an in-memory tree (render_directory), on
# the same files written out as a checkout (DirectoryRenderer.render, as Jsonnet apps render)
# and on the same files committed to a git repository and read from its objects
# (DirectoryRenderer.render_git, as the engine renders a plain directory), so the paths give
# the same objects and the same errors.
_MODE = ["tree"]


@pytest.fixture(autouse=True, params=["tree", "checkout", "git"])
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    _MODE[0] = request.param
    yield request.param
    _MODE[0] = "tree"


def render_any(
    tree: Tree,
    path: str,
    options: DirectoryOptions,
    *,
    max_file_bytes: int = 1_048_576,
    max_objects: int = 10_000,
) -> list[Manifest]:
    if _MODE[0] == "tree":
        return render_directory(
            tree, path, options, max_file_bytes=max_file_bytes, max_objects=max_objects
        )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, data in tree.files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        for name, target in tree.symlinks.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, root / name)
        source = Source(repo_url="https://git.example.com/r.git", path=path)
        source.directory = DirectorySource(
            recurse=options.recurse, include=options.include, exclude=options.exclude
        )
        renderer = DirectoryRenderer(max_file_bytes=max_file_bytes, max_objects=max_objects)
        if _MODE[0] == "git":
            found = asyncio.run(renderer.render_git(source, path, _committed(root)))
            assert found is not None, "a plain directory renders from git objects"
            return found
        request = RenderRequest(app="apps/test", source=source, root=root, path=path)
        return asyncio.run(renderer.render(request, Runner()))


def _committed(root: Path) -> ReadFiles:
    """The files under ``root`` committed to a repository there, read as the engine reads a
    fetched commit: through a view of it opened in a worker thread."""
    repo = pygit2.init_repository(str(root))
    repo.index.add_all()
    repo.index.write()
    signature = pygit2.Signature("t", "t@example.com")
    tree = repo.index.write_tree()
    sha = str(repo.create_commit("HEAD", signature, signature, "files", tree, []))

    async def read(fn: Callable[[LinkedRepoView], T]) -> T:
        return await asyncio.to_thread(lambda: fn(GitTreeView(pygit2.Repository(str(root)), sha)))

    return read


def render(
    files: Mapping[str, str | bytes],
    path: str = "apps",
    symlinks: dict[str, str] | None = None,
    *,
    recurse: bool = False,
    include: str = "",
    exclude: str = "",
) -> list[Manifest]:
    options = DirectoryOptions(recurse=recurse, include=include, exclude=exclude)
    return render_any(make_tree(files, symlinks), path, options)


def render_error(
    files: Mapping[str, str | bytes],
    path: str = "apps",
    symlinks: dict[str, str] | None = None,
    *,
    include: str = "",
    max_file_bytes: int = 1_048_576,
    max_objects: int = 10_000,
) -> RenderError:
    with pytest.raises(RenderError) as info:
        render_any(
            make_tree(files, symlinks),
            path,
            DirectoryOptions(include=include),
            max_file_bytes=max_file_bytes,
            max_objects=max_objects,
        )
    return info.value


def names(manifests: list[Manifest]) -> list[str]:
    return [m.obj["metadata"]["name"] for m in manifests]


def where(manifests: list[Manifest]) -> list[tuple[str, int]]:
    return [(m.source_file, m.line) for m in manifests]


# --- documents and lines -------------------------------------------------------------------------


def test_multi_document_yaml_records_file_and_start_line_of_each_object() -> None:
    text = "# leading comment\n" + configmap("a") + "---\n" + configmap("b") + "---\n"
    manifests = render({"apps/cms.yaml": text})
    assert names(manifests) == ["a", "b"]
    assert where(manifests) == [("apps/cms.yaml", 2), ("apps/cms.yaml", 9)]
    assert manifests[0].obj == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a"},
        "data": {"k": "v"},
    }
    assert manifests[1].key == ResourceKey("", "ConfigMap", "", "b")


def test_empty_documents_and_comment_only_files_are_skipped() -> None:
    manifests = render(
        {
            "apps/a.yaml": "---\n---\n# nothing here\n---\n" + configmap("a") + "---\n~\n---\n",
            "apps/b.yaml": "# only a comment\n",
            "apps/c.yaml": "",
        }
    )
    assert where(manifests) == [("apps/a.yaml", 5)]


def test_files_are_read_in_path_order_and_only_yaml_yml_json() -> None:
    manifests = render(
        {
            "apps/c.json": json.dumps(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
            ),
            "apps/b.yaml": configmap("b"),
            "apps/a.yml": configmap("a"),
            "apps/README.md": "# not a manifest\n",
            "apps/notes.txt": "kind: nonsense",
            "apps/values.yaml.bak": "{",
            "apps/Chart.YAML": "{",
        }
    )
    assert names(manifests) == ["a", "b", "c"]
    assert [m.source_file for m in manifests] == ["apps/a.yml", "apps/b.yaml", "apps/c.json"]


def test_order_is_stable_whatever_order_the_tree_lists_files_in() -> None:
    files = {f"apps/{n}.yaml": configmap(n) for n in ["m", "b", "z", "a", "k"]}
    forward = render(files)
    backward = render(dict(reversed(list(files.items()))))
    assert names(forward) == names(backward) == ["a", "b", "k", "m", "z"]


def test_objects_without_namespace_are_left_without_one() -> None:
    manifests = render({"apps/a.yaml": configmap("a") + "---\n" + configmap("b", "team")})
    assert "namespace" not in manifests[0].obj["metadata"]
    assert manifests[0].key.namespace == ""
    assert manifests[1].key.namespace == "team"


def test_timestamps_stay_strings_other_yaml_1_1_values_follow_safeloader() -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
        "  annotations:\n    built: 2024-01-31T10:00:00Z\n    day: 2024-01-31\n"
        "    tagged: !!timestamp 2001-12-14\n"
        "data:\n  bare_yes: yes\n  octal: 0755\n  quoted: '0755'\n  nothing: ~\n"
    )
    obj = render({"apps/a.yaml": text})[0].obj
    assert obj["metadata"]["annotations"] == {
        "built": "2024-01-31T10:00:00Z",
        "day": "2024-01-31",
        "tagged": "2001-12-14",
    }
    assert obj["data"] == {"bare_yes": True, "octal": 493, "quoted": "0755", "nothing": None}


def test_merge_keys_and_small_aliases_build_independent_copies() -> None:
    text = (
        "apiVersion: apps/v1\nkind: Deployment\n"
        "metadata:\n  name: web\n  labels: &labels {app: web}\n"
        "spec:\n  selector:\n    matchLabels: *labels\n"
        "  template:\n    metadata:\n      labels:\n        <<: *labels\n        tier: front\n"
    )
    obj = render({"apps/a.yaml": text})[0].obj
    assert obj["spec"]["selector"]["matchLabels"] == {"app": "web"}
    assert obj["spec"]["template"]["metadata"]["labels"] == {"app": "web", "tier": "front"}
    # The sync layer adds labels to metadata; the selector must not change with them.
    obj["metadata"]["labels"]["tether.io/app"] = "x"
    assert obj["spec"]["selector"]["matchLabels"] == {"app": "web"}


# --- which files ---------------------------------------------------------------------------------


TREE = {
    "apps/a.yaml": configmap("a"),
    "apps/b.yaml": configmap("b"),
    "apps/sub/c.yaml": configmap("c"),
    "apps/sub/deeper/d.yaml": configmap("d"),
    "apps/sub/deeper/e.json": json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "e"}}
    ),
    "other/x.yaml": configmap("x"),
    "top.yaml": configmap("top"),
}


def test_without_recurse_only_files_directly_in_the_path_are_read() -> None:
    assert names(render(TREE)) == ["a", "b"]


def test_recurse_reads_every_subdirectory() -> None:
    manifests = render(TREE, recurse=True)
    assert names(manifests) == ["a", "b", "c", "d", "e"]
    assert manifests[3].source_file == "apps/sub/deeper/d.yaml"


@pytest.mark.parametrize("path", ["", ".", "./"])
def test_empty_or_dot_path_means_the_repository_root(path: str) -> None:
    assert names(render(TREE, path=path)) == ["top"]


def test_path_is_normalised() -> None:
    assert where(render(TREE, path="./apps/sub/")) == [("apps/sub/c.yaml", 1)]


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        ("a.yaml", "", ["a"]),
        ("*.yaml", "", ["a", "b"]),  # `*` stays in the top directory
        ("sub/*.yaml", "", ["c"]),
        ("**/*.yaml", "", ["a", "b", "c", "d"]),
        ("sub/**", "", ["c", "d", "e"]),
        ("{a.yaml,sub/deeper/*.json}", "", ["a", "e"]),
        ("*.json", "", []),
        ("", "b.yaml", ["a", "c", "d", "e"]),
        ("", "sub/**", ["a", "b"]),
        ("", "{a.yaml,**/*.json}", ["b", "c", "d"]),
        ("**/*.yaml", "sub/deeper/*", ["a", "b", "c"]),
        ("?.yaml", "[!a].yaml", ["a"]),
    ],
)
def test_include_and_exclude_globs_match_the_path_relative_to_the_app(
    include: str, exclude: str, expected: list[str]
) -> None:
    assert names(render(TREE, recurse=True, include=include, exclude=exclude)) == expected


def test_include_does_not_reach_into_subdirectories_without_recurse() -> None:
    assert names(render(TREE, include="sub/*.yaml")) == []


def test_invalid_glob_is_an_error_naming_the_option() -> None:
    err = render_error(TREE, include="{a.yaml,b.yaml")
    assert "directory.include" in str(err)
    assert "'{a.yaml,b.yaml'" in str(err)
    assert "spec.source.directory.include" in err.hint


def test_path_missing_from_the_tree_names_it_and_points_at_spec_source_path() -> None:
    err = render_error(TREE, path="apps/nope")
    assert "'apps/nope' does not exist" in str(err)
    assert "spec.source.path" in str(err)


def test_path_that_is_a_file_is_an_error() -> None:
    err = render_error(TREE, path="top.yaml")
    assert "'top.yaml' is a file, not a directory" in str(err)
    assert "spec.source.path" in err.hint


@pytest.mark.parametrize("path", ["..", "../elsewhere", "apps/../../x", "/etc"])
def test_path_outside_the_repository_is_an_error(path: str) -> None:
    err = render_error(TREE, path=path)
    assert f"path {path!r} is not inside the repository" in str(err)
    assert "spec.source.path" in err.hint


# --- Lists and JSON ------------------------------------------------------------------------------


def test_kind_list_is_expanded_with_the_line_of_each_item() -> None:
    text = (
        "apiVersion: v1\n"  # 1
        "kind: List\n"
        "items:\n"
        "- apiVersion: v1\n"  # 4
        "  kind: ConfigMap\n"
        "  metadata: {name: one}\n"
        "-   apiVersion: v1\n"  # 7
        "    kind: Secret\n"
        "    metadata: {name: two}\n"
        "---\n" + configmap("three")  # 11
    )
    manifests = render({"apps/list.yaml": text})
    assert names(manifests) == ["one", "two", "three"]
    assert [m.line for m in manifests] == [4, 7, 11]
    assert manifests[1].obj["kind"] == "Secret"


def test_typed_lists_and_nested_lists_are_expanded() -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMapList\nitems:\n"  # 1-3
        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"  # 4
        "- apiVersion: v1\n"  # 5
        "  kind: List\n"
        "  items:\n"
        "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n"  # 8
        "---\n"
        "apiVersion: v1\nkind: List\nitems: []\n"
        "---\n"
        "apiVersion: v1\nkind: List\n"
    )
    manifests = render({"apps/l.yaml": text})
    assert where(manifests) == [("apps/l.yaml", 4), ("apps/l.yaml", 8)]
    assert names(manifests) == ["a", "b"]


def test_a_kind_ending_in_list_without_items_is_an_ordinary_object() -> None:
    text = "apiVersion: example.com/v1\nkind: AccessList\nmetadata: {name: admins}\nspec: {}\n"
    manifests = render({"apps/a.yaml": text})
    assert manifests[0].key == ResourceKey("example.com", "AccessList", "", "admins")


def test_list_items_that_are_not_a_list_are_an_error() -> None:
    err = render_error({"apps/l.yaml": "---\napiVersion: v1\nkind: List\nitems: {a: 1}\n"})
    assert (err.file, err.line) == ("apps/l.yaml", 2)
    assert "List has items that are a mapping, not a list" in str(err)


def test_list_item_that_is_not_an_object_is_reported_at_its_line() -> None:
    text = (
        "apiVersion: v1\nkind: List\nitems:\n- " + configmap("a").replace("\n", "\n  ") + "\n- x\n"
    )
    err = render_error({"apps/l.yaml": text})
    assert str(err).startswith("apps/l.yaml:11: expected a Kubernetes object (a mapping) but")
    assert "found a string" in str(err)


def test_json_file_holds_one_object_at_the_line_it_starts() -> None:
    text = '\n\n  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}\n'
    manifests = render({"apps/j.json": text})
    assert where(manifests) == [("apps/j.json", 3)]
    assert manifests[0].obj["metadata"] == {"name": "j"}


def test_json_list_items_get_their_own_lines() -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"note": "items below", "items": [1, 2]},
        "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}},
        ],
    }
    text = json.dumps(doc, indent=2)
    lines = text.splitlines()
    manifests = render({"apps/list.json": text})
    assert names(manifests) == ["a", "b"]
    for manifest in manifests:
        # Each item's line is the line of its opening brace, just above its apiVersion.
        assert lines[manifest.line - 1].strip() == "{"
        assert lines[manifest.line].strip() == '"apiVersion": "v1",'
    assert manifests[0].line < manifests[1].line


def test_json_that_is_not_one_object_is_an_error() -> None:
    err = render_error({"apps/a.json": '[{"apiVersion": "v1"}]'})
    assert str(err).startswith("apps/a.json:1: expected a Kubernetes object (a mapping)")
    assert "found a list" in str(err)


def test_invalid_json_reports_the_decoder_line() -> None:
    err = render_error({"apps/a.json": '{\n  "apiVersion": "v1",\n  "kind": ConfigMap\n}\n'})
    assert (err.file, err.line) == ("apps/a.json", 3)
    assert str(err).startswith("apps/a.json:3: invalid JSON: Expecting value")


# --- refused content -----------------------------------------------------------------------------


def test_invalid_yaml_reports_the_parser_line() -> None:
    text = configmap("a") + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [b\n"
    err = render_error({"apps/a.yaml": configmap("ok"), "apps/b.yaml": text})
    assert err.file == "apps/b.yaml"
    assert err.line == 12
    assert str(err).startswith("apps/b.yaml:12: invalid YAML:")


def test_invalid_yaml_names_the_problem() -> None:
    err = render_error({"apps/a.yaml": "a: b\n  c: d\n"})
    # libyaml and the pure-Python parser word the end of this message differently.
    assert str(err).startswith("apps/a.yaml:2: invalid YAML: mapping values are not allowed")
    assert "(column 4)" in str(err)
    assert err.hint == "fix the YAML at that line"


def test_unknown_tag_is_refused_as_invalid_yaml() -> None:
    err = render_error({"apps/a.yaml": configmap("a") + "  other: !Ref x\n"})
    assert (err.file, err.line) == ("apps/a.yaml", 7)
    assert "could not determine a constructor for the tag" in str(err)
    assert err.hint == "a value starting with '!' is read by YAML as a tag: put the value in quotes"


CANARY = "CANARY-7f3a9c"
SECRET_HEAD = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n"


@pytest.mark.parametrize(
    "value",
    [
        f"!{CANARY}",
        f"!<{CANARY}> x",
        f"!x!{CANARY} y",
        f"*{CANARY}",
        f"!!int {CANARY}",
        f"!!float {CANARY}",
        f"!!bool {CANARY}",
        f"!!binary {CANARY}x",
        f"!!map {CANARY}",
        f'"\\q{CANARY}"',
    ],
)
def test_errors_in_a_secrets_file_never_quote_its_values(value: str) -> None:
    err = render_error({"apps/secret.yaml": SECRET_HEAD + f"  password: {value}\n"})

    assert (err.file, err.line) == ("apps/secret.yaml", 6)
    assert str(err).startswith("apps/secret.yaml:6: invalid YAML:")
    assert CANARY.lower() not in (str(err) + err.hint).lower()


def test_a_value_that_does_not_fit_its_explicit_tag_is_invalid_yaml() -> None:
    err = render_error({"apps/a.yaml": configmap("a") + "  n: !!int twelve\n"})

    assert (err.file, err.line) == ("apps/a.yaml", 7)
    assert "the value is not a valid !!int" in str(err)


def test_a_tab_or_token_named_by_the_parser_is_still_shown() -> None:
    err = render_error({"apps/a.yaml": "a: b\n\tc: d\n"})

    assert "tab" in str(err) or "'\\t'" in str(err)


def test_control_characters_are_refused_at_their_line() -> None:
    err = render_error({"apps/a.yaml": configmap("a") + "  bad: a\x00b\n"})
    assert (err.file, err.line) == ("apps/a.yaml", 7)
    assert "invalid YAML: character #x0000 is not allowed" in str(err)


def test_file_that_is_not_utf8_is_refused_at_the_bad_line() -> None:
    err = render_error({"apps/a.yaml": configmap("a").encode() + b"  latin1: caf\xe9\n"})
    assert (err.file, err.line) == ("apps/a.yaml", 7)
    assert "not valid UTF-8" in str(err)


def test_utf8_byte_order_mark_is_accepted() -> None:
    manifests = render(
        {
            "apps/a.yaml": b"\xef\xbb\xbf" + configmap("a").encode(),
            "apps/b.json": b'\xef\xbb\xbf{"apiVersion": "v1", "kind": "ConfigMap", '
            b'"metadata": {"name": "b"}}',
        }
    )
    assert names(manifests) == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("- a\n- b\n", "a list"),
        ("just text\n", "a string"),
        ("42\n", "a number"),
    ],
)
def test_document_that_is_not_a_mapping_is_an_error(text: str, found: str) -> None:
    err = render_error({"apps/a.yaml": configmap("a") + "---\n" + text})
    assert (err.file, err.line) == ("apps/a.yaml", 8)
    assert f"expected a Kubernetes object (a mapping) but found {found}" in str(err)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: ConfigMap\nmetadata: {name: a}\n", "ConfigMap object has no apiVersion"),
        ("apiVersion: v1\nmetadata: {name: a}\n", "object has no kind"),
        ("apiVersion: v1\nkind: ''\nmetadata: {name: a}\n", "object has no kind"),
        ("apiVersion: v1\nkind: ConfigMap\n", "ConfigMap object has no metadata"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: []\n", "has metadata that is a list"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "has no metadata.name"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: x}\n",
            "ConfigMap object has no metadata.name",
        ),
    ],
)
def test_object_missing_apiversion_kind_or_name_is_an_error(text: str, message: str) -> None:
    err = render_error({"apps/a.yaml": "# header\n" + text})
    assert (err.file, err.line) == ("apps/a.yaml", 2)
    assert message in str(err)
    assert "every object needs apiVersion, kind and metadata.name" in err.hint


@pytest.mark.parametrize(
    ("value", "found"), [("on", "True, which is a boolean"), ("0x1F", "31, which is a number")]
)
def test_name_that_yaml_reads_as_another_type_asks_for_quotes(value: str, found: str) -> None:
    err = render_error(
        {"apps/a.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {value}\n"}
    )
    assert f"ConfigMap object has metadata.name {found}, not a string" in str(err)
    assert err.hint.startswith("quote the value")


def test_duplicate_object_in_another_file_names_both_places() -> None:
    err = render_error(
        {
            "apps/a.yaml": configmap("other") + "---\n" + configmap("web", "prod"),
            "apps/b.yaml": "\n" + configmap("web", "prod"),
        }
    )
    assert (err.file, err.line) == ("apps/b.yaml", 2)
    assert str(err).startswith(
        "apps/b.yaml:2: ConfigMap prod/web is defined twice: here and at apps/a.yaml:8"
    )


def test_hooks_named_by_generate_name_are_not_duplicates_of_each_other() -> None:
    hook = (
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: {}-\n"
        "  annotations: {{argocd.argoproj.io/hook: {}}}\n"
    )
    text = hook.format("before", "PreSync") + "---\n" + hook.format("after", "PostSync")
    out = render({"apps/hooks.yaml": text})
    assert [m.obj["metadata"]["generateName"] for m in out] == ["before-", "after-"]


def test_duplicate_in_one_file_across_api_versions_of_one_group() -> None:
    deploy = "apiVersion: {}\nkind: Deployment\nmetadata: {{name: web}}\n"
    text = deploy.format("apps/v1") + "---\n" + deploy.format("apps/v1beta1")
    err = render_error({"apps/a.yaml": text})
    assert "Deployment.apps web is defined twice: here and at apps/a.yaml:1" in str(err)
    assert err.line == 5


def test_same_name_in_other_namespace_kind_or_group_is_not_a_duplicate() -> None:
    text = "\n---\n".join(
        [
            configmap("web"),
            configmap("web", "prod"),
            "apiVersion: v1\nkind: Secret\nmetadata: {name: web}",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}",
            "apiVersion: example.com/v1\nkind: Deployment\nmetadata: {name: web}",
        ]
    )
    assert len(render({"apps/a.yaml": text})) == 5


def test_file_over_the_size_limit_is_refused() -> None:
    text = configmap("a") + "  pad: " + "x" * 200 + "\n"
    err = render_error({"apps/a.yaml": configmap("ok"), "apps/big.yaml": text}, max_file_bytes=200)
    assert err.file == "apps/big.yaml"
    assert f"file is {len(text)} bytes, over the limit of 200 bytes" in str(err)
    assert render({"apps/big.yaml": text})  # the default limit lets it through


def test_more_objects_than_the_limit_is_refused() -> None:
    files: dict[str, str | bytes] = {
        "apps/a.yaml": "---\n".join(configmap(f"a{i}") for i in range(3)),
        "apps/b.yaml": "---\n".join(configmap(f"b{i}") for i in range(3)),
    }
    tree = make_tree(files)
    assert len(render_any(tree, "apps", DirectoryOptions(), max_objects=6)) == 6
    err = render_error(files, max_objects=5)
    assert (err.file, err.line) == ("apps/b.yaml", 15)
    assert "more than 5 objects under apps" in str(err)


def test_first_broken_file_in_path_order_aborts_the_render() -> None:
    err = render_error(
        {
            "apps/a.yaml": configmap("fine"),
            "apps/c.yaml": "a: [\n",
            "apps/b.yaml": "kind: ConfigMap\n",
        }
    )
    assert err.file == "apps/b.yaml"


# --- alias bombs ---------------------------------------------------------------------------------


def test_billion_laughs_is_refused_before_it_expands() -> None:
    lines = ['a0: &a0 "lol"']
    for level in range(1, 10):
        refs = ", ".join(f"*a{level - 1}" for _ in range(10))
        lines.append(f"a{level}: &a{level} [{refs}]")
    text = configmap("bomb") + "  " + "\n  ".join(lines) + "\n"
    err = render_error({"apps/bomb.yaml": configmap("fine") + "---\n" + text})
    assert (err.file, err.line) == ("apps/bomb.yaml", 8)
    assert "expands to more than 1000000 nodes" in str(err)
    assert "alias bomb" in str(err)


def test_more_than_a_hundred_aliases_is_refused() -> None:
    refs = "\n".join(f"  k{i}: *v" for i in range(101))
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nx: &v v\ndata:\n" + refs + "\n"
    err = render_error({"apps/a.yaml": text})
    assert (err.file, err.line) == ("apps/a.yaml", 1)
    assert "uses more than 100 aliases" in str(err)


def test_a_hundred_aliases_are_fine() -> None:
    refs = "\n".join(f"  k{i}: *v" for i in range(100))
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nx: &v v\ndata:\n" + refs + "\n"
    obj = render({"apps/a.yaml": text})[0].obj
    assert len(obj["data"]) == 100
    assert set(obj["data"].values()) == {"v"}


def test_alias_to_its_own_ancestor_is_refused() -> None:
    text = configmap("a") + "loop: &l\n  self: *l\n"
    err = render_error({"apps/a.yaml": text})
    assert (err.file, err.line) == ("apps/a.yaml", 7)
    assert "alias refers to a node that contains it" in str(err)


# --- symlinks ------------------------------------------------------------------------------------


def test_symlink_inside_the_repository_is_read_through() -> None:
    manifests = render(
        {"shared/cm.yaml": "\n" + configmap("shared")},
        symlinks={"apps/cm.yaml": "../shared/cm.yaml"},
    )
    assert where(manifests) == [("apps/cm.yaml", 2)]
    assert names(manifests) == ["shared"]


def test_link_to_a_link_and_links_along_the_path_are_resolved() -> None:
    manifests = render(
        {"base/real/cm.yaml": configmap("deep")},
        symlinks={
            "apps/a.yaml": "hop",
            "apps/hop": "../shared/cm.yaml",
            "shared": "base/real",
        },
    )
    assert where(manifests) == [("apps/a.yaml", 1)]
    assert names(manifests) == ["deep"]


def test_two_links_to_one_file_are_a_duplicate() -> None:
    err = render_error(
        {"shared/cm.yaml": configmap("cm")},
        symlinks={"apps/a.yaml": "../shared/cm.yaml", "apps/b.yaml": "a.yaml"},
    )
    assert str(err).startswith(
        "apps/b.yaml:1: ConfigMap cm is defined twice: here and at apps/a.yaml:1"
    )


def test_app_path_that_is_a_symlinked_directory_is_followed() -> None:
    manifests = render(
        {"base/a.yaml": configmap("a")},
        path="envs/prod",
        symlinks={"envs/prod": "../base"},
    )
    assert where(manifests) == [("envs/prod/a.yaml", 1)]


def test_symlink_leading_out_of_the_repository_is_refused() -> None:
    err = render_error(
        {"apps/a.yaml": configmap("a")},
        symlinks={"apps/passwd.yaml": "../../etc/passwd"},
    )
    assert err.file == "apps/passwd.yaml"
    assert "symlink apps/passwd.yaml points to '../../etc/passwd'" in str(err)
    assert "outside the repository" in str(err)


def test_absolute_symlink_is_refused() -> None:
    err = render_error({}, symlinks={"apps/a.yaml": "/etc/passwd"})
    assert str(err).startswith(
        "apps/a.yaml: symlink apps/a.yaml points to '/etc/passwd', which is outside the repository"
    )


def test_symlink_escaping_through_another_link_names_that_link() -> None:
    err = render_error(
        {"apps/x.yaml": configmap("x")},
        symlinks={"apps/a.yaml": "../up/a.yaml", "up": ".."},
    )
    assert err.file == "apps/a.yaml"
    assert "symlink up points to '..'" in str(err)


def test_symlink_loop_is_refused() -> None:
    err = render_error({}, symlinks={"apps/a.yaml": "b.yaml", "apps/b.yaml": "a.yaml"})
    assert err.file == "apps/a.yaml"
    assert "symlink loop: apps/a.yaml -> apps/b.yaml -> apps/a.yaml" in str(err)


def test_dangling_symlink_is_refused() -> None:
    err = render_error({"apps/a.yaml": configmap("a")}, symlinks={"apps/b.yaml": "gone.yaml"})
    assert str(err).startswith(
        "apps/b.yaml: symlink points to apps/gone.yaml, which does not exist in the repository"
    )


# --- scale and plumbing --------------------------------------------------------------------------


def test_a_thousand_objects_render_in_order() -> None:
    files: dict[str, str | bytes] = {
        f"apps/f{f:02}.yaml": "---\n".join(configmap(f"cm-{f:02}-{i:03}") for i in range(100))
        for f in range(10)
    }
    manifests = render(files)
    assert len(manifests) == 1000
    assert names(manifests) == sorted(names(manifests))
    assert manifests[-1].source_file == "apps/f09.yaml"
    assert manifests[-1].line == 99 * 7 + 1


def test_directory_renderer_implements_the_renderer_protocol() -> None:
    renderer: Renderer = DirectoryRenderer()
    assert renderer.type == "Directory"
    assert renderer.version().startswith("gojsonnet ")


def test_tree_from_directory_records_symlinks_and_skips_git(tmp_path: Path) -> None:
    (tmp_path / "apps" / "sub").mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    (tmp_path / ".git" / "objects").mkdir(parents=True)
    (tmp_path / ".git" / "config.yaml").write_text("not: part of the tree\n")
    (tmp_path / "apps" / "a.yaml").write_text(configmap("a"))
    (tmp_path / "apps" / "sub" / "b.yaml").write_text(configmap("b"))
    (tmp_path / "shared" / "s.yaml").write_text(configmap("s"))
    os.symlink("../shared/s.yaml", tmp_path / "apps" / "s.yaml")
    os.symlink("../shared", tmp_path / "apps" / "linked")

    tree = Tree.from_directory(tmp_path)
    assert tree.files == {
        "apps/a.yaml": configmap("a").encode(),
        "apps/sub/b.yaml": configmap("b").encode(),
        "shared/s.yaml": configmap("s").encode(),
    }
    assert tree.symlinks == {"apps/s.yaml": "../shared/s.yaml", "apps/linked": "../shared"}

    manifests = render_directory(tree, "apps", DirectoryOptions(recurse=True))
    assert where(manifests) == [("apps/a.yaml", 1), ("apps/s.yaml", 1), ("apps/sub/b.yaml", 1)]


def test_tree_from_directory_keeps_an_escaping_link_for_the_renderer_to_refuse(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(configmap("secret"))
    repo = tmp_path / "repo"
    (repo / "apps").mkdir(parents=True)
    os.symlink(outside, repo / "apps" / "x.yaml")

    tree = Tree.from_directory(repo)
    assert tree.files == {}
    assert tree.symlinks == {"apps/x.yaml": str(outside)}
    with pytest.raises(RenderError, match="outside the repository"):
        render_directory(tree, "apps", DirectoryOptions())


def test_tree_from_directory_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is not a directory"):
        Tree.from_directory(tmp_path / "missing")
