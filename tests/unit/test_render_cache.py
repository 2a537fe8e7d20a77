"""Detection order and the render cache: keys follow content, never unrelated changes."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import posixpath
from pathlib import Path

import pytest

from tether.api.source import (
    TYPE_DIRECTORY,
    TYPE_HELM,
    TYPE_JSONNET,
    TYPE_KUSTOMIZE,
    HelmSource,
    KustomizeSource,
    Source,
)
from tether.cli.render_cmd import local_checkout
from tether.model import Manifest
from tether.render.cache import RenderCache, RenderInputs, content_ids, render_key
from tether.render.pipeline import RenderContext, render_git_source
from tether.render.registry import detect, repo_path
from tether.sandbox import Runner

pytestmark = pytest.mark.unit


class MemoryView:
    """A RepoView over a dict of files, with git-like ids (a tree's id covers its content)."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = {p: c.encode() for p, c in files.items()}

    def read(self, path: str) -> bytes | None:
        return self.files.get(path)

    def is_dir(self, path: str) -> bool:
        return path == "" or any(p.startswith(path + "/") for p in self.files)

    def listdir(self, path: str) -> list[str]:
        prefix = path + "/" if path else ""
        return sorted({p[len(prefix) :].split("/")[0] for p in self.files if p.startswith(prefix)})

    def object_id(self, path: str) -> str | None:
        if path in self.files:
            return hashlib.sha1(b"blob" + self.files[path]).hexdigest()
        if not self.is_dir(path):
            return None
        parts = [f"{n}:{self.object_id(posixpath.join(path, n))}" for n in self.listdir(path)]
        return hashlib.sha1("tree".join(parts).encode()).hexdigest()


MONOREPO = {
    "apps/a/kustomization.yaml": "resources: [cm.yaml]\n",
    "apps/a/cm.yaml": "kind: ConfigMap\n",
    "apps/b/kustomization.yaml": "resources: [cm.yaml]\n",
    "apps/b/cm.yaml": "kind: ConfigMap\n",
    "apps/c/Chart.yaml": "name: c\n",
    "apps/d/main.jsonnet": "{}\n",
    "apps/d/lib.libsonnet": "{}\n",
    "apps/e/cm.yaml": "kind: ConfigMap\n",
    "apps/f/Kustomization": "resources: []\n",
    "bases/common/kustomization.yaml": "resources: []\n",
}


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("apps/a", TYPE_KUSTOMIZE),
        ("apps/f/", TYPE_KUSTOMIZE),
        ("./apps/c", TYPE_HELM),
        ("apps/d", TYPE_JSONNET),
        ("apps/e", TYPE_DIRECTORY),
        ("apps/missing", TYPE_DIRECTORY),
        (".", TYPE_DIRECTORY),
    ],
)
def test_detection_order(path: str, want: str) -> None:
    assert detect(MemoryView(MONOREPO), Source(REPO, path=path), path) == want


def test_an_explicit_type_or_a_chart_wins() -> None:
    view = MemoryView(MONOREPO)
    assert detect(view, Source(REPO, explicit_type=TYPE_DIRECTORY), "apps/a") == TYPE_DIRECTORY
    # A directory block over Jsonnet programs is the directory renderer, reported as Jsonnet.
    assert detect(view, Source(REPO, explicit_type=TYPE_DIRECTORY), "apps/d") == TYPE_JSONNET
    assert detect(view, Source(REPO, explicit_type=TYPE_HELM), "apps/e") == TYPE_HELM
    assert detect(view, Source(REPO, chart="redis", path=""), "") == TYPE_HELM


def test_jsonnet_in_a_subdirectory_counts_only_with_recurse() -> None:
    view = MemoryView({"app/cm.yaml": "kind: ConfigMap\n", "app/gen/main.jsonnet": "[]\n"})
    plain = Source(REPO, path="app")
    assert detect(view, plain, "app") == TYPE_DIRECTORY
    plain.directory.recurse = True
    assert detect(view, plain, "app") == TYPE_JSONNET


def test_repo_path_is_relative_and_clean() -> None:
    assert [repo_path(p) for p in (".", "", "./a/", "a/b/../c", " x ")] == ["", "", "a", "a/c", "x"]


REPO = "https://git.example.com/mono.git"


def key_of(files: dict[str, str], inputs: list[str] | None, **changes: object) -> str:
    view = MemoryView(files)
    fields: dict[str, object] = {
        "render_type": TYPE_KUSTOMIZE,
        "tool_version": "v5.8.1",
        "source": Source(REPO, path="apps/a", kustomize=KustomizeSource()),
        "path": "apps/a",
        "destination_namespace": "web",
        "release_name": "a",
        "kube_version": "1.20.2",
        "api_versions": ("v1", "apps/v1"),
        "content": tuple(content_ids(inputs, view.object_id)),
    }
    fields.update(changes)
    return render_key(RenderInputs(**fields))  # type: ignore[arg-type]


def test_same_inputs_same_key_and_unrelated_changes_keep_it() -> None:
    inputs = ["apps/a", "bases/common"]
    base = key_of(MONOREPO, inputs)
    assert key_of(dict(MONOREPO), list(reversed(inputs))) == base
    touched_b = {**MONOREPO, "apps/b/cm.yaml": "kind: ConfigMap\ndata: {x: y}\n"}
    assert key_of(touched_b, inputs) == base
    # Where the files come from and which revision was asked for are not output.
    moved = Source("https://mirror.example.com/mono.git", target_revision="v2", path="apps/a")
    moved.kustomize = KustomizeSource()
    assert key_of(MONOREPO, inputs, source=moved) == base


def test_a_read_file_or_any_parameter_changes_the_key() -> None:
    inputs = ["apps/a", "bases/common"]
    base = key_of(MONOREPO, inputs)
    assert key_of({**MONOREPO, "apps/a/cm.yaml": "kind: Secret\n"}, inputs) != base
    assert key_of({**MONOREPO, "bases/common/extra.yaml": "x: 1\n"}, inputs) != base
    prefixed = Source(REPO, path="apps/a", kustomize=KustomizeSource(name_prefix="p-"))
    changed = [
        key_of(MONOREPO, inputs, source=prefixed),
        key_of(MONOREPO, inputs, tool_version="v5.9.0"),
        key_of(MONOREPO, inputs, destination_namespace="other"),
        key_of(MONOREPO, inputs, release_name="b"),
        key_of(MONOREPO, inputs, kube_version="1.21.0"),
        key_of(MONOREPO, inputs, api_versions=("v1",)),
        key_of(MONOREPO, inputs, render_type=TYPE_HELM),
    ]
    assert len({base, *changed}) == len(changed) + 1


def test_without_known_inputs_the_whole_tree_is_the_key() -> None:
    base = key_of(MONOREPO, None)
    assert key_of({**MONOREPO, "apps/b/cm.yaml": "changed\n"}, None) != base


def test_helm_value_files_are_part_of_the_spec_key() -> None:
    one = Source(REPO, path="c", helm=HelmSource(value_files=["a.yaml"]))
    two = Source(REPO, path="c", helm=HelmSource(value_files=["b.yaml"]))
    assert key_of(MONOREPO, ["apps/c"], source=one) != key_of(MONOREPO, ["apps/c"], source=two)


def manifests(n: int) -> list[Manifest]:
    return [Manifest({"kind": "ConfigMap", "metadata": {"name": f"cm{i}"}}) for i in range(n)]


async def test_cache_counts_renders_and_hits_and_is_bounded() -> None:
    cache = RenderCache(size=2)
    calls: list[str] = []

    def render(key: str) -> object:
        async def go() -> list[Manifest]:
            calls.append(key)
            return manifests(1)

        return go

    for key in ("a", "a", "b", "a", "c", "b"):
        await cache.get_or_render(key, render(key))  # type: ignore[arg-type]
    # a, b rendered; a hit; c rendered and evicts b (a was used more recently); b again.
    assert calls == ["a", "b", "c", "b"]
    assert (cache.renders_total, cache.hits_total, len(cache)) == (4, 2, 2)


async def test_size_zero_turns_it_off_and_failures_are_not_kept() -> None:
    off = RenderCache(size=0)
    for _ in range(3):
        await off.get_or_render("k", lambda: _ok())
    assert (off.renders_total, off.hits_total, len(off)) == (3, 0, 0)
    cache = RenderCache()
    with pytest.raises(ValueError, match="broken"):
        await cache.get_or_render("k", _broken)
    assert await cache.get_or_render("k", _ok) == manifests(2)
    assert cache.renders_total == 2


async def test_two_requests_for_one_key_share_one_render() -> None:
    cache = RenderCache()
    started, release = asyncio.Event(), asyncio.Event()

    async def slow() -> list[Manifest]:
        started.set()
        await release.wait()
        return manifests(3)

    first = asyncio.create_task(cache.get_or_render("k", slow))
    await started.wait()
    second = asyncio.create_task(cache.get_or_render("k", _broken))
    await asyncio.sleep(0)  # one turn of the loop: the second request reaches the cache
    release.set()
    assert await first == await second == manifests(3)
    assert (cache.renders_total, cache.hits_total) == (1, 1)


async def _ok() -> list[Manifest]:
    return manifests(2)


async def _broken() -> list[Manifest]:
    raise ValueError("broken")


async def test_the_pipeline_renders_a_directory_once_for_every_app_that_shares_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "app" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
    )
    (tmp_path / "other" / "x.yaml").write_text("x: 1\n")
    checkout = local_checkout(tmp_path)
    cache = RenderCache()
    one = RenderContext(
        app="apps/one",
        destination_namespace="web",
        release_name="one",
        kube_version="1.20.2",
        api_versions=("v1",),
        allow_remote=False,
        runner=Runner(),
        cache=cache,
    )
    # Another app of another name, on a cluster that gained an API: a plain directory does
    # not read either, so the render is shared.
    two = dataclasses.replace(one, app="apps/two", release_name="two", api_versions=("v1", "x/v1"))
    src = Source(REPO, path="app")
    assert (await render_git_source(one, src, checkout, {}))[0] == TYPE_DIRECTORY
    _, shared = await render_git_source(two, src, checkout, {})
    assert [m.obj["metadata"]["name"] for m in shared] == ["a"]
    assert (cache.renders_total, cache.hits_total) == (1, 1)
    (tmp_path / "other" / "x.yaml").write_text("x: 2\n")
    await render_git_source(one, src, checkout, {})
    assert (cache.renders_total, cache.hits_total) == (1, 2)
    (tmp_path / "app" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"
    )
    _, changed = await render_git_source(one, src, checkout, {})
    assert [m.obj["metadata"]["name"] for m in changed] == ["b"]
    assert (cache.renders_total, cache.hits_total) == (2, 2)
