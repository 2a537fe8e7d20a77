"""What a Helm render may read: value files, the chart directory and file:// dependencies stay
inside the repository (or the ``$ref`` source's checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tether.errors import RenderError
from tether.render.helm_deps import (
    Dependency,
    is_vendored,
    loopback_oci,
    parse_dependencies,
    plan_dependencies,
)
from tether.render.helm_paths import ValueFile, chart_directory, resolve_value_file

pytestmark = pytest.mark.unit

CHART = "apiVersion: v2\nname: {name}\nversion: 0.1.0\n"


def chart(root: Path, path: str, deps: str = "") -> Path:
    directory = root / path
    (directory / "templates").mkdir(parents=True, exist_ok=True)
    (directory / "Chart.yaml").write_text(CHART.format(name=Path(path).name) + deps)
    (directory / "values.yaml").write_text("a: 1\n")
    return directory


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    chart(root, "apps/web")
    (root / "apps/web/values-prod.yaml").write_text("a: 2\n")
    (root / "envs").mkdir()
    (root / "envs/prod.yaml").write_text("a: 3\n")
    (tmp_path / "outside.yaml").write_text("stolen: true\n")
    return root


def resolve(repo: Path, entry: str, **kw: object) -> ValueFile | None:
    options: dict[str, object] = {
        "root": repo,
        "chart_path": "apps/web",
        "refs": {},
        "allow_remote": False,
        "ignore_missing": False,
    }
    options.update(kw)
    return resolve_value_file(entry, **options)  # type: ignore[arg-type]


def test_relative_value_files_start_at_the_chart(repo: Path) -> None:
    found = resolve(repo, "values-prod.yaml")
    assert found == ValueFile(
        str((repo / "apps/web/values-prod.yaml").resolve()), "apps/web/values-prod.yaml"
    )


def test_dot_dot_inside_the_repository_is_fine(repo: Path) -> None:
    found = resolve(repo, "../../envs/prod.yaml")
    assert found is not None
    assert found.shown == "envs/prod.yaml"


def test_dot_dot_out_of_the_repository_is_refused(repo: Path) -> None:
    with pytest.raises(RenderError) as info:
        resolve(repo, "../../../outside.yaml")
    assert info.value.file == "../../../outside.yaml"
    assert "leads outside the repository" in info.value.message


def test_an_absolute_path_is_refused(repo: Path) -> None:
    target = str(repo.parent / "outside.yaml")
    with pytest.raises(RenderError) as info:
        resolve(repo, target)
    assert info.value.file == target
    assert "absolute path" in info.value.message


def test_a_symlink_out_of_the_repository_is_refused(repo: Path) -> None:
    os.symlink(repo.parent / "outside.yaml", repo / "apps/web/linked.yaml")
    with pytest.raises(RenderError) as info:
        resolve(repo, "linked.yaml")
    assert info.value.file == "apps/web/linked.yaml"
    assert "outside the repository" in info.value.message


def test_a_directory_symlink_out_of_the_repository_is_refused(repo: Path) -> None:
    os.symlink("../../..", repo / "apps/web/up")
    with pytest.raises(RenderError, match="outside the repository"):
        resolve(repo, "up/outside.yaml")


def test_a_symlink_inside_the_repository_is_followed(repo: Path) -> None:
    os.symlink("../../envs/prod.yaml", repo / "apps/web/prod-link.yaml")
    found = resolve(repo, "prod-link.yaml")
    assert found is not None
    assert found.arg == str((repo / "envs/prod.yaml").resolve())


def test_a_missing_value_file_is_an_error_unless_ignored(repo: Path) -> None:
    with pytest.raises(RenderError) as info:
        resolve(repo, "values-nope.yaml")
    assert info.value.file == "apps/web/values-nope.yaml"
    assert "ignoreMissingValueFiles" in info.value.hint
    assert resolve(repo, "values-nope.yaml", ignore_missing=True) is None


def test_a_directory_is_not_a_value_file(repo: Path) -> None:
    with pytest.raises(RenderError, match="is a directory"):
        resolve(repo, "templates")


def test_ref_value_files_read_the_other_sources_checkout(repo: Path, tmp_path: Path) -> None:
    values_repo = tmp_path / "values-repo"
    (values_repo / "env").mkdir(parents=True)
    (values_repo / "env/prod.yaml").write_text("a: 9\n")
    found = resolve(repo, "$values/env/prod.yaml", refs={"values": values_repo})
    assert found == ValueFile(
        str((values_repo / "env/prod.yaml").resolve()), "$values/env/prod.yaml"
    )
    with pytest.raises(RenderError, match="leads outside the repository"):
        resolve(repo, "$values/../repo/envs/prod.yaml", refs={"values": values_repo})
    with pytest.raises(RenderError) as info:
        resolve(repo, "$other/env/prod.yaml", refs={"values": values_repo})
    assert "no source of this application has ref: 'other'" in info.value.message
    assert "$values" in info.value.hint


def test_urls_are_refused_unless_remote_is_allowed(repo: Path) -> None:
    url = "https://user:secret@example.test/values.yaml"
    with pytest.raises(RenderError) as info:
        resolve(repo, url)
    assert "remote value files are not allowed" in info.value.message
    assert "secret" not in str(info.value)
    assert info.value.file == "https://example.test/values.yaml"
    assert resolve(repo, url, allow_remote=True) == ValueFile(
        url, "https://example.test/values.yaml"
    )
    with pytest.raises(RenderError, match="scheme 'file' is not allowed"):
        resolve(repo, "file:///etc/passwd", allow_remote=True)


def test_the_chart_directory_must_hold_a_chart(repo: Path) -> None:
    chart_dir, rel = chart_directory(repo, "apps/web/")
    assert (chart_dir, rel) == ((repo / "apps/web").resolve(), "apps/web")
    with pytest.raises(RenderError) as info:
        chart_directory(repo, "envs")
    assert info.value.file == "envs/Chart.yaml"
    with pytest.raises(RenderError, match="does not exist"):
        chart_directory(repo, "apps/api")
    with pytest.raises(RenderError, match="leads outside"):
        chart_directory(repo, "../elsewhere")


def test_a_chart_holding_a_link_out_is_refused(repo: Path) -> None:
    os.symlink(repo.parent / "outside.yaml", repo / "apps/web/templates/secret.yaml")
    with pytest.raises(RenderError) as info:
        chart_directory(repo, "apps/web")
    assert info.value.file == "apps/web/templates/secret.yaml"
    assert "outside the repository" in info.value.message


# --- dependencies ---------------------------------------------------------------------------------


def test_dependencies_are_read_from_chart_yaml_or_requirements() -> None:
    v2 = b"apiVersion: v2\nname: a\ndependencies:\n- {name: b, version: 1.0.0, repository: file://../b}\n"
    assert parse_dependencies(v2, "a/Chart.yaml", None) == [Dependency("b", "1.0.0", "file://../b")]
    v1 = b"apiVersion: v1\nname: a\n"
    req = b"dependencies:\n- {name: redis, version: 1.x, repository: https://charts.example}\n"
    deps = parse_dependencies(v1, "a/Chart.yaml", req)
    assert [(d.name, d.kind) for d in deps] == [("redis", "remote")]
    with pytest.raises(RenderError) as info:
        parse_dependencies(b"name: a\ndependencies: x: y\n", "a/Chart.yaml", None)
    assert info.value.file == "a/Chart.yaml"
    assert info.value.line == 2


def test_vendored_dependencies_are_recognized() -> None:
    dep = Dependency("common", "1.2.3", "https://charts.example")
    assert is_vendored(dep, ["common"])
    assert is_vendored(dep, ["common-1.2.3.tgz"])
    assert not is_vendored(dep, ["common-utils-1.0.0.tgz", "other"])


def test_file_dependencies_are_built_innermost_first(repo: Path) -> None:
    chart(repo, "libs/base")
    chart(
        repo,
        "libs/mid",
        "dependencies:\n- {name: base, version: 0.1.0, repository: file://../base}\n",
    )
    top = chart(
        repo,
        "apps/shop",
        "dependencies:\n- {name: mid, version: 0.1.0, repository: file://../../libs/mid}\n",
    )
    plan = plan_dependencies(top, "apps/shop", repo, allow_remote=False)
    assert [(build.shown, build.remote) for build in plan.builds] == [
        ("libs/mid", False),
        ("apps/shop", False),
    ]


def test_vendored_dependencies_need_no_build(repo: Path) -> None:
    top = chart(
        repo,
        "apps/shop",
        "dependencies:\n- {name: redis, version: 1.0.0, repository: https://charts.example}\n",
    )
    (top / "charts").mkdir()
    (top / "charts/redis-1.0.0.tgz").write_bytes(b"")
    assert plan_dependencies(top, "apps/shop", repo, allow_remote=False).builds == []


def test_a_file_dependency_out_of_the_repository_is_refused(repo: Path) -> None:
    top = chart(
        repo,
        "apps/shop",
        "dependencies:\n- {name: x, version: 0.1.0, repository: file://../../../x}\n",
    )
    with pytest.raises(RenderError) as info:
        plan_dependencies(top, "apps/shop", repo, allow_remote=False)
    assert info.value.file == "apps/shop/Chart.yaml"
    assert "leads outside the repository" in info.value.message


def test_a_file_dependency_without_a_chart_is_refused(repo: Path) -> None:
    top = chart(
        repo,
        "apps/shop",
        "dependencies:\n- {name: env, version: 0.1.0, repository: file://../../envs}\n",
    )
    with pytest.raises(RenderError) as info:
        plan_dependencies(top, "apps/shop", repo, allow_remote=False)
    assert info.value.file == "apps/shop/Chart.yaml"
    assert "holds no Chart.yaml" in info.value.message


def test_a_remote_dependency_is_refused_without_network(repo: Path) -> None:
    top = chart(
        repo,
        "apps/shop",
        "dependencies:\n- {name: redis, version: 17.0.0, repository: oci://registry.example/charts}\n",
    )
    with pytest.raises(RenderError) as info:
        plan_dependencies(top, "apps/shop", repo, allow_remote=False)
    assert info.value.file == "apps/shop/Chart.yaml"
    assert "'redis' comes from oci://registry.example/charts" in info.value.message
    plan = plan_dependencies(top, "apps/shop", repo, allow_remote=True)
    assert [build.repositories for build in plan.builds] == [("oci://registry.example/charts",)]


def test_a_dependency_without_repository_must_be_vendored(repo: Path) -> None:
    top = chart(repo, "apps/shop", "dependencies:\n- {name: lost, version: 1.0.0}\n")
    with pytest.raises(RenderError, match="'lost' has no repository and is not in charts/"):
        plan_dependencies(top, "apps/shop", repo, allow_remote=False)


def test_a_dependency_cycle_is_refused(repo: Path) -> None:
    chart(repo, "libs/a", "dependencies:\n- {name: b, version: 0.1.0, repository: file://../b}\n")
    chart(repo, "libs/b", "dependencies:\n- {name: a, version: 0.1.0, repository: file://../a}\n")
    with pytest.raises(RenderError) as info:
        plan_dependencies(repo / "libs/a", "libs/a", repo, allow_remote=False)
    assert "cycle: libs/a -> libs/b -> libs/a" in info.value.message


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("oci://127.0.0.1:5000/charts", True),
        ("oci://localhost:5000/charts", True),
        ("oci://[::1]:5000/charts", True),
        ("oci://registry.example/charts", False),
        ("https://127.0.0.1:8080/charts", False),
    ],
)
def test_loopback_registries_are_recognized(url: str, loopback: bool) -> None:
    assert loopback_oci(url) is loopback
