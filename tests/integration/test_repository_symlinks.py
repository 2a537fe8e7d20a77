"""Symlinks in a real repository on the real git server: a link to a file elsewhere in the same
repository is read through; a link that leaves the repository is refused and applies nothing."""

from __future__ import annotations

from test_engine import AppFixture, app, cm, engine, repo_secret  # noqa: F401  (fixtures)

from tether.engine import Engine
from tether.kube import KubeClient
from tether.model import ResourceDiffStatus, ResourceKey


async def test_a_link_to_a_file_elsewhere_in_the_repository_is_applied(
    engine: Engine,  # noqa: F811
    app: AppFixture,  # noqa: F811
    kube: KubeClient,
) -> None:
    app.repo.commit(
        {
            "shared/cm.yaml": cm("shared-settings", {"mode": "blue"}),
            "app/own.yaml": cm("own-settings", {"mode": "red"}),
        },
        symlinks={"app/cm.yaml": "../shared/cm.yaml"},
    )

    result = await engine.sync(await app.create())

    assert result.ok, result.message
    for name, mode in (("shared-settings", "blue"), ("own-settings", "red")):
        live = await kube.get("v1", "ConfigMap", name, app.dest)
        assert live is not None and live["data"] == {"mode": mode}
    cmp = await engine.compare(await app.get())
    key = ResourceKey("", "ConfigMap", app.dest, "shared-settings")
    assert cmp.resources[key].diff.status is ResourceDiffStatus.SYNCED
    assert cmp.desired is not None
    assert {m.key.name: m.source_file for m in cmp.desired.manifests}["shared-settings"] == (
        "app/cm.yaml"
    )


async def test_a_link_out_of_the_repository_is_refused_and_nothing_is_applied(
    engine: Engine,  # noqa: F811
    app: AppFixture,  # noqa: F811
    kube: KubeClient,
) -> None:
    app.repo.commit(
        {"app/own.yaml": cm("own-settings", {"mode": "red"})},
        symlinks={"app/passwd.yaml": "../../../etc/passwd"},
    )

    result = await engine.sync(await app.create())

    assert not result.ok
    assert "symlink app/passwd.yaml points to '../../../etc/passwd'" in result.message
    assert "outside the repository" in result.message
    assert await kube.get("v1", "ConfigMap", "own-settings", app.dest) is None


async def test_an_app_path_that_is_a_link_to_another_directory_is_read_through(
    engine: Engine,  # noqa: F811
    app: AppFixture,  # noqa: F811
    kube: KubeClient,
) -> None:
    app.repo.commit(
        {"envs/base/cm.yaml": cm("base-settings", {"mode": "blue"})},
        symlinks={"envs/prod": "base"},
    )

    result = await engine.sync(await app.create(path="envs/prod"))

    assert result.ok, result.message
    assert await kube.get("v1", "ConfigMap", "base-settings", app.dest) is not None
