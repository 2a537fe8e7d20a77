"""Reading a commit's tree without a checkout, and writing it to disk safely (pygit2 objects)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pygit2
import pytest

from tether.errors import SourceError
from tether.source.view import GitTreeView, export_tree, normalize

pytestmark = pytest.mark.unit

FM = pygit2.enums.FileMode
SUBMODULE = "0123456789abcdef0123456789abcdef01234567"


def build_tree(repo: Any, layout: dict[str, Any]) -> pygit2.Oid:
    """A tree from ``{name: bytes | (mode, bytes) | dict | ("link", target) | "submodule"}``."""
    tb = repo.TreeBuilder()
    for name, item in sorted(layout.items()):
        if isinstance(item, dict):
            tb.insert(name, build_tree(repo, item), FM.TREE)
        elif item == "submodule":
            tb.insert(name, pygit2.Oid(hex=SUBMODULE), FM.COMMIT)
        elif isinstance(item, tuple) and item[0] == "link":
            tb.insert(name, repo.create_blob(item[1].encode()), FM.LINK)
        elif isinstance(item, tuple):
            tb.insert(name, repo.create_blob(item[1]), item[0])
        else:
            tb.insert(name, repo.create_blob(item), FM.BLOB)
    oid: pygit2.Oid = tb.write()
    return oid


def commit(repo: Any, tree: pygit2.Oid) -> str:
    sig = pygit2.Signature("t", "t@example.com", 1_700_000_000, 0)
    return str(repo.create_commit(None, sig, sig, "c", tree, []))


LAYOUT: dict[str, Any] = {
    "README.md": b"hello\n",
    "run.sh": (FM.BLOB_EXECUTABLE, b"#!/bin/sh\necho hi\n"),
    "apps": {
        "web": {
            "deploy.yaml": b"kind: Deployment\n",
            "nested": {"deep": {"cm.yaml": b"kind: ConfigMap\n"}},
        },
        "shared": ("link", "web"),
        "cm.yaml": ("link", "web/nested/deep/cm.yaml"),
        "out": ("link", "../../etc/passwd"),
        "loop": ("link", "loop"),
    },
    "vendor": "submodule",
}


@pytest.fixture
def repo(tmp_path: Path) -> Any:
    return pygit2.init_repository(str(tmp_path / "repo.git"), bare=True)


@pytest.fixture
def view(repo: Any) -> GitTreeView:
    return GitTreeView(repo, commit(repo, build_tree(repo, LAYOUT)))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", ""),
        (".", ""),
        ("/", ""),
        ("apps//web/./deploy.yaml", "apps/web/deploy.yaml"),
        ("apps/web/../shared", "apps/shared"),
        ("apps/web/", "apps/web"),
        ("..", None),
        ("apps/../../x", None),
    ],
)
def test_paths_are_normalized(path: str, expected: str | None) -> None:
    assert normalize(path) == expected


def test_read_files_and_directories(view: GitTreeView) -> None:
    assert view.read("README.md") == b"hello\n"
    assert view.read("./apps/web/../web/deploy.yaml") == b"kind: Deployment\n"
    assert view.read("apps/web") is None
    assert view.read("missing.yaml") is None
    assert view.read("../README.md") is None
    assert view.is_dir("") and view.is_dir("apps/web/nested") and view.is_dir("/apps/")
    assert not view.is_dir("README.md") and not view.is_dir("nope")


def test_listdir_names_entries_and_skips_submodules(view: GitTreeView) -> None:
    assert view.listdir("") == ["README.md", "apps", "run.sh"]
    assert view.listdir("apps") == ["cm.yaml", "loop", "out", "shared", "web"]
    assert view.listdir("apps/web/nested/deep") == ["cm.yaml"]
    assert view.listdir("README.md") == []
    assert view.listdir("vendor") == []
    assert not view.exists("vendor")


def test_symlinks_are_not_followed_but_can_be_resolved(view: GitTreeView) -> None:
    assert view.read("apps/cm.yaml") is None
    assert view.is_link("apps/cm.yaml") and not view.is_link("README.md")
    assert view.readlink("apps/cm.yaml") == "web/nested/deep/cm.yaml"
    assert view.readlink("README.md") is None
    # A path through a link to a directory names nothing until it is resolved.
    assert view.read("apps/shared/deploy.yaml") is None
    assert view.is_dir("apps/shared") is False
    assert view.resolve("apps/shared/deploy.yaml") == "apps/web/deploy.yaml"
    assert view.resolve("apps/cm.yaml") == "apps/web/nested/deep/cm.yaml"
    assert view.resolve("apps/out") is None  # leaves the repository
    assert view.resolve("apps/loop") is None
    assert view.resolve("apps/missing") is None
    assert view.resolve("") == ""


def test_object_ids_follow_content(repo: Any, view: GitTreeView) -> None:
    assert view.object_id("") == str(view.tree.id)
    assert view.object_id("README.md") == str(repo.create_blob(b"hello\n"))
    web = view.object_id("apps/web")
    assert web is not None and repo[web].type_str == "tree"
    assert view.object_id("apps/cm.yaml") == str(repo.create_blob(b"web/nested/deep/cm.yaml"))
    assert view.object_id("nope") is None
    assert view.object_id("vendor") is None
    # The same content in another commit has the same ids; a change shows where it is.
    changed = dict(LAYOUT, README=b"x")
    other = GitTreeView(repo, commit(repo, build_tree(repo, changed)))
    assert other.object_id("apps") == view.object_id("apps")
    assert other.object_id("") != view.object_id("")


APPS = [
    "apps/cm.yaml",
    "apps/loop",
    "apps/out",
    "apps/shared",
    "apps/web/deploy.yaml",
    "apps/web/nested/deep/cm.yaml",
]
"""Every file and link under ``apps`` in the fixture repository."""


def test_files_lists_everything_under_a_directory(view: GitTreeView) -> None:
    assert view.files("apps") == APPS
    assert view.files("README.md") == []


def test_a_missing_commit_is_a_source_error(repo: Any) -> None:
    with pytest.raises(SourceError, match="is not in the cache"):
        GitTreeView(repo, "f" * 40)


def test_export_writes_modes_and_links_as_stored(
    repo: Any, view: GitTreeView, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    assert export_tree(repo, view.tree, str(dest)) == 8
    assert (dest / "README.md").read_bytes() == b"hello\n"
    assert (dest / "apps/web/nested/deep/cm.yaml").read_bytes() == b"kind: ConfigMap\n"
    assert os.stat(dest / "run.sh").st_mode & 0o777 == 0o755
    assert os.stat(dest / "README.md").st_mode & 0o777 == 0o644
    assert os.readlink(dest / "apps/shared") == "web"
    assert os.readlink(dest / "apps/out") == "../../etc/passwd"
    assert os.readlink(dest / "apps/loop") == "loop"
    assert not (dest / "vendor").exists()
    found = sorted(
        str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir() or p.is_symlink()
    )
    assert found == ["README.md", *view.files("apps"), "run.sh"]


def test_export_of_some_paths_writes_those_and_the_way_to_them(
    repo: Any, view: GitTreeView, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    assert export_tree(repo, view.tree, str(dest), ["apps/web/nested", "run.sh"]) == 2
    found = sorted(
        str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir() or p.is_symlink()
    )
    assert found == ["apps/web/nested/deep/cm.yaml", "run.sh"]
    assert os.stat(dest / "run.sh").st_mode & 0o777 == 0o755


def test_export_of_the_root_path_writes_everything(
    repo: Any, view: GitTreeView, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    assert export_tree(repo, view.tree, str(dest), ["", "apps"]) == 8


def test_export_refuses_a_directory_that_is_not_empty(
    repo: Any, view: GitTreeView, tmp_path: Path
) -> None:
    (tmp_path / "stale").touch()
    with pytest.raises(OSError, match="not an empty directory"):
        export_tree(repo, view.tree, str(tmp_path))


def _raw_tree(repo: Any, entries: list[tuple[str, str, pygit2.Oid]]) -> Any:
    """A tree object written byte by byte: git's own checks on names and order bypassed."""
    raw = b"".join(f"{mode} {name}".encode() + b"\0" + oid.raw for mode, name, oid in entries)
    return repo[repo.odb.write(pygit2.enums.ObjectType.TREE, raw)]


@pytest.mark.parametrize("name", ["..", ".git", ".GIT", "."])
def test_export_refuses_crafted_names(repo: Any, tmp_path: Path, name: str) -> None:
    blob = repo.create_blob(b"owned\n")
    inner = _raw_tree(repo, [("100644", "x", blob)])
    evil = _raw_tree(repo, [("40000", name, inner.id)])
    dest = tmp_path / "a" / "b"
    dest.mkdir(parents=True)
    with pytest.raises(SourceError, match=f"invalid path '{name}'"):
        export_tree(repo, evil, str(dest))
    assert not (tmp_path / "a" / "x").exists()
    assert list(dest.iterdir()) == []


def test_export_never_writes_through_a_link_of_the_same_name(repo: Any, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    blob = repo.create_blob(b"owned\n")
    link = repo.create_blob(str(outside).encode())
    inner = _raw_tree(repo, [("100644", "x", blob)])
    # A link "d" to a directory outside, then a directory "d" holding a file.
    evil = _raw_tree(repo, [("120000", "d", link), ("40000", "d", inner.id)])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(FileExistsError):
        export_tree(repo, evil, str(dest))
    assert list(outside.iterdir()) == []


def test_export_of_a_file_under_a_link_named_twice(repo: Any, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "x"
    link = repo.create_blob(str(target).encode())
    blob = repo.create_blob(b"owned\n")
    evil = _raw_tree(repo, [("120000", "f", link), ("100644", "f", blob)])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(FileExistsError):
        export_tree(repo, evil, str(dest))
    assert not target.exists()
    assert stat.S_ISLNK(os.lstat(dest / "f").st_mode)


def test_lookups_agree_with_gits_own_lookup_by_path(view: GitTreeView) -> None:
    # The view parses each directory once and looks names up in it; libgit2 looks a whole
    # path up at once. Both must name the same object, asked in any order and twice over
    # (a miss is remembered too).
    paths = [
        *view.files(""),
        "apps",
        "apps/web",
        "apps/web/nested/deep",
        "missing",
        "missing/deeper/file.yaml",
        "apps/shared/deploy.yaml",  # through a link to a directory
        "vendor/anything",  # inside a submodule
        "README.md/x",  # under a file
        "apps/web/nope.yaml",
    ]

    def by_git(path: str) -> str | None:
        try:
            entry = view.tree[path]
        except KeyError:
            return None
        return None if entry.filemode == FM.COMMIT else str(entry.id)

    for path in [*reversed(paths), *paths]:
        assert view.object_id(path) == by_git(path), path


@pytest.mark.parametrize(
    ("only", "written"),
    [
        (["apps/shared/deploy.yaml"], ["apps/shared"]),  # the link on the way, not followed
        (["missing/x", "apps/web/deploy.yaml"], ["apps/web/deploy.yaml"]),
        (["apps", "apps/web"], APPS),
        (["apps/web/nested/deep/cm.yaml", "README.md"], ["README.md", APPS[-1]]),
        (["vendor/x"], []),
    ],
)
def test_export_of_some_paths_looks_them_up_by_name(
    repo: Any, view: GitTreeView, tmp_path: Path, only: list[str], written: list[str]
) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    assert export_tree(repo, view.tree, str(dest), only) == len(written)
    found = sorted(
        str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir() or p.is_symlink()
    )
    assert found == written
    assert not (dest / "missing").exists()
    assert not (dest / "vendor").exists()
