"""Exec credential plugins: a real small script, given as a path relative to the kubeconfig,
run with the kubeconfig's args and env and KUBERNETES_EXEC_INFO; its token kept until its
expirationTimestamp, fetched again when expired or rejected; its failures named."""

from __future__ import annotations

import base64
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from kube_pki import make_ca
from tether.errors import KubeError
from tether.kube.auth import ExecAuth
from tether.kube.config import load_kubeconfig

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kubeconfig"

PLUGIN = """#!{python}
import datetime, json, os, pathlib, sys
state = pathlib.Path(os.environ["PLUGIN_STATE"])
runs = state / "runs.jsonl"
n = len(runs.read_text().splitlines()) + 1 if runs.exists() else 1
with runs.open("a") as f:
    f.write(json.dumps({{"args": sys.argv[1:], "info": os.environ.get("KUBERNETES_EXEC_INFO")}}))
    f.write("\\n")
if (state / "fail").exists():
    print("login expired: run the login command", file=sys.stderr)
    sys.exit(3)
expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
    seconds=int(os.environ["PLUGIN_EXPIRES_IN"]))
status = {{"token": f"token-{{n}}", "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}}
print(json.dumps({{"apiVersion": "{api}", "kind": "ExecCredential", "status": status}}))
"""


def plugin_kubeconfig(
    tmp_path: Path, expires_in: int, api: str = "client.authentication.k8s.io/v1"
) -> Path:
    make_ca(tmp_path / "pki")
    (tmp_path / "bin").mkdir()
    plugin = tmp_path / "bin" / "plugin"
    plugin.write_text(PLUGIN.format(python=sys.executable, api=api))
    plugin.chmod(0o755)
    (tmp_path / "state").mkdir()
    text = (FIXTURES / "exec.yaml").read_text()
    text = text.replace("${STATE}", str(tmp_path / "state"))
    text = text.replace("${EXPIRES_IN}", str(expires_in))
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(text)
    return path


def runs(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "state" / "runs.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def exec_auth(path: Path) -> ExecAuth:
    auth = load_kubeconfig(str(path)).auth
    assert isinstance(auth, ExecAuth)
    return auth


async def test_the_plugin_gets_args_env_and_cluster_info(tmp_path: Path) -> None:
    auth = exec_auth(plugin_kubeconfig(tmp_path, expires_in=3600))

    cred = await auth.credential()

    assert cred.token == "token-1"
    assert cred.headers() == {"Authorization": "Bearer token-1"}
    (run,) = runs(tmp_path)
    assert run["args"] == ["--cluster", "main"]
    info = json.loads(run["info"])
    assert info["apiVersion"] == "client.authentication.k8s.io/v1"
    assert info["kind"] == "ExecCredential"
    assert info["spec"]["interactive"] is False
    cluster = info["spec"]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert cluster["config"] == {"audience": "tether-tests"}
    ca = (tmp_path / "pki" / "ca.crt").read_text()
    assert base64.b64decode(cluster["certificate-authority-data"]).decode() == ca


async def test_the_token_is_kept_until_it_expires(tmp_path: Path) -> None:
    auth = exec_auth(plugin_kubeconfig(tmp_path, expires_in=3600))

    first = await auth.credential()
    again = await auth.credential()

    assert first is again
    assert auth.runs == 1 and len(runs(tmp_path)) == 1


async def test_an_expired_token_runs_the_plugin_again(tmp_path: Path) -> None:
    auth = exec_auth(plugin_kubeconfig(tmp_path, expires_in=-60))

    assert (await auth.credential()).token == "token-1"
    assert (await auth.credential()).token == "token-2"
    assert auth.runs == 2


async def test_a_rejected_token_runs_the_plugin_again_once(tmp_path: Path) -> None:
    auth = exec_auth(plugin_kubeconfig(tmp_path, expires_in=3600))
    rejected = await auth.credential()

    assert await auth.renew(rejected)
    assert await auth.renew(rejected)  # a second request that saw the same 401: no new run

    assert (await auth.credential()).token == "token-2"
    assert auth.runs == 2


async def test_a_failing_plugin_says_which_and_why(tmp_path: Path) -> None:
    auth = exec_auth(plugin_kubeconfig(tmp_path, expires_in=3600))
    (tmp_path / "state" / "fail").write_text("")

    with pytest.raises(KubeError) as e:
        await auth.credential()

    assert "bin/plugin" in str(e.value) and "user 'plugin'" in str(e.value)
    assert "exit code 3: login expired: run the login command" in str(e.value)


async def test_an_answer_in_another_api_version_is_refused(tmp_path: Path) -> None:
    path = plugin_kubeconfig(tmp_path, 3600, api="client.authentication.k8s.io/v1beta1")

    with pytest.raises(KubeError, match=r"answered apiVersion 'client\.authentication"):
        await exec_auth(path).credential()


async def test_a_missing_plugin_shows_the_install_hint(tmp_path: Path) -> None:
    path = plugin_kubeconfig(tmp_path, 3600)
    shutil.rmtree(tmp_path / "bin")
    path.write_text(
        path.read_text().replace(
            "interactiveMode: Never", "interactiveMode: Never\n        installHint: get it here"
        )
    )

    with pytest.raises(KubeError) as e:
        await exec_auth(path).credential()

    assert "cannot run the exec plugin" in str(e.value) and "get it here" in str(e.value)


def test_the_removed_v1alpha1_is_refused_at_load(tmp_path: Path) -> None:
    path = plugin_kubeconfig(tmp_path, 3600)
    v1alpha1 = path.read_text().replace("k8s.io/v1\n", "k8s.io/v1alpha1\n")
    path.write_text(v1alpha1)

    with pytest.raises(KubeError, match=r"users\[plugin\]\.exec\.apiVersion: client.authentic"):
        load_kubeconfig(str(path))
