"""The one-shot client's pure parts: the error values and wording every client of the API
shares, which failed requests are sent again, discovery answers read into resource paths,
credentials taken without an event loop (fixed, a token file, a real exec plugin), and the
proxy it refuses; and that importing it loads neither asyncio nor aiohttp."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tether.errors import KubeError
from tether.kube.answers import api_error, may_retry, unreachable, unserved
from tether.kube.auth import Auth, Credential, ExecAuth, ExecSpec, TokenFileAuth
from tether.kube.config import KubeConfig
from tether.kube.oneshot import OneShot
from tether.kube.resources import ApiResource, discovery_path, read_discovery

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "oneshot"


def test_a_status_answer_becomes_an_error_with_the_servers_words_and_a_hint() -> None:
    raw = (FIXTURES / "status-403.json").read_bytes()
    err = api_error("GET", "/api/v1/namespaces/x/configmaps", 403, raw)
    assert err.status == 403
    assert err.message == (
        "GET /api/v1/namespaces/x/configmaps: 403 Forbidden: configmaps is forbidden: "
        'User "system:serviceaccount:x:lister" cannot list resource "configmaps" in API group '
        '"" in the namespace "x"'
    )
    assert err.hint == "the identity lacks RBAC permission for this"


def test_an_answer_that_is_not_json_is_quoted_and_a_401_says_the_credentials_failed() -> None:
    err = api_error("GET", "/version", 401, b"Unauthorized\n")
    assert err.message == "GET /version: 401 : Unauthorized\n"  # no reason: as the async client
    assert err.hint == "the credentials in the kubeconfig were rejected"
    retried = api_error("GET", "/x", 503, b"{}", "gave up after 5 attempts")
    assert retried.message.endswith("(gave up after 5 attempts)")


def test_no_answer_names_the_server() -> None:
    err = unreachable("https://127.0.0.1:1", ConnectionRefusedError(111, "Connection refused"))
    assert err.message.startswith("cannot reach the Kubernetes API at https://127.0.0.1:1: ")
    assert "Connection refused" in err.message
    assert "kubeconfig" in err.hint


def test_an_unserved_kind_names_the_versions_that_serve_it() -> None:
    none = unserved("tether.dev/v1alpha1", "Application", [])
    assert none.status == 404
    assert none.message == (
        "the cluster does not serve kind Application in apiVersion tether.dev/v1alpha1"
    )
    assert none.hint == "check the apiVersion, or install the CRD that defines it"
    one = unserved("autoscaling/v2", "HorizontalPodAutoscaler", ["autoscaling/v1"])
    assert "serves HorizontalPodAutoscaler as autoscaling/v1: use that apiVersion" in one.hint


@pytest.mark.parametrize(
    ("method", "status", "preconditions", "again"),
    [
        ("GET", 429, False, True),
        ("POST", 503, False, True),
        ("GET", 500, False, True),
        ("POST", 500, False, False),
        ("PATCH", 500, False, False),
        ("PATCH", 502, False, True),
        ("DELETE", 500, False, False),
        ("DELETE", 500, True, True),
        ("GET", 501, False, False),
        ("GET", 404, False, False),
    ],
)
def test_what_may_be_sent_again(method: str, status: int, preconditions: bool, again: bool) -> None:
    assert may_retry(method, status, preconditions) is again


def test_discovery_answers_become_resource_paths() -> None:
    body = json.loads((FIXTURES / "discovery-tether.json").read_text())
    found = read_discovery("tether.dev/v1alpha1", body)
    assert [r.kind for r in found] == ["Application", "Project"]  # no status subresource
    app = found[0]
    assert app.path("ns", "web") == "/apis/tether.dev/v1alpha1/namespaces/ns/applications/web"
    assert app.path() == "/apis/tether.dev/v1alpha1/applications"
    assert discovery_path("tether.dev/v1alpha1") == "/apis/tether.dev/v1alpha1"
    assert discovery_path("v1") == "/api/v1"
    ns = ApiResource("", "v1", "Namespace", "namespaces", False, frozenset({"get"}))
    assert ns.path("ignored", "default") == "/api/v1/namespaces/default"


def test_a_fixed_credential_and_a_token_file_without_an_event_loop(tmp_path: Path) -> None:
    fixed = Credential(token="abc")
    assert Auth(fixed).current() is fixed
    assert Auth(fixed).renew_now(fixed) is False

    token = tmp_path / "token"
    token.write_text("first\n")
    source = TokenFileAuth(token, "a test token", every=0)
    source.load()
    before = source.current()
    assert before.token == "first"
    token.write_text("second\n")
    assert source.renew_now(before) is True
    assert source.current().token == "second"


def write_plugin(tmp_path: Path, answers: list[dict[str, str]]) -> Path:
    """A real exec plugin: prints the next ExecCredential of ``answers`` each run."""
    state = tmp_path / "runs"
    state.write_text("0")
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        textwrap.dedent(
            f"""\
            import json, pathlib
            state = pathlib.Path({str(state)!r})
            n = int(state.read_text())
            state.write_text(str(n + 1))
            answers = {answers!r}
            print(json.dumps({{
                "apiVersion": "client.authentication.k8s.io/v1",
                "kind": "ExecCredential",
                "status": answers[min(n, len(answers) - 1)],
            }}))
            """
        )
    )
    return plugin


def test_an_exec_plugin_runs_without_an_event_loop_and_again_after_a_rejection(
    tmp_path: Path,
) -> None:
    plugin = write_plugin(tmp_path, [{"token": "one"}, {"token": "two"}])
    auth = ExecAuth(
        ExecSpec(
            user="u",
            api_version="client.authentication.k8s.io/v1",
            command=sys.executable,
            args=(str(plugin),),
        )
    )
    first = auth.current()
    assert first.token == "one"
    assert auth.current() is first and auth.runs == 1  # kept until it expires or is rejected
    assert auth.renew_now(first) is True
    assert auth.current().token == "two" and auth.runs == 2


def test_an_exec_plugin_that_fails_says_which_and_how() -> None:
    spec = ExecSpec(
        user="u",
        api_version="client.authentication.k8s.io/v1",
        command=sys.executable,
        args=("-c", "import sys; sys.stderr.write('no login\\n'); sys.exit(3)"),
        install_hint="run the login first",
    )
    with pytest.raises(KubeError) as e:
        ExecAuth(spec).current()
    assert "failed with exit code 3: no login" in e.value.message
    assert e.value.hint == "run the login first"
    missing = ExecSpec(user="u", api_version=spec.api_version, command="/no/such/plugin")
    with pytest.raises(KubeError, match="cannot run the exec plugin '/no/such/plugin'"):
        ExecAuth(missing).current()


def test_a_proxy_that_is_not_http_is_refused_by_name() -> None:
    config = KubeConfig(
        server="https://127.0.0.1:6443",
        auth=Auth(),
        tls=lambda cert: None,
        proxy="socks5://127.0.0.1:1080",
    )
    with pytest.raises(KubeError, match=r"socks5://127\.0\.0\.1:1080 .* is not an http:// proxy"):
        OneShot(config).request("GET", "/version")


def test_importing_the_one_shot_client_loads_no_event_loop_nor_http_library() -> None:
    code = (
        "import sys, json; import tether.kube.oneshot, tether.service.reading, tether.api.names; "
        "print(json.dumps([m for m in ('asyncio', 'aiohttp', 'yaml', 'logging') "
        "if m in sys.modules]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(out.stdout) == []
