"""What a Helm render reads, named from the repository's files before any checkout."""

from __future__ import annotations

import hashlib

import pytest

from tether.api.source import HelmSource, Source
from tether.render.helm import HelmRenderer, ref_inputs
from tether.render.helm_deps import remote_repositories

pytestmark = pytest.mark.unit


class FilesView:
    """A repository at one commit, as a map of paths to contents (the RepoView contract)."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = {path: text.encode() for path, text in files.items()}

    def read(self, path: str) -> bytes | None:
        return self.files.get(path)

    def is_dir(self, path: str) -> bool:
        return any(name.startswith(path + "/") for name in self.files) if path else True

    def listdir(self, path: str) -> list[str]:
        prefix = path + "/" if path else ""
        return sorted({n[len(prefix) :].split("/")[0] for n in self.files if n.startswith(prefix)})

    def object_id(self, path: str) -> str | None:
        return hashlib.sha1(path.encode()).hexdigest() if path in self.files else None


def dep(name: str, repository: str) -> str:
    return f"- name: {name}\n  version: 0.1.0\n  repository: {repository}\n"


VIEW = FilesView(
    {
        "apps/shop/Chart.yaml": "apiVersion: v2\nname: shop\ndependencies:\n"
        + dep("mid", "file://../../libs/mid")
        + dep("redis", "https://charts.example"),
        "apps/shop/charts/redis-1.0.0.tgz": "",
        "apps/shop/values.yaml": "",
        "apps/shop/values-prod.yaml": "",
        "libs/mid/Chart.yaml": "apiVersion: v2\nname: mid\ndependencies:\n"
        + dep("base", "file://../base"),
        "libs/base/Chart.yaml": "apiVersion: v2\nname: base\n",
        "envs/prod.yaml": "",
        "apps/remote/Chart.yaml": "apiVersion: v2\nname: remote\ndependencies:\n"
        + dep("pg", "oci://registry.example/charts"),
    }
)


def source(*value_files: str) -> Source:
    return Source(repo_url="r", helm=HelmSource(value_files=list(value_files)))


def test_chart_value_files_and_local_dependencies() -> None:
    found = HelmRenderer().inputs(
        VIEW, source("values-prod.yaml", "../../envs/prod.yaml", "$values/x.yaml"), "apps/shop"
    )
    assert found == ["apps/shop", "envs/prod.yaml", "libs/base", "libs/mid"]


def test_files_inside_the_chart_are_not_listed_twice() -> None:
    assert HelmRenderer().inputs(VIEW, source("values-prod.yaml"), "apps/shop/") == [
        "apps/shop",
        "libs/base",
        "libs/mid",
    ]


def test_unknown_when_a_dependency_or_value_file_is_remote() -> None:
    assert HelmRenderer().inputs(VIEW, source(), "apps/remote") is None
    assert HelmRenderer().inputs(VIEW, source("https://example.test/v.yaml"), "apps/shop") is None


def test_paths_out_of_the_repository_are_not_inputs() -> None:
    assert HelmRenderer().inputs(VIEW, source("../../../etc/x.yaml", "/etc/x"), "libs/base") == [
        "libs/base"
    ]


def test_ref_inputs_name_the_files_of_other_sources() -> None:
    src = source("values.yaml", "$values/env/prod.yaml", "$values/./env/common.yaml", "$cfg/a.yaml")
    assert ref_inputs(src) == {"values": ["env/prod.yaml", "env/common.yaml"], "cfg": ["a.yaml"]}


def test_remote_repositories_cover_nested_local_charts() -> None:
    view = FilesView(
        {
            "app/Chart.yaml": "apiVersion: v2\nname: app\ndependencies:\n"
            + dep("lib", "file://../lib")
            + dep("redis", "https://charts.example"),
            "lib/Chart.yaml": "apiVersion: v2\nname: lib\ndependencies:\n"
            + dep("pg", "oci://127.0.0.1:5000/charts")
            + dep("redis", "https://charts.example"),
        }
    )
    assert remote_repositories(view, "app") == [
        "https://charts.example",
        "oci://127.0.0.1:5000/charts",
    ]
    assert remote_repositories(VIEW, "apps/shop") == []
