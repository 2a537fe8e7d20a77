"""Jsonnet in directory sources: programs evaluated in the sandbox, variables, libraries,
imports confined to the repository, errors that name the file and line, runaway programs
stopped by the sandbox's limits, and the inputs the render cache keys on."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pygit2
import pytest

from tether.api.source import JsonnetOptions, JsonnetVar, Source
from tether.errors import RenderError
from tether.model import Manifest
from tether.render import DirectoryOptions, Tree, render_directory
from tether.render.base import RenderRequest
from tether.render.directory import DirectoryRenderer
from tether.render.jsonnet import evaluate_all, imports_of
from tether.sandbox import KIND_MEMORY, KIND_TIMEOUT, Limits, Runner, ToolError
from tether.source.view import GitTreeView

pytestmark = pytest.mark.unit


def cm(name: str, extra: str = "") -> str:
    return f"{{apiVersion: 'v1', kind: 'ConfigMap', metadata: {{name: '{name}'}}{extra}}}"


CM_A = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"


def write(root: Path, files: Mapping[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def source(
    path: str = "app",
    *,
    ext_vars: list[JsonnetVar] | None = None,
    tlas: list[JsonnetVar] | None = None,
    libs: list[str] | None = None,
    recurse: bool = False,
) -> Source:
    s = Source(repo_url="https://git.example.com/r.git", path=path)
    s.directory.recurse = recurse
    s.directory.jsonnet = JsonnetOptions(ext_vars=ext_vars or [], tlas=tlas or [], libs=libs or [])
    return s


async def render(
    root: Path, src: Source | None = None, runner: Runner | None = None
) -> list[Manifest]:
    src = src or source()
    request = RenderRequest(app="apps/test", source=src, root=root, path=src.path)
    return await DirectoryRenderer().render(request, runner or Runner())


async def render_error(root: Path, src: Source | None = None) -> RenderError:
    with pytest.raises(RenderError) as info:
        await render(root, src)
    return info.value


def data_of(manifests: list[Manifest]) -> list[tuple[str, str, object]]:
    return [(m.source_file, m.obj["metadata"]["name"], m.obj.get("data")) for m in manifests]


class DirView:
    """A RepoView over a directory on disk (what git shows at a commit, minus object ids)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, path: str) -> bytes | None:
        full = self.root / path
        return full.read_bytes() if full.is_file() and not full.is_symlink() else None

    def is_dir(self, path: str) -> bool:
        return (self.root / path).is_dir()

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(self.root / path))

    def object_id(self, path: str) -> str | None:
        return None


# --- what a program may evaluate to ---------------------------------------------------------------


async def test_a_directory_of_only_jsonnet_renders_its_objects(tmp_path: Path) -> None:
    # Such a directory used to render as empty, and "sync" nothing.
    write(tmp_path, {"app/one.jsonnet": cm("one")})
    manifests = await render(tmp_path)
    assert data_of(manifests) == [("app/one.jsonnet", "one", None)]


async def test_an_array_a_list_and_lists_inside_an_array_all_become_objects(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {
            "app/a-array.jsonnet": f"[{cm('a1')}, {cm('a2')}]",
            "app/b-list.jsonnet": f"{{apiVersion: 'v1', kind: 'List', items: [{cm('b1')}]}}",
            "app/c-mixed.jsonnet": (
                f"[{{apiVersion: 'v1', kind: 'ConfigMapList', items: [{cm('c1')}, {cm('c2')}]}},"
                f" {cm('c3')}]"
            ),
            "app/d-empty.jsonnet": "[]",
        },
    )
    manifests = await render(tmp_path)
    assert [(f, n) for f, n, _ in data_of(manifests)] == [
        ("app/a-array.jsonnet", "a1"),
        ("app/a-array.jsonnet", "a2"),
        ("app/b-list.jsonnet", "b1"),
        ("app/c-mixed.jsonnet", "c1"),
        ("app/c-mixed.jsonnet", "c2"),
        ("app/c-mixed.jsonnet", "c3"),
    ]


async def test_yaml_and_jsonnet_render_together_in_path_order_and_libsonnet_is_not_rendered(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {
            "app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-yaml}\n",
            "app/b.jsonnet": "local lib = import 'lib.libsonnet'; lib.make('from-jsonnet')",
            "app/lib.libsonnet": "{make(n):: " + cm("' + n + '").replace("'' + n + ''", "n") + "}",
            "app/c.json": json.dumps(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-json"}}
            ),
        },
    )
    manifests = await render(tmp_path)
    assert [(f, n) for f, n, _ in data_of(manifests)] == [
        ("app/a.yaml", "from-yaml"),
        ("app/b.jsonnet", "from-jsonnet"),
        ("app/c.json", "from-json"),
    ]


async def test_an_object_defined_in_yaml_and_in_jsonnet_is_a_duplicate(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same}\n",
            "app/b.jsonnet": cm("same"),
        },
    )
    err = await render_error(tmp_path)
    assert str(err).startswith("app/b.jsonnet: ConfigMap same is defined twice")
    assert "app/a.yaml:1" in str(err)


@pytest.mark.parametrize(
    ("program", "found"),
    [("'text'", "a string"), ("42", "a number"), ("[[" + cm("x") + "]]", "a list")],
)
async def test_a_value_that_is_not_an_object_is_refused(
    tmp_path: Path, program: str, found: str
) -> None:
    write(tmp_path, {"app/x.jsonnet": program})
    err = await render_error(tmp_path)
    assert err.file == "app/x.jsonnet"
    assert f"expected a Kubernetes object (a mapping) but found {found}" in err.message


async def test_an_object_without_a_name_names_the_program(tmp_path: Path) -> None:
    write(tmp_path, {"app/x.jsonnet": "{apiVersion: 'v1', kind: 'ConfigMap', metadata: {}}"})
    err = await render_error(tmp_path)
    assert str(err).startswith("app/x.jsonnet: ConfigMap object has no metadata.name")


async def test_include_exclude_and_recurse_apply_to_programs(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/keep.jsonnet": cm("keep"),
            "app/skip.jsonnet": cm("skip"),
            "app/sub/deep.jsonnet": cm("deep"),
        },
    )
    src = source(recurse=True)
    src.directory.exclude = "skip.jsonnet"
    assert [n for _, n, _ in data_of(await render(tmp_path, src))] == ["keep", "deep"]
    assert [n for _, n, _ in data_of(await render(tmp_path, source()))] == ["keep", "skip"]


# --- variables ------------------------------------------------------------------------------------


async def test_ext_vars_and_tlas_as_strings_and_as_code(tmp_path: Path) -> None:
    program = "function(tier, replicas) " + cm(
        "web",
        ", data: {env: std.extVar('env'), port: std.toString(std.extVar('port')),"
        " tier: tier, replicas: std.toString(replicas + 1)}",
    )
    write(tmp_path, {"app/web.jsonnet": program})
    src = source(
        ext_vars=[JsonnetVar("env", "prod"), JsonnetVar("port", "8000 + 80", code=True)],
        tlas=[JsonnetVar("tier", "frontend"), JsonnetVar("replicas", "2", code=True)],
    )
    (m,) = await render(tmp_path, src)
    assert m.obj["data"] == {"env": "prod", "port": "8080", "tier": "frontend", "replicas": "3"}


async def test_a_missing_ext_var_says_where_to_set_it(tmp_path: Path) -> None:
    write(
        tmp_path, {"app/web.jsonnet": "local x = 1;\n" + cm("web", ", data: {e: std.extVar('e')}")}
    )
    err = await render_error(tmp_path)
    assert (err.file, err.line) == ("app/web.jsonnet", 2)
    assert "jsonnet: RUNTIME ERROR: Undefined external variable: e" in err.message
    assert "extVars" in err.hint


# --- libraries and imports ------------------------------------------------------------------------


async def test_libs_are_searched_after_the_importing_directory_last_listed_first(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {
            "vendor/a/k.libsonnet": "{who: 'a', only_a: 'yes'}",
            "vendor/b/k.libsonnet": "{who: 'b'}",
            "vendor/a/only.libsonnet": "{who: 'only-a'}",
            "app/local.libsonnet": "{who: 'local'}",
            "app/x.jsonnet": (
                "local k = import 'k.libsonnet'; local o = import 'only.libsonnet';"
                " local l = import 'local.libsonnet';"
                + cm("x", ", data: {k: k.who, o: o.who, l: l.who}")
            ),
        },
    )
    src = source(libs=["vendor/a", "vendor/b"])
    (m,) = await render(tmp_path, src)
    assert m.obj["data"] == {"k": "b", "o": "only-a", "l": "local"}


@pytest.mark.parametrize(
    "statement",
    [
        "import '../../outside.libsonnet'",
        "importstr '../../outside.libsonnet'",
        "importbin '../../outside.libsonnet'",
        "import '/etc/hostname'",
    ],
)
async def test_an_import_that_leaves_the_repository_is_refused(
    tmp_path: Path, statement: str
) -> None:
    (tmp_path / "outside.libsonnet").write_text("{secret: 'x'}")
    # Jsonnet is lazy: the import is used, or it would never be read.
    program = f"local o = {statement};\n" + cm("x", ", data: {o: std.toString(o)}")
    root = write(tmp_path / "repo", {"app/x.jsonnet": program})
    err = await render_error(root)
    assert err.file == "app/x.jsonnet"
    assert "outside the repository" in err.message
    assert "secret" not in str(err)


async def test_an_import_through_a_symlink_out_of_the_repository_is_refused(
    tmp_path: Path,
) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "o.libsonnet").write_text("{v: 'outside'}")
    root = write(tmp_path / "repo", {"app/x.jsonnet": "(import 'link/o.libsonnet') + " + cm("x")})
    os.symlink(tmp_path / "outside", root / "app" / "link")
    err = await render_error(root)
    assert err.file == "app/x.jsonnet"
    assert "outside the repository" in err.message


@pytest.mark.parametrize("lib", ["..", "../other", "/usr/share", "vendor/../../x"])
async def test_a_library_path_outside_the_repository_is_refused(tmp_path: Path, lib: str) -> None:
    write(tmp_path, {"app/x.jsonnet": cm("x")})
    err = await render_error(tmp_path, source(libs=[lib]))
    assert err.file == lib
    assert "Jsonnet library path" in err.message and "outside the repository" in err.message


async def test_a_library_path_that_is_a_link_out_of_the_repository_is_refused(
    tmp_path: Path,
) -> None:
    root = write(tmp_path / "repo", {"app/x.jsonnet": cm("x")})
    os.symlink("/usr/share", root / "vendor")
    err = await render_error(root, source(libs=["vendor"]))
    assert err.file == "vendor" and "outside the repository" in err.message


async def test_a_missing_import_names_where_it_was_looked_for(tmp_path: Path) -> None:
    write(tmp_path, {"app/x.jsonnet": "local m = import 'missing.libsonnet';\n" + cm("x") + " + m"})
    err = await render_error(tmp_path, source(libs=["vendor"]))
    assert err.file == "app/x.jsonnet"
    assert "import 'missing.libsonnet' not found (looked in app, vendor)" in err.message
    assert "jsonnet.libs" in err.hint


# --- errors ---------------------------------------------------------------------------------------


async def test_a_syntax_error_names_the_tool_the_file_and_the_line(tmp_path: Path) -> None:
    write(tmp_path, {"app/bad.jsonnet": "{\n  apiVersion: 'v1',\n  kind: 'ConfigMap' +,\n}\n"})
    err = await render_error(tmp_path)
    assert (err.file, err.line) == ("app/bad.jsonnet", 3)
    assert err.message.startswith("app/bad.jsonnet:3: jsonnet: ")
    assert "while parsing" in err.message


async def test_a_syntax_error_does_not_quote_the_line(tmp_path: Path) -> None:
    write(tmp_path, {"app/s.jsonnet": "{\n  stringData: {password: 'hunter2' +},\n}\n"})
    err = await render_error(tmp_path)
    assert (err.file, err.line) == ("app/s.jsonnet", 2)
    assert "hunter2" not in str(err)


async def test_a_runtime_error_in_a_library_names_the_library(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "lib/util.libsonnet": "{\n  check(x)::\n    error 'replicas must be positive',\n}\n",
            "app/x.jsonnet": "local u = import 'util.libsonnet';\n" + cm("x", ", data: u.check(0)"),
        },
    )
    err = await render_error(tmp_path, source(libs=["lib"]))
    assert (err.file, err.line) == ("lib/util.libsonnet", 3)
    assert "RUNTIME ERROR: replicas must be positive" in err.message


async def test_a_long_trace_is_cut_to_its_first_lines(tmp_path: Path) -> None:
    program = "local f(n) = if n == 0 then error 'deep' else f(n - 1);\n{ x: f(10000) }"
    write(tmp_path, {"app/deep.jsonnet": program})
    err = await render_error(tmp_path)
    assert "max stack frames exceeded" in err.message
    assert len(err.message.splitlines()) <= 12


async def test_a_runaway_program_is_killed_by_the_sandbox_timeout(tmp_path: Path) -> None:
    # Ten billion additions: it would run for hours, in little memory.
    program = (
        "local inner(a, i) = a + std.foldl(function(b, j) b + j, std.range(1, 100000), 0);\n"
        "{ x: std.foldl(inner, std.range(1, 100000), 0) }"
    )
    write(tmp_path, {"app/loop.jsonnet": program})
    runner = Runner(limits=Limits(timeout=3))
    with pytest.raises(ToolError) as info:
        await render(tmp_path, runner=runner)
    assert info.value.tool == "jsonnet" and info.value.kind == KIND_TIMEOUT


async def test_a_crash_of_the_evaluator_is_reported_in_a_few_lines(tmp_path: Path) -> None:
    # Deep tail calls overflow the Go stack; the runtime prints a trace of a million frames.
    program = "local f(n) = if n == 0 then 0 else f(n - 1) tailstrict;\n{ x: f(1e8) }"
    write(tmp_path, {"app/deep.jsonnet": program})
    with pytest.raises(ToolError) as info:
        await render(tmp_path, runner=Runner(limits=Limits(timeout=120, memory_bytes=512 << 20)))
    assert info.value.tool == "jsonnet"
    assert "stack overflow" in info.value.message or "out of memory" in info.value.message
    assert len(str(info.value)) < 1000


async def test_a_program_that_allocates_without_bound_is_stopped_by_the_memory_limit(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {"app/big.jsonnet": "{ x: std.length(std.makeArray(1e9, function(i) [i, i, i])) }"},
    )
    runner = Runner(limits=Limits(timeout=120, memory_bytes=256 * 1024 * 1024))
    with pytest.raises(ToolError) as info:
        await render(tmp_path, runner=runner)
    assert info.value.tool == "jsonnet" and info.value.kind == KIND_MEMORY
    assert "out of memory" in info.value.message


# --- plain directories: what has not changed ------------------------------------------------------


async def test_a_directory_with_no_manifests_renders_empty(tmp_path: Path) -> None:
    # An empty render applies nothing; the sync layer refuses to prune everything unless the
    # Application allows an empty app (syncPolicy.automated.allowEmpty).
    write(tmp_path, {"app/README.md": "docs only\n", "app/lib.libsonnet": "{}"})
    assert await render(tmp_path) == []


async def test_the_checkout_renderer_refuses_links_out_of_the_root(tmp_path: Path) -> None:
    (tmp_path / "outside.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n")
    root = write(
        tmp_path / "repo", {"app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"}
    )
    os.symlink(tmp_path / "outside.yaml", root / "app" / "b.yaml")
    err = await render_error(root)
    assert err.file == "app/b.yaml" and "outside the repository" in err.message
    os.remove(root / "app" / "b.yaml")
    os.symlink("../../outside.yaml", root / "app" / "b.yaml")
    assert "outside the repository" in (await render_error(root)).message


async def test_the_checkout_renderer_follows_links_inside_the_repository(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "shared/s.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n",
            "shared/p.jsonnet": cm("p"),
            "app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
        },
    )
    os.symlink("../shared/s.yaml", root / "app" / "s.yaml")
    os.symlink("../shared/p.jsonnet", root / "app" / "p.jsonnet")
    os.symlink("../shared", root / "app" / "linked")
    manifests = await render(root, source(recurse=True))
    assert [(f, n) for f, n, _ in data_of(manifests)] == [
        ("app/a.yaml", "a"),
        ("app/p.jsonnet", "p"),
        ("app/s.yaml", "s"),
    ]


async def test_the_checkout_renderer_refuses_an_oversized_file_before_reading_it(
    tmp_path: Path,
) -> None:
    write(tmp_path, {"app/big.yaml": b"#" * 2048})
    request = RenderRequest(app="a/b", source=source(), root=tmp_path, path="app")
    with pytest.raises(RenderError, match="file is 2048 bytes, over the limit of 1024"):
        await DirectoryRenderer(max_file_bytes=1024).render(request, Runner())


@pytest.mark.parametrize(
    ("path", "problem"), [("nope", "does not exist"), ("app/a.yaml", "is a file")]
)
async def test_the_checkout_renderer_names_a_bad_app_path(
    tmp_path: Path, path: str, problem: str
) -> None:
    write(tmp_path, {"app/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"})
    err = await render_error(tmp_path, source(path))
    assert problem in err.message


def test_an_in_memory_tree_with_a_program_is_refused_rather_than_read_as_empty() -> None:
    tree = Tree(files={"app/x.jsonnet": cm("x").encode()})
    with pytest.raises(RenderError) as info:
        render_directory(tree, "app", DirectoryOptions())
    assert info.value.file == "app/x.jsonnet"
    assert "Jsonnet program" in info.value.message


# --- detection and inputs -------------------------------------------------------------------------


def test_detected_type_is_jsonnet_when_a_program_is_present(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "plain/a.yaml": "x: 1\n",
            "plain/lib.libsonnet": "{}",
            "js/a.jsonnet": "{}",
            "deep/sub/a.jsonnet": "{}",
        },
    )
    view, renderer = DirView(tmp_path), DirectoryRenderer()
    assert renderer.detected_type(view, source("plain"), "plain") == "Directory"
    assert renderer.detected_type(view, source("js"), "js") == "Jsonnet"
    assert renderer.detected_type(view, source("deep"), "deep") == "Directory"
    assert renderer.detected_type(view, source("deep", recurse=True), "deep") == "Jsonnet"


def test_inputs_of_a_plain_directory_are_the_directory(tmp_path: Path) -> None:
    write(tmp_path, {"app/a.yaml": "x: 1\n"})
    assert DirectoryRenderer().inputs(DirView(tmp_path), source(), "app") == ["app"]
    assert DirectoryRenderer().inputs(DirView(tmp_path), source("."), ".") == [""]


def test_inputs_follow_imports_out_of_the_app_and_libraries(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/main.jsonnet": (
                "// import 'commented.libsonnet'\n"
                "local a = import '../common/a.libsonnet';\n"
                'local s = importstr "../common/banner.txt";\n'
                "local k = import 'k.libsonnet';\n"
                "local t = 'not an import \\'../x\\'';\n"
                "{}"
            ),
            "common/a.libsonnet": "(import '../deeper/b.libsonnet') + (import 'c.libsonnet')",
            "common/c.libsonnet": "{}",
            "common/banner.txt": "import 'never-followed.libsonnet'",
            "deeper/b.libsonnet": "{}",
            "vendor/k.libsonnet": "(import '../vendor2/z.libsonnet')",
            "vendor2/z.libsonnet": "{}",
            "unrelated/u.libsonnet": "{}",
        },
    )
    inputs = DirectoryRenderer().inputs(DirView(tmp_path), source(libs=["vendor"]), "app")
    assert inputs == [
        "app",
        "common/a.libsonnet",
        "common/banner.txt",
        "common/c.libsonnet",
        "deeper/b.libsonnet",
        "vendor",
        "vendor2/z.libsonnet",
    ]


def test_inputs_are_unknown_when_an_import_cannot_be_found(tmp_path: Path) -> None:
    write(tmp_path, {"app/main.jsonnet": "import 'nowhere.libsonnet'"})
    assert DirectoryRenderer().inputs(DirView(tmp_path), source(), "app") is None
    write(tmp_path, {"app/main.jsonnet": "import '/abs/path.libsonnet'"})
    assert DirectoryRenderer().inputs(DirView(tmp_path), source(), "app") is None


def test_imports_of_skips_strings_comments_and_text_blocks() -> None:
    text = (
        "# import 'hash.libsonnet'\n"
        "/* import 'block.libsonnet' */\n"
        "local banner = |||\n  import 'text-block.libsonnet'\n|||;\n"
        "local color = '#fff';\n"
        "local a = import 'a.libsonnet';\n"
        "local b = importstr @'verbatim''s.txt';\n"
        'local c = importbin "bin\\u0041.dat";\n'
        "local d = import /* why */ 'd.libsonnet';\n"
    )
    assert imports_of(text) == [
        ("import", "a.libsonnet"),
        ("importstr", "verbatim's.txt"),
        ("importbin", "binu0041.dat"),
        ("import", "d.libsonnet"),
    ]


async def test_inputs_scan_agrees_with_what_the_evaluation_read(tmp_path: Path) -> None:
    """The static scan and the real import callback see the same files."""
    files = {
        "app/main.jsonnet": "(import '../common/a.libsonnet') + " + cm("m"),
        "common/a.libsonnet": "{data: {b: importstr 'b.txt', k: (import 'k.libsonnet').k}}",
        "common/b.txt": "hello",
        "vendor/k.libsonnet": "{k: 'v'}",
    }
    write(tmp_path, files)
    src = source(libs=["vendor"])
    inputs = DirectoryRenderer().inputs(DirView(tmp_path), src, "app")
    evaluation = await evaluate_all(tmp_path, ["app/main.jsonnet"], src.directory.jsonnet, Runner())
    assert evaluation.values["app/main.jsonnet"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "m"},
        "data": {"b": "hello", "k": "v"},
    }
    assert sorted(evaluation.read) == ["common/a.libsonnet", "common/b.txt", "vendor/k.libsonnet"]
    assert inputs == ["app", "common/a.libsonnet", "common/b.txt", "vendor"]


def git_view(root: Path) -> GitTreeView:
    """The tree of a real commit of ``root`` (a new git repository), as the engine reads it."""
    for argv in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "c"],
    ):
        subprocess.run(argv, cwd=root, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()
    return GitTreeView(pygit2.Repository(str(root)), head)


def test_inputs_include_what_links_in_the_app_lead_to(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "shared/s.yaml": CM_A,
            "shared/dir/d.yaml": CM_A,
            "app/a.yaml": CM_A,
            "app/sub/x.yaml": CM_A,
            "other/o.yaml": CM_A,
        },
    )
    os.symlink("../shared/s.yaml", tmp_path / "app" / "s.yaml")
    os.symlink("../../shared/dir/d.yaml", tmp_path / "app" / "sub" / "d.yaml")
    os.symlink("a.yaml", tmp_path / "app" / "inside.yaml")
    os.symlink("app", tmp_path / "linked-app")
    view = git_view(tmp_path)
    renderer = DirectoryRenderer()
    assert renderer.inputs(view, source(), "app") == ["app", "shared/s.yaml"]
    assert renderer.inputs(view, source(recurse=True), "app") == [
        "app",
        "shared/dir/d.yaml",
        "shared/s.yaml",
    ]
    # An app path that is itself a link is keyed on both the link and where it leads.
    assert renderer.inputs(view, source("linked-app"), "linked-app") == [
        "linked-app",
        "app",
        "shared/s.yaml",
    ]


def test_inputs_are_unknown_when_a_link_leads_nowhere(tmp_path: Path) -> None:
    write(tmp_path, {"app/a.yaml": CM_A})
    os.symlink("../missing.yaml", tmp_path / "app" / "m.yaml")
    assert DirectoryRenderer().inputs(git_view(tmp_path), source(), "app") is None


async def test_a_program_over_the_size_limit_or_behind_a_dangling_link_is_refused(
    tmp_path: Path,
) -> None:
    write(tmp_path, {"app/big.jsonnet": "{}" + " " * 2048})
    request = RenderRequest(app="a/b", source=source(), root=tmp_path, path="app")
    with pytest.raises(RenderError, match="over the limit of 1024 bytes"):
        await DirectoryRenderer(max_file_bytes=1024).render(request, Runner())
    os.remove(tmp_path / "app" / "big.jsonnet")
    os.symlink("../nowhere.jsonnet", tmp_path / "app" / "gone.jsonnet")
    err = await render_error(tmp_path)
    assert err.file == "app/gone.jsonnet" and "does not exist" in err.message


def test_inputs_follow_a_changed_import_in_a_later_commit(tmp_path: Path) -> None:
    # Scans are remembered by blob id: a changed program is a new blob, scanned afresh.
    files = {"common/a.libsonnet": "{}", "common/b.libsonnet": "{}"}
    first = write(tmp_path / "one", {**files, "app/m.jsonnet": "import '../common/a.libsonnet'"})
    second = write(tmp_path / "two", {**files, "app/m.jsonnet": "import '../common/b.libsonnet'"})
    renderer, one, two = DirectoryRenderer(), git_view(first), git_view(second)
    assert renderer.inputs(one, source(), "app") == ["app", "common/a.libsonnet"]
    assert renderer.inputs(two, source(), "app") == ["app", "common/b.libsonnet"]
    assert renderer.inputs(one, source(), "app") == ["app", "common/a.libsonnet"]
