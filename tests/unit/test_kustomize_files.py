"""What a Kustomize app reads, found statically: its inputs for the render cache, and the
entries refused before kustomize runs (paths out of the repository, remote bases, loops)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pygit2
import pytest

from tether.api.source import KustomizeSource, Source
from tether.errors import RenderError
from tether.render.kustomize import KustomizeRenderer, kustomize_error, uses_helm_charts
from tether.render.kustomize_files import DiskView, is_remote, walk
from tether.source.view import GitTreeView

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kustomize"


class DictView:
    """A repository at one commit as a dict of files (the RepoView protocol)."""

    def __init__(self, files: Mapping[str, str]) -> None:
        self.files = {path: text.encode() for path, text in files.items()}

    def read(self, path: str) -> bytes | None:
        return self.files.get(path)

    def is_dir(self, path: str) -> bool:
        return path == "" or any(name.startswith(path + "/") for name in self.files)

    def listdir(self, path: str) -> list[str]:
        prefix = path + "/" if path else ""
        return sorted(
            {name[len(prefix) :].split("/")[0] for name in self.files if name.startswith(prefix)}
        )

    def object_id(self, path: str) -> str | None:
        if path in self.files:
            return hashlib.sha1(self.files[path]).hexdigest()
        if not self.is_dir(path):
            return None
        prefix = path + "/" if path else ""
        under = sorted((n, c) for n, c in self.files.items() if n.startswith(prefix))
        return hashlib.sha1(repr(under).encode()).hexdigest()


def view_of(directory: Path, under: str = "") -> DictView:
    files: dict[str, str] = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            rel = path.relative_to(directory).as_posix()
            files[f"{under}/{rel}" if under else rel] = path.read_text()
    return DictView(files)


def inputs(files: Mapping[str, str], path: str, **overrides: object) -> list[str] | None:
    source = Source(repo_url="https://git.example/repo.git", path=path)
    if overrides:
        source.kustomize = KustomizeSource(**overrides)  # type: ignore[arg-type]
    return KustomizeRenderer().inputs(DictView(files), source, path)


def refusal(files: Mapping[str, str], path: str) -> RenderError:
    with pytest.raises(RenderError) as caught:
        walk(DictView(files), path)
    return caught.value


CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"


# --- inputs --------------------------------------------------------------------------------------


def test_inputs_of_a_single_directory_app_are_that_directory() -> None:
    view = view_of(FIXTURES / "guestbook", "apps/guestbook")
    source = Source(repo_url="x", path="apps/guestbook")
    assert KustomizeRenderer().inputs(view, source, "apps/guestbook") == ["apps/guestbook"]


def test_inputs_of_an_overlay_are_it_its_base_and_its_component() -> None:
    view = view_of(FIXTURES / "layered")
    source = Source(repo_url="x", path="overlays/prod")
    assert KustomizeRenderer().inputs(view, source, "overlays/prod") == [
        "base",
        "components/monitoring",
        "overlays/prod",
    ]
    dev = Source(repo_url="x", path="overlays/dev")
    assert KustomizeRenderer().inputs(view, dev, "overlays/dev") == ["base", "overlays/dev"]


def test_a_commit_touching_one_app_of_many_changes_only_that_apps_inputs() -> None:
    files = {"base/kustomization.yaml": "resources: [cm.yaml]\n", "base/cm.yaml": CM}
    for i in range(20):
        files[f"apps/app{i}/kustomization.yaml"] = f"namePrefix: a{i}-\nresources: [../../base]\n"
    before = DictView(files)
    after = DictView(
        {**files, "apps/app7/kustomization.yaml": "namePrefix: z-\nresources: [../../base]\n"}
    )
    renderer = KustomizeRenderer()

    def key(view: DictView, app: str) -> list[str | None]:
        found = renderer.inputs(view, Source(repo_url="x", path=app), app)
        assert found is not None
        return [view.object_id(p) for p in found]

    changed = [i for i in range(20) if key(before, f"apps/app{i}") != key(after, f"apps/app{i}")]
    assert changed == [7]


def test_inputs_leave_out_paths_already_under_an_input_directory() -> None:
    files = {
        "app/kustomization.yaml": "resources: [sub, cm.yaml]\npatches: [{path: p.yaml}]\n",
        "app/cm.yaml": CM,
        "app/p.yaml": CM,
        "app/sub/kustomization.yaml": "resources: [cm.yaml]\n",
        "app/sub/cm.yaml": CM,
    }
    assert inputs(files, "app") == ["app"]


def test_inputs_of_the_repository_root_is_the_whole_repository() -> None:
    assert inputs({"kustomization.yaml": "resources: [cm.yaml]\n", "cm.yaml": CM}, "") == [""]


def test_inputs_include_components_and_bases_named_by_the_applications_overrides() -> None:
    files = {
        "app/kustomization.yaml": "resources: [cm.yaml]\n",
        "app/cm.yaml": CM,
        "extra/kustomization.yaml": "kind: Component\nresources: [../base]\n",
        "base/kustomization.yaml": "resources: [cm.yaml]\n",
        "base/cm.yaml": CM,
    }
    assert inputs(files, "app", components=["../extra"]) == ["app", "base", "extra"]


def test_a_directory_without_a_kustomization_is_still_an_input() -> None:
    files = {"app/kustomization.yaml": "resources: [../plain]\n", "plain/cm.yaml": CM}
    assert inputs(files, "app") == ["app", "plain"]


@pytest.mark.parametrize(
    "kustomization",
    [
        "resources: [github.com/org/repo/base?ref=v1]\n",
        "resources: ['https://raw.githubusercontent.com/o/r/main/cm.yaml']\n",
        "bases: ['git::https://git.example/repo.git//base?ref=main']\n",
        "helmCharts:\n- name: redis\n  repo: https://charts.example\n  version: 1.0.0\n",
    ],
)
def test_inputs_are_unknown_when_content_comes_from_outside_the_repository(
    kustomization: str,
) -> None:
    assert inputs({"app/kustomization.yaml": kustomization}, "app") is None


def test_inputs_of_helm_charts_committed_under_chart_home_are_known() -> None:
    files = {
        "app/kustomization.yaml": "helmCharts:\n- name: web\n  valuesFile: values.yaml\n",
        "app/values.yaml": "v: 1\n",
        "app/charts/web/Chart.yaml": "name: web\n",
        "vendor/kustomization.yaml": "resources: [../app]\n",
    }
    assert inputs(files, "vendor") == ["app", "vendor"]
    found = walk(DictView(files), "app")
    assert [(e.file, e.value) for e in found.helm] == [("app/kustomization.yaml", "web")]
    assert found.helm_pulls == []


def test_only_apps_inflating_helm_charts_depend_on_the_clusters_facts() -> None:
    files = {
        "plain/kustomization.yaml": "resources: [cm.yaml]\n",
        "plain/cm.yaml": CM,
        "charted/kustomization.yaml": "resources: [../plain]\nhelmCharts:\n- name: web\n",
    }
    view = DictView(files)
    assert not uses_helm_charts(view, Source(repo_url="x", path="plain"), "plain")
    assert uses_helm_charts(view, Source(repo_url="x", path="charted"), "charted")


def test_a_remote_base_may_inflate_charts_so_the_facts_are_read() -> None:
    files = {"app/kustomization.yaml": "resources:\n- https://github.com/example/base?ref=v1\n"}
    assert uses_helm_charts(DictView(files), Source(repo_url="x", path="app"), "app")


def test_a_chart_home_outside_the_repository_is_refused() -> None:
    files = {
        "app/kustomization.yaml": (
            "helmGlobals: {chartHome: ../../charts}\nhelmCharts:\n- name: web\n"
        )
    }
    error = refusal(files, "app")
    assert "helmGlobals.chartHome entry '../../charts' leads outside the repository" in str(error)


@pytest.mark.parametrize(
    "files",
    [
        {"app/cm.yaml": CM},
        {"app/kustomization.yaml": "resources: [.]\n"},
        {"app/kustomization.yaml": "resources: [../../etc]\n"},
        {"app/kustomization.yaml": "resources: [: bad\n"},
    ],
    ids=["no-kustomization", "self-include", "escape", "bad-yaml"],
)
def test_inputs_are_unknown_for_a_tree_that_will_not_render(files: dict[str, str]) -> None:
    assert inputs(files, "app") is None


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        "../../../../var/run/secrets/kubernetes.io/serviceaccount",
        "../../../outside.yaml",
        "../../..",
    ],
)
def test_a_resource_leading_out_of_the_repository_is_refused_naming_file_and_entry(
    entry: str,
) -> None:
    error = refusal({"apps/a/kustomization.yaml": f"resources:\n- {entry}\n"}, "apps/a")
    assert error.file == "apps/a/kustomization.yaml"
    assert f"resources entry {entry!r} leads outside the repository" in error.message


def test_an_absolute_path_is_refused() -> None:
    error = refusal(
        {"apps/a/kustomization.yaml": "bases:\n- /var/run/secrets/kubernetes.io\n"}, "apps/a"
    )
    assert error.file == "apps/a/kustomization.yaml"
    assert "bases entry '/var/run/secrets/kubernetes.io' is an absolute path" in error.message


@pytest.mark.parametrize(
    ("field", "kustomization"),
    [
        ("patches", "patches:\n- path: /etc/passwd\n"),
        ("configMapGenerator.files", "configMapGenerator:\n- name: x\n  files: [k=../../x]\n"),
        ("secretGenerator.envs", "secretGenerator:\n- name: x\n  envs: [../../../.env]\n"),
        ("components", "components: [../../../c]\n"),
        ("crds", "crds: [../../../crd.yaml]\n"),
    ],
)
def test_every_field_naming_a_file_is_confined_to_the_repository(
    field: str, kustomization: str
) -> None:
    error = refusal({"apps/a/kustomization.yaml": kustomization}, "apps/a")
    assert error.file == "apps/a/kustomization.yaml"
    assert error.message.split(": ", 1)[1].startswith(f"{field} entry ")


def test_an_escape_in_a_base_names_the_bases_kustomization() -> None:
    files = {
        "apps/a/kustomization.yaml": "resources: [../../base]\n",
        "base/kustomization.yaml": "resources: [../../secrets]\n",
    }
    assert refusal(files, "apps/a").file == "base/kustomization.yaml"


def test_a_file_outside_the_kustomizations_own_directory_is_refused_as_kustomize_would() -> None:
    files = {
        "apps/a/kustomization.yaml": "patches:\n- path: ../shared/patch.yaml\n",
        "apps/shared/patch.yaml": CM,
    }
    error = refusal(files, "apps/a")
    assert error.file == "apps/a/kustomization.yaml"
    assert "reads apps/shared/patch.yaml, which is not in or below apps/a/" in error.message


def test_a_missing_component_is_named_with_its_entry() -> None:
    files = {"apps/a/kustomization.yaml": "components: [../../components/gone]\n"}
    error = refusal(files, "apps/a")
    assert error.file == "apps/a/kustomization.yaml"
    assert "components entry '../../components/gone' names components/gone, which does not" in (
        error.message
    )


def test_a_kustomization_including_itself_is_refused() -> None:
    error = refusal({"apps/a/kustomization.yaml": "resources:\n- .\n"}, "apps/a")
    assert error.file == "apps/a/kustomization.yaml"
    assert "include itself: apps/a -> apps/a" in error.message


def test_two_directories_including_each_other_are_refused_naming_the_loop() -> None:
    files = {
        "apps/a/kustomization.yaml": "resources: [../b]\n",
        "apps/b/kustomization.yaml": "resources: [../c]\n",
        "apps/c/kustomization.yaml": "resources: [../b]\n",
    }
    error = refusal(files, "apps/a")
    assert error.file == "apps/c/kustomization.yaml"
    assert "apps/b -> apps/c -> apps/b" in error.message


def test_a_base_shared_by_two_branches_is_not_a_loop() -> None:
    files = {
        "app/kustomization.yaml": "resources: [../x, ../y]\n",
        "x/kustomization.yaml": "resources: [../base]\n",
        "y/kustomization.yaml": "resources: [../base]\n",
        "base/kustomization.yaml": "resources: [cm.yaml]\n",
        "base/cm.yaml": CM,
    }
    assert walk(DictView(files), "app").inputs() == ["app", "base", "x", "y"]


def test_a_missing_kustomization_names_the_path() -> None:
    error = refusal({"apps/a/cm.yaml": CM}, "apps/a")
    assert "no kustomization.yaml, kustomization.yml or Kustomization in apps/a" in str(error)


def test_two_kustomization_files_in_one_directory_are_refused() -> None:
    files = {"a/kustomization.yaml": "resources: []\n", "a/Kustomization": "resources: []\n"}
    error = refusal(files, "a")
    assert "a/kustomization.yaml and a/Kustomization are both kustomization files" in str(error)


def test_invalid_yaml_in_a_kustomization_names_file_and_line() -> None:
    error = refusal({"a/kustomization.yaml": "resources:\n- x.yaml\n  bad: [\n"}, "a")
    assert error.file == "a/kustomization.yaml"
    assert error.line == 3


def test_a_kustomization_that_is_not_a_mapping_is_refused() -> None:
    error = refusal({"a/kustomization.yaml": "- x.yaml\n"}, "a")
    assert "is not a kustomization" in str(error)


def test_inline_patches_are_not_taken_for_file_names() -> None:
    files = {
        "a/kustomization.yaml": (
            "resources: [cm.yaml]\n"
            "patchesStrategicMerge:\n- |\n  apiVersion: v1\n  kind: ConfigMap\n"
            "  metadata: {name: c}\n"
            'patches:\n- patch: \'[{"op": "add", "path": "/data", "value": {}}]\'\n'
            "  target: {kind: ConfigMap}\n"
        ),
        "a/cm.yaml": CM,
    }
    assert walk(DictView(files), "a").inputs() == ["a"]


def test_remote_entries_are_recorded_with_their_field() -> None:
    files = {"a/kustomization.yaml": "resources:\n- cm.yaml\n- github.com/o/r//base?ref=v1\n"}
    found = walk(DictView({**files, "a/cm.yaml": CM}), "a")
    assert [(e.field, e.value) for e in found.remote] == [
        ("resources", "github.com/o/r//base?ref=v1")
    ]


@pytest.mark.parametrize(
    ("value", "remote"),
    [
        ("github.com/org/repo", True),
        ("https://example.com/x.yaml", True),
        ("git::https://example.com/repo.git", True),
        ("git@github.com:org/repo.git", True),
        ("ssh://git@example.com/repo.git", True),
        ("gh:org/repo", True),
        ("file:///etc/kustomize", True),
        ("dev.azure.com/org/_git/repo", True),
        ("example.com/org/repo//base?ref=main", True),
        ("../base", False),
        ("github-apps/base", False),
        ("deployment.yaml", False),
    ],
)
def test_remote_entries_are_told_from_local_paths(value: str, remote: bool) -> None:
    assert is_remote(value) is remote


def test_a_symlink_out_of_the_checkout_is_refused_on_disk(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kustomization.yaml").write_text("resources: []\n")
    root = tmp_path / "root"
    (root / "app").mkdir(parents=True)
    (root / "app" / "kustomization.yaml").write_text("resources: [../base]\n")
    os.symlink(outside, root / "base")
    disk = DiskView(root)
    with pytest.raises(RenderError) as caught:
        walk(disk, "app", confine=disk.confine)
    assert caught.value.file == "app/kustomization.yaml"
    assert f"resources entry '../base' is a symlink to {outside}" in caught.value.message


def test_a_kustomization_file_linking_out_of_the_checkout_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("resources: []\n")
    (tmp_path / "root" / "app").mkdir(parents=True)
    os.symlink(secret, tmp_path / "root" / "app" / "kustomization.yaml")
    disk = DiskView(tmp_path / "root")
    with pytest.raises(RenderError) as caught:
        walk(disk, "app", confine=disk.confine)
    assert caught.value.file == "app/kustomization.yaml"
    assert "outside the repository" in caught.value.message


# --- kustomize's own messages --------------------------------------------------------------------


def test_the_load_restrictors_message_names_the_kustomization_and_entry(tmp_path: Path) -> None:
    (tmp_path / "apps" / "a").mkdir(parents=True)
    (tmp_path / "apps" / "a" / "kustomization.yaml").write_text("resources: [link.yaml]\n")
    stderr = (
        f"Error: accumulating resources: accumulation err='accumulating resources from "
        f"'link.yaml': security; file '{tmp_path}/shared/cm.yaml' is not in or below "
        f"'{tmp_path}/apps/a'': must build at directory"
    )
    error = kustomize_error(stderr, tmp_path, "apps/a/kustomization.yaml")
    assert error.file == "apps/a/kustomization.yaml"
    assert "entry 'link.yaml' reads shared/cm.yaml, which is not in or below apps/a/" in str(error)


def test_other_kustomize_failures_keep_its_message_with_repository_paths(tmp_path: Path) -> None:
    stderr = f"Error: must build at directory: not a valid directory: '{tmp_path}/apps/a/gone'\n"
    error = kustomize_error(stderr, tmp_path, "apps/a/kustomization.yaml")
    assert error.file == "apps/a/kustomization.yaml"
    assert "kustomize failed: must build at directory: not a valid directory: 'apps/a/gone'" in (
        error.message
    )
    assert str(tmp_path) not in str(error)


# --- a real git tree -----------------------------------------------------------------------------


def git_view(tmp_path: Path, files: Mapping[str, str], links: Mapping[str, str]) -> Any:
    """The commit of ``files`` and ``links`` in a fresh repository, read without a checkout."""
    repo = pygit2.init_repository(str(tmp_path / "repo.git"), bare=True)
    index = pygit2.Index()
    for path, text in files.items():
        index.add(
            pygit2.IndexEntry(path, repo.create_blob(text.encode()), pygit2.GIT_FILEMODE_BLOB)
        )
    for path, target in links.items():
        index.add(
            pygit2.IndexEntry(path, repo.create_blob(target.encode()), pygit2.GIT_FILEMODE_LINK)
        )
    sig = pygit2.Signature("t", "t@example.com", 1_700_000_000, 0)
    oid = repo.create_commit(None, sig, sig, "c", index.write_tree(repo), [])
    return GitTreeView(repo, str(oid))


def test_a_base_reached_through_a_symlink_is_read_where_it_leads(tmp_path: Path) -> None:
    files = {
        "apps/a/kustomization.yaml": "resources: [../base]\n",
        "shared/base/kustomization.yaml": "resources: [cm.yaml]\n",
        "shared/base/cm.yaml": CM,
    }
    links = {"apps/base": "../shared/base"}
    view = git_view(tmp_path / "1", files, links)
    source = Source(repo_url="x", path="apps/a")
    found = KustomizeRenderer().inputs(view, source, "apps/a")
    assert found == ["apps/a", "apps/base", "shared/base"]
    changed = git_view(tmp_path / "2", {**files, "shared/base/cm.yaml": CM + "data: {}\n"}, links)
    assert [view.object_id(p) for p in found] != [changed.object_id(p) for p in found]
