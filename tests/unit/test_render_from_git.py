"""A plain directory renders from git objects, with no checkout written; an app that needs a
checkout after all (a Jsonnet program reached through a link) still gets one."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pygit2
import pytest

from tether.api.source import TYPE_DIRECTORY, Source
from tether.model import Manifest
from tether.render.base import LinkedRepoView
from tether.render.pipeline import Checkout, RenderContext, render_git_source
from tether.sandbox import Runner
from tether.source.view import GitTreeView, export_tree

pytestmark = pytest.mark.unit

T = TypeVar("T")


def cm(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


class Repo:
    """Files committed to a real repository; a Checkout of the commit that counts exports."""

    def __init__(self, root: Path, files: dict[str, str], links: dict[str, str]) -> None:
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        for name, target in links.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, root / name)
        self.root = root
        repo = pygit2.init_repository(str(root))
        repo.index.add_all()
        repo.index.write()
        who = pygit2.Signature("t", "t@example.com")
        self.sha = str(repo.create_commit("HEAD", who, who, "c", repo.index.write_tree(), []))
        self.exports = 0
        self.reads = 0

    def checkout(self) -> Checkout:
        async def export(dest: Path) -> None:
            self.exports += 1
            repo = pygit2.Repository(str(self.root))
            dest.mkdir(parents=True)
            export_tree(repo, repo[self.sha].peel(pygit2.Commit).tree, str(dest))

        def read(fn: Callable[[LinkedRepoView], T]) -> Awaitable[T]:
            self.reads += 1
            opened = pygit2.Repository(str(self.root))
            return asyncio.to_thread(lambda: fn(GitTreeView(opened, self.sha)))

        view = GitTreeView(pygit2.Repository(str(self.root)), self.sha)
        return Checkout(view, export, self.sha, read=read)


def context() -> RenderContext:
    return RenderContext(
        app="apps/test",
        destination_namespace="web",
        release_name="test",
        kube_version="1.20.2",
        api_versions=("v1",),
        allow_remote=False,
        runner=Runner(),
        cache=None,
    )


def names(manifests: list[Manifest]) -> list[str]:
    return [m.obj["metadata"]["name"] for m in manifests]


async def test_a_plain_directory_renders_from_git_objects_without_a_checkout(
    tmp_path: Path,
) -> None:
    repo = Repo(
        tmp_path,
        {"app/a.yaml": cm("a"), "app/sub/b.yaml": cm("b"), "shared/c.yaml": cm("c")},
        {"app/c.yaml": "../shared/c.yaml"},
    )
    source = Source("https://git.example.com/r.git", path="app")
    render_type, out = await render_git_source(context(), source, repo.checkout(), {})
    assert render_type == TYPE_DIRECTORY
    assert names(out) == ["a", "c"]
    assert [m.source_file for m in out] == ["app/a.yaml", "app/c.yaml"]
    assert (repo.reads, repo.exports) == (1, 0)


async def test_a_jsonnet_program_behind_a_linked_app_path_is_evaluated_from_a_checkout(
    tmp_path: Path,
) -> None:
    # The app path is a link, so detection (which does not follow it) says Directory; what
    # the link leads to holds a program, which only a checkout can evaluate.
    repo = Repo(
        tmp_path,
        {"real/one.jsonnet": "{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'j'}}"},
        {"app": "real"},
    )
    source = Source("https://git.example.com/r.git", path="app")
    render_type, out = await render_git_source(context(), source, repo.checkout(), {})
    assert render_type == TYPE_DIRECTORY
    assert names(out) == ["j"]
    assert (repo.reads, repo.exports) == (1, 1)
