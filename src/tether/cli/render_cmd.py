"""The ``tether render`` command: print what a repository path renders to, applying nothing.

It renders through the engine's own path (detection, registry, sandboxed runner), for a
Git URL or a local directory, and says on stderr which type it detected.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import click
import yaml

from tether.api.source import HelmParameter, HelmSource
from tether.api.source_spec import check_source_path, parse_source
from tether.cli.common import EXIT_OK, run
from tether.errors import SourceError
from tether.render.pipeline import Checkout, RenderContext, render_git_source
from tether.render.registry import repo_path
from tether.sandbox import Runner
from tether.source import GitCache


class LocalView:
    """A :class:`~tether.render.base.RepoView` over a directory on disk (``.git`` hidden)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _at(self, path: str) -> Path:
        return self.root / repo_path(path) if repo_path(path) else self.root

    def read(self, path: str) -> bytes | None:
        p = self._at(path)
        return p.read_bytes() if p.is_file() and not p.is_symlink() else None

    def is_dir(self, path: str) -> bool:
        p = self._at(path)
        return p.is_dir() and not p.is_symlink()

    def listdir(self, path: str) -> list[str]:
        p = self._at(path)
        return sorted(n for n in os.listdir(p) if n != ".git") if self.is_dir(path) else []

    def object_id(self, path: str) -> str | None:
        p = self._at(path)
        if not p.exists():
            return None
        digest = hashlib.sha256()
        for f in sorted(p.rglob("*")) if p.is_dir() else [p]:
            if f.is_file() and ".git" not in f.relative_to(p).parts:
                digest.update(str(f.relative_to(p)).encode() + b"\0" + f.read_bytes())
        return digest.hexdigest()


def local_checkout(root: Path) -> Checkout:
    if not root.is_dir():
        raise SourceError(f"{root} is not a directory", hint="point --repo at a checkout")

    async def export(dest: Path) -> None:
        shutil.copytree(root, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))

    return Checkout(LocalView(root), export, "")


async def git_checkout(url: str, revision: str, cache: Path) -> Checkout:
    git = GitCache(cache)
    commit = await git.resolve(url, revision, None)
    await git.fetch(url, None, commit)

    async def export(dest: Path) -> None:
        await git.export(url, commit, dest)

    return Checkout(git.view(url, commit), export, commit)


@click.command("render")
@click.option("--repo", required=True, help="Git URL or a local directory.")
@click.option("--path", "path", default=".", show_default=True, help="Path inside the repo.")
@click.option("--revision", default="HEAD", show_default=True, help="Branch, tag or commit.")
@click.option("--recurse", is_flag=True, help="Directory: include subdirectories.")
@click.option("--include", default="", help="Directory: glob of files to include.")
@click.option("--exclude", default="", help="Directory: glob of files to exclude.")
@click.option("--namespace", default="", help="Destination namespace.")
@click.option("--release-name", default="release", show_default=True, help="Helm release name.")
@click.option("--values", "value_files", multiple=True, help="Helm: a values file (repeatable).")
@click.option("--set", "params", multiple=True, help="Helm: NAME=VALUE (repeatable).")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml")
def render_cmd(
    repo: str,
    path: str,
    revision: str,
    recurse: bool,
    include: str,
    exclude: str,
    namespace: str,
    release_name: str,
    value_files: tuple[str, ...],
    params: tuple[str, ...],
    output: str,
) -> None:
    """Print the manifests a repo path renders to (nothing is applied).

    The type is detected as the controller detects it (Kustomize, Helm, Jsonnet or a plain
    directory) and printed on stderr."""
    check_source_path(path, "tether render", "--path")
    source = parse_source(
        {
            "repoURL": repo,
            "path": path,
            "directory": {"recurse": recurse, "include": include, "exclude": exclude},
        },
        "tether render",
        "--repo/--path",
    )
    source.explicit_type = ""  # the directory block above only carries the options
    if value_files or params:
        source.helm = HelmSource(
            value_files=list(value_files), parameters=[_param(p) for p in params]
        )

    async def go() -> int:
        local = Path(repo)
        if local.is_dir():
            checkout = local_checkout(local)
        else:
            from tether.desired import default_cache_dir

            checkout = await git_checkout(repo, revision, default_cache_dir())
        ctx = RenderContext(
            app="tether render",
            destination_namespace=namespace,
            release_name=release_name,
            kube_version="",
            api_versions=(),
            allow_remote=False,
            runner=Runner(),
            cache=None,
        )
        render_type, manifests = await render_git_source(ctx, source, checkout, {})
        click.echo(f"rendered as {render_type} ({repo_path(path) or '.'})", err=True)
        objs = [m.obj for m in manifests]
        if output == "json":
            print(json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}, indent=2))
        else:
            sys.stdout.write(yaml.safe_dump_all(objs, sort_keys=False))
        return EXIT_OK

    run(go())


def _param(text: str) -> HelmParameter:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{text!r} is not NAME=VALUE", param_hint="--set")
    return HelmParameter(name=name, value=value)
