"""Loading a kubeconfig: contexts, tokens, token files, certificates (inline and as files
relative to the kubeconfig), basic auth, insecure clusters, merged $KUBECONFIG lists, and the
refusals (missing file, bad YAML, auth-provider, impersonation) that say what to do."""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from kube_pki import client_cert, make_ca
from tether.errors import KubeError
from tether.kube.auth import Credential, TokenFileAuth
from tether.kube.config import in_cluster_config, load_kubeconfig

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kubeconfig"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a client certificate it signed, as ``ca.crt``, ``client.crt``, ``client.key``."""
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory)
    client_cert(directory, ca, "tester")
    return directory


def place(tmp_path: Path, fixture: str, pki: Path, **values: str) -> Path:
    """The fixture copied into ``tmp_path`` (``${NAME}`` filled in), next to ``pki/``."""
    text = (FIXTURES / fixture).read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    shutil.copytree(pki, tmp_path / "pki", dirs_exist_ok=True)
    path = tmp_path / fixture
    path.write_text(text)
    return path


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


async def test_the_current_context_gives_server_token_and_ca(tmp_path: Path, pki: Path) -> None:
    cfg = load_kubeconfig(str(place(tmp_path, "contexts.yaml", pki)))

    assert cfg.server == "https://127.0.0.1:6443"
    assert (await cfg.auth.credential()).headers() == {"Authorization": "Bearer the-token"}
    tls = cfg.tls(None)
    assert tls is not None and tls.verify_mode == ssl.CERT_REQUIRED and tls.check_hostname
    assert [c["subject"] for c in tls.get_ca_certs()] == [((("commonName", "tether-test-ca"),),)]
    assert "context token" in cfg.origin


async def test_context_selects_cluster_and_user(tmp_path: Path, pki: Path) -> None:
    cfg = load_kubeconfig(str(place(tmp_path, "contexts.yaml", pki)), "basic")

    assert cfg.server == "https://other.example:8443"
    assert cfg.tls_server_name == "kubernetes.default.svc"
    basic = base64.b64encode(b"alice:s3cret").decode()
    assert (await cfg.auth.credential()).headers() == {"Authorization": f"Basic {basic}"}
    tls = cfg.tls(None)
    assert tls is not None and tls.verify_mode == ssl.CERT_NONE and not tls.check_hostname


def test_an_unknown_context_names_the_ones_there_are(tmp_path: Path, pki: Path) -> None:
    path = place(tmp_path, "contexts.yaml", pki)

    with pytest.raises(KubeError) as e:
        load_kubeconfig(str(path), "staging")

    assert "no context 'staging'" in str(e.value) and str(path) in str(e.value)
    assert "basic, certs, file, gcp" in str(e.value) and "--context" in str(e.value)


def test_a_context_naming_a_missing_cluster_says_so(tmp_path: Path, pki: Path) -> None:
    with pytest.raises(KubeError, match="names cluster 'nowhere', which no kubeconfig"):
        load_kubeconfig(str(place(tmp_path, "contexts.yaml", pki)), "no-such-cluster")


async def test_token_file_relative_to_the_kubeconfig_is_read_again_when_it_changes(
    tmp_path: Path, pki: Path
) -> None:
    path = place(tmp_path, "contexts.yaml", pki)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("first\n")
    cfg = load_kubeconfig(str(path), "file")
    assert isinstance(cfg.auth, TokenFileAuth)
    first = await cfg.auth.credential()
    assert first.token == "first"

    (tmp_path / "secrets" / "token").write_text("second-and-longer\n")
    assert await cfg.auth.renew(first)  # as after a 401: read now, not in a few seconds
    assert (await cfg.auth.credential()).token == "second-and-longer"
    assert not await cfg.auth.renew(await cfg.auth.credential())


def test_a_missing_token_file_is_named_at_load(tmp_path: Path, pki: Path) -> None:
    path = place(tmp_path, "contexts.yaml", pki)

    with pytest.raises(KubeError) as e:
        load_kubeconfig(str(path), "file")

    assert str(tmp_path / "secrets" / "token") in str(e.value)
    assert "users[file-user].tokenFile" in str(e.value)


async def test_client_certificate_files_relative_to_the_kubeconfig(
    tmp_path: Path, pki: Path
) -> None:
    cfg = load_kubeconfig(str(place(tmp_path, "contexts.yaml", pki)), "certs")

    assert (await cfg.auth.credential()).headers() == {}
    assert cfg.tls(None) is not None


def test_a_certificate_without_its_key_names_the_missing_field(tmp_path: Path, pki: Path) -> None:
    with pytest.raises(KubeError) as e:
        load_kubeconfig(str(place(tmp_path, "contexts.yaml", pki)), "half-cert")

    assert "users[half-cert].client-key is missing" in str(e.value)
    assert "client-key-data" in str(e.value)


def test_inline_certificate_data(tmp_path: Path, pki: Path) -> None:
    path = place(
        tmp_path,
        "cert-data.yaml",
        pki,
        CA_DATA=b64(pki / "ca.crt"),
        CERT_DATA=b64(pki / "client.crt"),
        KEY_DATA=b64(pki / "client.key"),
    )

    tls = load_kubeconfig(str(path)).tls(None)

    assert tls is not None and len(tls.get_ca_certs()) == 1


def test_a_key_that_does_not_match_the_certificate_is_refused(tmp_path: Path, pki: Path) -> None:
    other = client_cert(tmp_path / "other", (pki / "ca.crt", pki / "ca.key"), "other")
    path = place(
        tmp_path,
        "cert-data.yaml",
        pki,
        CA_DATA=b64(pki / "ca.crt"),
        CERT_DATA=b64(pki / "client.crt"),
        KEY_DATA=b64(other[1]),
    )

    with pytest.raises(KubeError, match="client certificate and key do not load"):
        load_kubeconfig(str(path))


def test_bad_base64_names_the_field(tmp_path: Path, pki: Path) -> None:
    path = place(tmp_path, "cert-data.yaml", pki, CA_DATA="not base64!", CERT_DATA="", KEY_DATA="")

    with pytest.raises(KubeError) as e:
        load_kubeconfig(str(path))

    assert f"kubeconfig {path}: clusters[inline].certificate-authority-data" in str(e.value)


def test_a_missing_kubeconfig_is_named(tmp_path: Path) -> None:
    with pytest.raises(KubeError) as e:
        load_kubeconfig(str(tmp_path / "nope.yaml"))

    assert f"kubeconfig {tmp_path / 'nope.yaml'} does not exist" in str(e.value)
    assert "--kubeconfig" in str(e.value)


def test_bad_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    shutil.copy(FIXTURES / "broken.yaml", path)

    with pytest.raises(KubeError, match=rf"kubeconfig {path}:\d+ is not valid YAML"):
        load_kubeconfig(str(path))


def test_auth_provider_is_refused_naming_user_and_plugin(tmp_path: Path, pki: Path) -> None:
    with pytest.raises(KubeError) as e:
        load_kubeconfig(str(place(tmp_path, "contexts.yaml", pki)), "gcp")

    assert "user 'gcp' uses the 'gcp' auth-provider" in str(e.value)
    assert "gke-gcloud-auth-plugin" in str(e.value)


def test_impersonation_is_refused_not_ignored(tmp_path: Path, pki: Path) -> None:
    with pytest.raises(KubeError, match=r"users\[impersonating\]\.as: impersonation"):
        load_kubeconfig(str(place(tmp_path, "contexts.yaml", pki)), "impersonating")


async def test_kubeconfig_list_merges_first_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = tmp_path / "a", tmp_path / "b"
    one.mkdir()
    two.mkdir()
    shutil.copy(FIXTURES / "merged-first.yaml", one / "config")
    shutil.copy(FIXTURES / "merged-second.yaml", two / "config")
    (one / "first-token").write_text("from-first")
    (two / "second-token").write_text("from-second")
    missing = tmp_path / "missing"
    monkeypatch.setenv("KUBECONFIG", f"{missing}:{one / 'config'}:{two / 'config'}")

    current = load_kubeconfig()
    second = load_kubeconfig(context="second")

    assert current.server == "https://first.example:6443"
    assert (await current.auth.credential()).token == "from-first"
    assert second.server == "https://elsewhere.example:6443"
    assert (await second.auth.credential()).token == "from-second"  # relative to its own file


def test_insecure_with_a_ca_is_refused(tmp_path: Path, pki: Path) -> None:
    path = place(tmp_path, "contexts.yaml", pki)
    path.write_text(
        path.read_text().replace(
            "certificate-authority: pki/ca.crt",
            "certificate-authority: pki/ca.crt\n      insecure-skip-tls-verify: true",
        )
    )

    with pytest.raises(KubeError, match="insecure-skip-tls-verify is set together"):
        load_kubeconfig(str(path))


def test_credentials_never_show_in_their_repr() -> None:
    assert "secret" not in repr(Credential(token="secret"))
    assert "secret" not in repr(Credential(basic=("u", "secret")))


async def test_in_cluster_reads_the_service_account_directory(tmp_path: Path, pki: Path) -> None:
    shutil.copy(pki / "ca.crt", tmp_path / "ca.crt")
    (tmp_path / "token").write_text("sa-token")
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}

    cfg = in_cluster_config(tmp_path, env)

    assert cfg.server == "https://[fd00::1]:443"
    assert (await cfg.auth.credential()).token == "sa-token"
    assert cfg.tls(None) is not None


def test_in_cluster_without_a_token_names_the_file(tmp_path: Path, pki: Path) -> None:
    shutil.copy(pki / "ca.crt", tmp_path / "ca.crt")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}

    with pytest.raises(KubeError, match=f"cannot read the token file {tmp_path / 'token'}"):
        in_cluster_config(tmp_path, env)


def test_in_cluster_outside_a_pod_says_so(tmp_path: Path) -> None:
    with pytest.raises(KubeError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"):
        in_cluster_config(tmp_path, {})


def test_no_module_imports_kubernetes_asyncio() -> None:
    src = Path(__file__).resolve().parents[2] / "src" / "tether"
    probe = "import sys, tether.kube; print('kubernetes_asyncio' in sys.modules)"

    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "False"
    users = [p for p in src.rglob("*.py") if "kubernetes_asyncio" in p.read_text()]
    assert users == []
