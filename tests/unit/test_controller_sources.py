"""Which repositories the controller follows for an app with several sources, the render
flags' sizes, and how several sources are shown."""

from __future__ import annotations

from typing import Any

import pytest

from tether.cli.output import first_source, source_rows
from tether.controller.render_settings import RenderSettings, parse_quantity
from tether.controller.sources import git_urls, has_chart_source, repo_key, source_refs
from tether.model import Obj

pytestmark = pytest.mark.unit

CHART_REPO = "https://git.example.com/platform/charts.git"
VALUES_REPO = "https://git.example.com/teams/values"


def app(spec: dict[str, Any]) -> Obj:
    return {"metadata": {"name": "web", "namespace": "apps"}, "spec": spec}


TWO_GIT = app(
    {
        "sources": [
            {"repoURL": CHART_REPO, "path": "web", "helm": {"valueFiles": ["$values/web.yaml"]}},
            {"repoURL": VALUES_REPO, "targetRevision": "prod", "ref": "values"},
        ]
    }
)


def test_every_source_of_an_app_is_followed_in_order() -> None:
    refs = source_refs(TWO_GIT)
    assert [r.repo_url for r in refs] == [CHART_REPO, VALUES_REPO]
    assert [r.target_revision for r in refs] == ["HEAD", "prod"]
    assert git_urls(TWO_GIT) == [CHART_REPO, VALUES_REPO]


def test_a_single_source_app_is_its_one_repository() -> None:
    obj = app({"source": {"repoURL": CHART_REPO, "path": "x", "targetRevision": "v1"}})
    assert [(r.repo_url, r.target_revision) for r in source_refs(obj)] == [(CHART_REPO, "v1")]


def test_one_repository_spelled_two_ways_in_one_app_counts_once() -> None:
    obj = app(
        {
            "sources": [
                {"repoURL": CHART_REPO, "path": "a"},
                {"repoURL": "https://GIT.example.com/platform/charts/", "path": "b"},
            ]
        }
    )
    assert git_urls(obj) == [CHART_REPO]
    assert repo_key(CHART_REPO) == repo_key("https://git.example.com:443/platform/charts")


def test_a_helm_repository_source_is_not_polled_as_git_but_marks_the_app() -> None:
    obj = app(
        {
            "sources": [
                {
                    "repoURL": "https://charts.example.com",
                    "chart": "redis",
                    "targetRevision": "18.*",
                },
                {"repoURL": VALUES_REPO, "ref": "values"},
            ]
        }
    )
    assert git_urls(obj) == [VALUES_REPO]
    assert has_chart_source(obj)
    assert not has_chart_source(TWO_GIT)


def test_sources_without_a_repository_or_of_the_wrong_shape_are_left_out() -> None:
    obj = app({"sources": [{"path": "x"}, "oops", {"repoURL": VALUES_REPO}]})
    assert git_urls(obj) == [VALUES_REPO]
    assert source_refs(app({"source": "nonsense"})) == []
    assert source_refs({"spec": None}) == []


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2Gi", 2 * 2**30),
        ("256Mi", 256 * 2**20),
        ("512Ki", 512 * 1024),
        ("500M", 500_000_000),
        ("1k", 1000),
        ("1048576", 1048576),
        ("1.5Gi", 3 * 2**29),
    ],
)
def test_sizes_are_read_like_kubernetes_quantities(text: str, size: int) -> None:
    assert parse_quantity(text) == size


@pytest.mark.parametrize("text", ["", "2GB", "lots", "-1Gi", "100m", "0"])
def test_a_size_that_is_not_one_names_the_flag(text: str) -> None:
    with pytest.raises(ValueError, match="--render-memory"):
        parse_quantity(text, "--render-memory")


def test_render_settings_become_the_runners_limits() -> None:
    s = RenderSettings(timeout=30, memory_bytes=2**30, output_bytes=2**20, max_parallel=2)
    lim = s.limits()
    assert (lim.timeout, lim.memory_bytes, lim.output_bytes, lim.network) == (
        30,
        2**30,
        2**20,
        False,
    )
    s.check()
    for bad, flag in (
        (RenderSettings(timeout=0), "--render-timeout"),
        (RenderSettings(max_parallel=0), "--max-parallel-renders"),
        (RenderSettings(cache_size=-1), "--render-cache-size"),
    ):
        with pytest.raises(ValueError, match=flag):
            bad.check()


def test_several_sources_are_shown_one_row_each_with_their_revisions() -> None:
    sha1, sha2 = "a" * 40, "b" * 40
    obj = {
        **TWO_GIT,
        "status": {
            "sync": {"status": "Synced", "revision": sha1, "revisions": [sha1, sha2]},
            "sourceTypes": ["Helm", ""],
        },
    }
    obj["spec"]["sources"][0]["repoURL"] = "https://bob:hunter2@git.example.com/charts.git"
    rows = source_rows(obj)
    assert [[str(c) for c in r] for r in rows] == [
        ["1", "https://***@git.example.com/charts.git", "web", "HEAD", "Helm", sha1[:10]],
        ["2", VALUES_REPO, "$values", "prod", "", sha2[:10]],
    ]
    assert first_source(obj)["path"] == "web"


def test_a_single_source_app_has_no_source_rows() -> None:
    obj = app({"source": {"repoURL": CHART_REPO, "path": "x"}})
    assert source_rows(obj) == []
    assert first_source(obj)["path"] == "x"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--render-memory", "lots"], "--render-memory 'lots' is not a size"),
        (["--render-output-limit", "5GB"], "--render-output-limit '5GB' is not a size"),
        (["--render-timeout", "0s"], "--render-timeout must be more than 0"),
        (["--render-timeout", "soon"], "invalid duration 'soon'"),
    ],
)
def test_a_bad_render_flag_is_refused_before_anything_starts(args: list[str], words: str) -> None:
    from click.testing import CliRunner

    from tether.cli.common import EXIT_ERROR
    from tether.cli.main import cli

    result = CliRunner().invoke(cli, ["controller", "--kubeconfig", "/nonexistent", *args])
    assert result.exit_code == EXIT_ERROR, result.output
    assert words in " ".join(result.output.split())


def test_the_render_flags_are_listed_with_their_defaults() -> None:
    from click.testing import CliRunner

    from tether.cli.main import cli

    text = " ".join(CliRunner().invoke(cli, ["controller", "--help"]).output.split())
    for flag, default in (
        ("--render-timeout", "90s"),
        ("--render-memory", "2Gi"),
        ("--render-output-limit", "256Mi"),
        ("--max-parallel-renders", "4"),
        ("--render-cache-size", "8192"),
    ):
        assert flag in text and f"default: {default}" in text.split(flag, 1)[1][:200]
    assert "--allow-remote-sources" in text


async def test_the_metered_render_cache_counts_renders_by_type_and_hits() -> None:
    from tether import metrics
    from tether.controller.render_metrics import MeteredRenderCache
    from tether.model import Manifest

    def sample(name: str, **labels: str) -> float:
        return metrics.REGISTRY.get_sample_value(name, labels) or 0.0

    renders0 = sample("tether_renders_total", type="Kustomize")
    hits0 = sample("tether_render_cache_hits_total")
    cache = MeteredRenderCache(8)
    done: list[str] = []

    async def render() -> list[Manifest]:
        done.append("x")
        return [Manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})]

    for _ in range(3):
        out = await cache.get_or_render("k", render, render_type="Kustomize")
        assert out[0].obj["metadata"]["name"] == "a"
    assert done == ["x"]
    assert sample("tether_renders_total", type="Kustomize") - renders0 == 1
    assert sample("tether_render_cache_hits_total") - hits0 == 2
    assert cache.hits_total == 2 and cache.renders_total == 1
    assert sample("tether_render_duration_seconds_count", type="Kustomize") >= 1

    off = MeteredRenderCache(0)
    for _ in range(2):
        await off.get_or_render("k", render, render_type="Kustomize")
    assert sample("tether_renders_total", type="Kustomize") - renders0 == 3
    assert sample("tether_render_cache_hits_total") - hits0 == 2


@pytest.mark.parametrize(
    ("url", "revision", "ref", "want"),
    [
        (VALUES_REPO, "HEAD", "refs/heads/feature", True),
        (VALUES_REPO + ".git", "prod", "refs/heads/prod", True),
        ("git@git.example.com:teams/values.git", "refs/heads/prod", "refs/heads/prod", True),
        (VALUES_REPO, "prod", "refs/heads/main", False),
        (VALUES_REPO, "v1.2.0", "refs/tags/v1.2.0", True),
        (VALUES_REPO, "HEAD", "refs/tags/v1.2.0", False),
        (VALUES_REPO, "a" * 40, "refs/heads/main", False),
        (CHART_REPO, "HEAD", "refs/heads/main", False),
        ("http://[oops/x.git", "HEAD", "refs/heads/main", False),
    ],
)
def test_a_push_refreshes_a_source_on_its_repository_and_ref(
    url: str, revision: str, ref: str, want: bool
) -> None:
    from tether.server.webhooks import PushEvent, refreshes

    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else ""
    tag = ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else ""
    event = PushEvent("github", [VALUES_REPO + ".git"], ref, branch, tag, "b" * 40)
    assert refreshes(url, revision, event) is want
