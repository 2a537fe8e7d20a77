"""The ``tether`` command against the real control plane: the cluster, context and namespace
named on the command line are the ones used; bad input is an ``error:`` and exit 2, never a
traceback; an Application file is refused whole before anything is sent; conflicts and
invalid objects get hints about the file, not about Git."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster_helpers import TETHER
from tether.api.application import API_VERSION, crd_manifests, new_application
from tether.audit import AuditRecord, SqliteAuditStore
from tether.kube import KubeClient

UNREACHABLE = "https://127.0.0.1:1"
REPO_URL = "https://git.example.com/team/demo.git"


def tether(
    *args: str, kubeconfig_env: str | None, home: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("KUBECONFIG", None)
    if kubeconfig_env is not None:
        env["KUBECONFIG"] = kubeconfig_env
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run(
        [TETHER, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def assert_clean_error(p: subprocess.CompletedProcess[str], *said: str) -> None:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    assert "error" in p.stderr.lower(), p.stderr
    for s in said:
        assert s in p.stderr, (s, p.stderr)


@pytest.fixture(scope="module")
async def crds(kube: KubeClient) -> None:
    for crd in crd_manifests():
        await kube.apply(crd)
    await kube.wait_for_resource(API_VERSION, "Application")


@pytest.fixture
async def app_name(kube: KubeClient, crds: None, namespace: str) -> str:
    """An Application in the test's namespace, visible only through the real cluster."""
    name = "flags-app"
    await kube.apply(new_application(name, namespace, repo_url=REPO_URL, path="app"))
    return name


@pytest.fixture
def kubeconfigs(kubeconfig: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(the real kubeconfig; one whose every server is unreachable; one with two contexts,
    ``good`` and ``bad``, whose current context is ``bad``)."""
    real = yaml.safe_load(Path(kubeconfig).read_text())
    bad = yaml.safe_load(Path(kubeconfig).read_text())
    for c in bad["clusters"]:
        c["cluster"]["server"] = UNREACHABLE
    bad_path = tmp_path / "unreachable.kubeconfig"
    bad_path.write_text(yaml.safe_dump(bad))
    ctx = real["contexts"][0]["context"]
    cluster = next(c for c in real["clusters"] if c["name"] == ctx["cluster"])
    two = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "good", "cluster": cluster["cluster"]},
            {"name": "bad", "cluster": {**cluster["cluster"], "server": UNREACHABLE}},
        ],
        "users": real["users"],
        "contexts": [
            {"name": "good", "context": {"cluster": "good", "user": ctx["user"]}},
            {"name": "bad", "context": {"cluster": "bad", "user": ctx["user"]}},
        ],
        "current-context": "bad",
    }
    two_path = tmp_path / "two-contexts.kubeconfig"
    two_path.write_text(yaml.safe_dump(two))
    yield kubeconfig, str(bad_path), str(two_path)


def listed(p: subprocess.CompletedProcess[str]) -> list[str]:
    assert p.returncode == 0, (p.stdout, p.stderr)
    return [it["metadata"]["name"] for it in yaml.safe_load(p.stdout)["items"]]


# ---- which cluster, context and namespace -----------------------------------------------


async def test_kubeconfig_flag_wins_over_the_environment_before_and_after_the_command(
    kubeconfigs: tuple[str, str, str], namespace: str, app_name: str
) -> None:
    good, bad, _ = kubeconfigs
    before = ["--kubeconfig", good, "app", "list", "-n", namespace, "-o", "yaml"]
    after = ["app", "list", "--kubeconfig", good, "-n", namespace, "-o", "yaml"]
    assert listed(tether(*before, kubeconfig_env=bad)) == [app_name]
    assert listed(tether(*after, kubeconfig_env=bad)) == [app_name]
    # And the other way round: the flag names an unreachable cluster, $KUBECONFIG the real
    # one. The command must fail on the named one, not quietly use the environment's.
    for args in (
        ["--kubeconfig", bad, "app", "list", "-n", namespace],
        ["app", "list", "-n", namespace, "--kubeconfig", bad],
    ):
        assert_clean_error(tether(*args, kubeconfig_env=good), "127.0.0.1:1")
    # Without a flag, $KUBECONFIG is the fallback.
    assert listed(tether("app", "list", "-n", namespace, "-o", "yaml", kubeconfig_env=good)) == [
        app_name
    ]


async def test_context_flag_wins_before_and_after_the_command(
    kubeconfigs: tuple[str, str, str], namespace: str, app_name: str
) -> None:
    good, _, two = kubeconfigs
    ns = ["-n", namespace, "-o", "yaml"]
    assert listed(tether("--context", "good", "app", "list", *ns, kubeconfig_env=two)) == [app_name]
    assert listed(tether("app", "list", "--context", "good", *ns, kubeconfig_env=two)) == [app_name]
    assert listed(
        tether("--kubeconfig", two, "--context", "good", "app", "list", *ns, kubeconfig_env=good)
    ) == [app_name]
    # The current context of that file is the unreachable one.
    assert_clean_error(tether("app", "list", "-n", namespace, kubeconfig_env=two), "127.0.0.1:1")


async def test_namespace_flag_before_and_after_the_command(
    kubeconfig: str, kube: KubeClient, namespace: str, app_name: str
) -> None:
    other = f"{namespace}-empty"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    try:
        assert listed(
            tether("-n", namespace, "app", "list", "-o", "yaml", kubeconfig_env=kubeconfig)
        ) == [app_name]
        assert listed(
            tether("app", "list", "-n", namespace, "-o", "yaml", kubeconfig_env=kubeconfig)
        ) == [app_name]
        # Given on both sides, the one after the command (nearest to it) counts.
        both = tether(
            "-n", namespace, "app", "list", "-n", other, "-o", "yaml", kubeconfig_env=kubeconfig
        )
        assert listed(both) == []
    finally:
        await kube.delete("v1", "Namespace", other, propagation="Background")


async def test_controller_uses_the_kubeconfig_given_before_it(
    kubeconfigs: tuple[str, str, str], tmp_path: Path
) -> None:
    good, _, _ = kubeconfigs
    # A kubeconfig that does not exist fails at once, whatever the controller's start-up
    # retries: only the file named before 'controller' can have made it fail.
    missing = str(tmp_path / "missing.kubeconfig")
    p = tether(
        "--kubeconfig",
        missing,
        "controller",
        "--http-host",
        "127.0.0.1",
        "--http-port",
        "0",
        "--audit-db",
        str(tmp_path / "audit.db"),
        "--cache-dir",
        str(tmp_path / "cache"),
        kubeconfig_env=good,
    )
    # It read the kubeconfig named before 'controller' and stopped; it never ran against the
    # cluster in $KUBECONFIG.
    assert_clean_error(p, f"kubeconfig {missing} does not exist")


# ---- errors, not tracebacks ---------------------------------------------------------------


def test_sync_option_without_a_value_is_an_error_not_a_traceback(kubeconfig: str) -> None:
    p = tether(
        "app",
        "create",
        "web",
        "--repo",
        REPO_URL,
        "--sync-option",
        "CreateNamespace",
        kubeconfig_env=kubeconfig,
    )
    assert_clean_error(p, "'CreateNamespace' must be Name=value")


def test_unknown_log_level_is_a_usage_error(kubeconfig: str) -> None:
    p = tether("controller", "--log-level", "loud", kubeconfig_env=kubeconfig)
    assert_clean_error(p, "--log-level", "'loud'")


async def test_busy_http_port_is_an_error_naming_the_port(
    kubeconfig: str, crds: None, namespace: str, tmp_path: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = tether(
            "controller",
            "--namespaces",
            namespace,
            "--http-host",
            "127.0.0.1",
            "--http-port",
            str(port),
            "--audit-db",
            str(tmp_path / "audit.db"),
            "--cache-dir",
            str(tmp_path / "cache"),
            kubeconfig_env=kubeconfig,
        )
    assert_clean_error(p, f"cannot listen on 127.0.0.1:{port}", "--http-port")


# ---- what app create and app apply send ---------------------------------------------------


@pytest.mark.parametrize("path", ["../x", "/x"])
async def test_create_refuses_a_path_outside_the_repository(
    kubeconfig: str, kube: KubeClient, crds: None, namespace: str, path: str
) -> None:
    p = tether(
        "app", "create", "web", "--repo", REPO_URL, "--path", path, "-n", namespace,
        kubeconfig_env=kubeconfig,
    )  # fmt: skip
    assert_clean_error(p, "spec.source.path", "relative to the repository root")
    assert await kube.get(API_VERSION, "Application", "web", namespace) is None


def argo_application(name: str, **source: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Application",
        "metadata": {"name": name},
        "spec": {
            "source": {"repoURL": REPO_URL, "path": "guestbook", **source},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "demo"},
        },
    }


async def test_apply_refuses_a_plugin_source_before_sending_anything(
    kubeconfig: str, kube: KubeClient, crds: None, namespace: str, tmp_path: Path
) -> None:
    f = tmp_path / "plugin.yaml"
    # A good Application first: it must not be applied either.
    second = argo_application("second", plugin={"name": "sops"})
    f.write_text(yaml.safe_dump_all([argo_application("first"), second]))
    p = tether("app", "apply", "-f", str(f), "-n", namespace, kubeconfig_env=kubeconfig)
    assert_clean_error(p, "spec.source.plugin is not supported", str(f), "second")
    assert "dropped by the API server" not in p.stderr
    assert await kube.get(API_VERSION, "Application", "first", namespace) is None
    assert await kube.get(API_VERSION, "Application", "second", namespace) is None


async def test_apply_accepts_helm_and_kustomize_sources(
    kubeconfig: str, kube: KubeClient, crds: None, namespace: str, tmp_path: Path
) -> None:
    for field, source in (
        ("helm", {"helm": {"releaseName": "x", "valueFiles": ["values-prod.yaml"]}}),
        ("kustomize", {"kustomize": {"namePrefix": "p-", "images": ["nginx=nginx:1.27"]}}),
    ):
        f = tmp_path / f"{field}.yaml"
        f.write_text(yaml.safe_dump(argo_application(field, **source)))
        p = tether("app", "apply", "-f", str(f), "-n", namespace, kubeconfig_env=kubeconfig)
        assert p.returncode == 0, p.stderr
        stored = await kube.get(API_VERSION, "Application", field, namespace)
        assert stored is not None
        # The API server kept the whole block (its schema knows every field).
        assert stored["spec"]["source"][field] == source[field]


async def test_invalid_yaml_exits_2_naming_the_file(kubeconfig: str, tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("spec: [unclosed\n")
    assert_clean_error(
        tether("app", "apply", "-f", str(f), kubeconfig_env=kubeconfig), "invalid YAML", str(f)
    )


async def test_server_refusal_of_a_local_file_says_fix_the_file_not_git(
    kubeconfig: str, kube: KubeClient, crds: None, namespace: str, tmp_path: Path
) -> None:
    doc = argo_application("too-long-dest")
    doc["spec"]["destination"]["namespace"] = "n" * 64  # the CRD allows 63
    f = tmp_path / "app.yaml"
    f.write_text(yaml.safe_dump(doc))
    p = tether("app", "apply", "-f", str(f), "-n", namespace, kubeconfig_env=kubeconfig)
    assert_clean_error(p, "422", f"fix {f}")
    assert "in Git" not in p.stderr


async def test_conflict_offers_force_conflicts_which_takes_the_field_over(
    kubeconfig: str, kube: KubeClient, crds: None, namespace: str, tmp_path: Path
) -> None:
    f = tmp_path / "app.yaml"
    f.write_text(yaml.safe_dump(argo_application("contested")))
    assert (
        tether("app", "apply", "-f", str(f), "-n", namespace, kubeconfig_env=kubeconfig).returncode
        == 0
    )
    # Someone edits the path with another field manager, as `kubectl edit` would.
    edited = argo_application("contested", path="elsewhere")
    edited["metadata"]["namespace"] = namespace
    await kube.apply(edited, field_manager="kubectl-edit", force=True)
    before = await kube.get(API_VERSION, "Application", "contested", namespace)
    assert before is not None

    p = tether("app", "apply", "-f", str(f), "-n", namespace, kubeconfig_env=kubeconfig)
    assert_clean_error(p, "409", "--force-conflicts")
    unchanged = await kube.get(API_VERSION, "Application", "contested", namespace)
    assert unchanged is not None
    assert unchanged["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    p = tether(
        "app", "apply", "-f", str(f), "--force-conflicts", "-n", namespace,
        kubeconfig_env=kubeconfig,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    after = await kube.get(API_VERSION, "Application", "contested", namespace)
    assert after is not None and after["spec"]["source"]["path"] == "guestbook"
    owners = {
        m["manager"]
        for m in after["metadata"]["managedFields"]
        if "f:path" in str(m.get("fieldsV1", {}))
    }
    assert owners == {"tether"}


# ---- the audit trail next to a controller run from the command line -----------------------


async def test_audit_without_flags_falls_back_to_the_local_controller_database(
    kubeconfig: str, kube: KubeClient, tmp_path: Path
) -> None:
    # No in-cluster controller here: its Service is what `tether audit` looks for first.
    assert await kube.get("v1", "Service", "tether-controller", "tether-system") is None
    db = tmp_path / ".local" / "share" / "tether" / "audit.db"
    db.parent.mkdir(parents=True)
    with SqliteAuditStore(db) as store:
        store.append(
            AuditRecord(
                id=None,
                time="2026-11-26T04:20:12.001Z",
                app="tether-system/guestbook",
                kind="sync",
                revision="9c1e0d4b7f",
                message="a sync the local controller made",
                trigger="poll",
                result="Succeeded",
            )
        )
    p = tether("audit", kubeconfig_env=kubeconfig, home=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "a sync the local controller made" in p.stdout
    assert f"reading the local audit database {db}" in p.stderr
    # A namespace given explicitly means the in-cluster controller, and only it.
    p = tether(
        "audit", "--controller-namespace", "tether-system", kubeconfig_env=kubeconfig,
        home=tmp_path,
    )  # fmt: skip
    assert_clean_error(p, "tether-controller")
    # Without the local file, the error says where it looked.
    db.unlink()
    assert_clean_error(tether("audit", kubeconfig_env=kubeconfig, home=tmp_path), str(db))
