"""The ``tether render`` command: print what a repo path renders to, applying nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import yaml

from tether.cli.common import EXIT_OK, run
from tether.render import DirectoryOptions, Tree, render_directory
from tether.source import GitCache


@click.command("render")
@click.option("--repo", required=True, help="Git URL or a local directory.")
@click.option("--path", "path", default=".", show_default=True, help="Path inside the repo.")
@click.option("--revision", default="HEAD", show_default=True, help="Branch, tag or commit.")
@click.option("--recurse", is_flag=True, help="Include subdirectories.")
@click.option("--include", default="", help="Glob of files to include.")
@click.option("--exclude", default="", help="Glob of files to exclude.")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml")
def render_cmd(
    repo: str, path: str, revision: str, recurse: bool, include: str, exclude: str, output: str
) -> None:
    """Print the manifests a repo path renders to (nothing is applied)."""
    opts = DirectoryOptions(recurse=recurse, include=include, exclude=exclude)

    async def go() -> int:
        local = Path(repo)
        if local.is_dir():
            tree = Tree.from_directory(local)
        else:
            from tether.engine import default_cache_dir

            git = GitCache(default_cache_dir())
            commit = await git.resolve(repo, revision, None)
            await git.fetch(repo, None, commit)
            content = git.read_tree(repo, commit, path)
            tree = Tree(files=content.files, symlinks=content.symlinks)
        manifests = render_directory(tree, path, opts)
        objs = [m.obj for m in manifests]
        if output == "json":
            print(json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}, indent=2))
        else:
            sys.stdout.write(yaml.safe_dump_all(objs, sort_keys=False))
        return EXIT_OK

    run(go())


def register(cli: click.Group) -> None:
    """Adds ``render`` to ``cli`` (the ``tether`` group)."""
    cli.add_command(render_cmd)
