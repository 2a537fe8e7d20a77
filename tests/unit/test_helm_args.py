"""The command lines of a Helm render: flags, values order, parameters, release names, env."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tether.api.source import HelmParameter, HelmSource
from tether.errors import RenderError
from tether.render.helm_args import (
    INLINE_VALUES,
    INLINE_VALUES_OBJECT,
    HelmHome,
    TemplateOptions,
    dependency_build_argv,
    inline_values,
    parameter_args,
    release_name,
    template_argv,
)

pytestmark = pytest.mark.unit


def test_template_argv_orders_values_then_parameters() -> None:
    argv = template_argv(
        "/usr/bin/helm",
        TemplateOptions(
            release="guestbook",
            chart_dir=Path("/r/charts/guestbook"),
            namespace="shop",
            kube_version="1.20.2",
            api_versions=("v1", "apps/v1", "autoscaling/v2beta2"),
            value_files=["/r/a.yaml", "/r/b.yaml", "/tmp/x/inline-values.yaml"],
            parameters=[HelmParameter("image.tag", "1.2"), HelmParameter("port", "80", True)],
        ),
    )
    assert argv == [
        "/usr/bin/helm",
        "template",
        "guestbook",
        "/r/charts/guestbook",
        "--namespace=shop",
        "--kube-version=1.20.2",
        "--api-versions=v1",
        "--api-versions=apps/v1",
        "--api-versions=autoscaling/v2beta2",
        "--include-crds",
        "--values=/r/a.yaml",
        "--values=/r/b.yaml",
        "--values=/tmp/x/inline-values.yaml",
        "--set=image.tag=1.2",
        "--set-string=port=80",
    ]


def test_template_argv_leaves_out_what_is_unset() -> None:
    argv = template_argv(
        "helm", TemplateOptions(release="r", chart_dir=Path("/c"), include_crds=False)
    )
    assert argv == ["helm", "template", "r", "/c"]


def test_a_value_that_looks_like_a_flag_stays_a_value() -> None:
    argv = template_argv(
        "helm",
        TemplateOptions(release="r", chart_dir=Path("/c"), namespace="--kubeconfig=/etc/x"),
    )
    assert "--namespace=--kubeconfig=/etc/x" in argv
    assert "--kubeconfig=/etc/x" not in argv


def test_dependency_build_is_offline_unless_remote() -> None:
    assert dependency_build_argv("helm", Path("/c"), remote=False) == [
        "helm",
        "dependency",
        "build",
        "/c",
        "--skip-refresh",
    ]
    assert dependency_build_argv("helm", Path("/c"), remote=True) == [
        "helm",
        "dependency",
        "build",
        "/c",
    ]
    assert dependency_build_argv("helm", Path("/c"), remote=True, plain_http=True) == [
        "helm",
        "dependency",
        "build",
        "/c",
        "--plain-http",
    ]


def test_parameter_commas_are_escaped_but_lists_are_kept() -> None:
    args = parameter_args(
        [
            HelmParameter("hosts", "a.example,b.example"),
            HelmParameter("already", r"x\,y"),
            HelmParameter("list", "{a,b,c}"),
        ]
    )
    assert args == [
        r"--set=hosts=a.example\,b.example",
        r"--set=already=x\,y",
        "--set=list={a,b,c}",
    ]


@pytest.mark.parametrize("name", ["", "a=b", "a,b"])
def test_a_bad_parameter_name_is_refused(name: str) -> None:
    with pytest.raises(RenderError, match=r"spec\.source\.helm\.parameters") as info:
        parameter_args([HelmParameter(name, "1")])
    assert "not valid" in info.value.message


def test_release_name_defaults_and_is_checked() -> None:
    assert release_name(HelmSource(), "guestbook") == "guestbook"
    assert release_name(HelmSource(release_name="prod-gb"), "guestbook") == "prod-gb"
    with pytest.raises(RenderError, match="releaseName"):
        release_name(HelmSource(release_name="Bad_Name"), "guestbook")
    with pytest.raises(RenderError, match="releaseName"):
        release_name(HelmSource(), "x" * 54)
    with pytest.raises(RenderError, match="no Helm release name"):
        release_name(HelmSource(), "")


def test_values_object_wins_over_values() -> None:
    both = HelmSource(values="a: from-string\n", values_object={"a": "from-object", "n": 3})
    found = inline_values(both)
    assert found is not None
    field, text = found
    assert field == INLINE_VALUES_OBJECT
    assert yaml.safe_load(text) == {"a": "from-object", "n": 3}
    assert json.loads(text) == {"a": "from-object", "n": 3}


def test_values_string_is_used_as_written() -> None:
    found = inline_values(HelmSource(values="replicas: 3\nimage: {tag: '1.0'}\n"))
    assert found == (INLINE_VALUES, "replicas: 3\nimage: {tag: '1.0'}\n")
    assert inline_values(HelmSource(values="  \n")) is None
    assert inline_values(HelmSource()) is None


def test_bad_inline_values_name_the_field_and_line() -> None:
    with pytest.raises(RenderError) as info:
        inline_values(HelmSource(values="a: 1\nb: [\n"))
    assert "spec.source.helm.values is not valid YAML at line" in info.value.message
    with pytest.raises(RenderError, match="not a YAML mapping"):
        inline_values(HelmSource(values="- a\n- b\n"))


def test_helm_home_is_private_and_never_the_users(tmp_path: Path) -> None:
    home = HelmHome.create(tmp_path / "h")
    env = home.env({"HELM_REPOSITORY_CONFIG": "/sandbox/repositories.yaml"})
    assert env["HELM_CACHE_HOME"] == str(tmp_path / "h" / "cache")
    assert env["HELM_CONFIG_HOME"] == str(tmp_path / "h" / "config")
    assert env["HELM_DATA_HOME"] == str(tmp_path / "h" / "data")
    assert env["HOME"] == str(tmp_path / "h" / "home")
    assert env["KUBECONFIG"] == "/dev/null"
    assert env["HELM_REPOSITORY_CONFIG"] == "/sandbox/repositories.yaml"
    for directory in (home.cache, home.config, home.data, home.values, home.home):
        assert directory.is_dir()
        assert directory.stat().st_mode & 0o077 == 0
