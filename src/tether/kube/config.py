"""Where the Kubernetes API is and how to reach it: a kubeconfig (the files of ``$KUBECONFIG``
merged as kubectl merges them) or the in-cluster service account, turned into a server URL, a
TLS context and a credential source.

Merging follows kubectl: for a cluster, user or context named in several files the first file
wins, and so does the first non-empty ``current-context``; a file of the list that does not exist
is skipped. Relative paths in a file resolve against that file's directory.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tether.errors import KubeError
from tether.kube.auth import (
    EXEC_API_VERSIONS,
    TOKEN_FILE_CHECK,
    Auth,
    Credential,
    ExecAuth,
    ExecSpec,
    TokenFileAuth,
)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")

_EXEC_HINTS = {
    "gcp": "use the exec plugin gke-gcloud-auth-plugin (gcloud components install "
    "gke-gcloud-auth-plugin, then gcloud container clusters get-credentials)",
    "azure": "use the exec plugin kubelogin (kubelogin convert-kubeconfig)",
    "oidc": "use an exec plugin such as kubelogin (kubectl oidc-login)",
}


@dataclass
class KubeConfig:
    """How to reach one API server: everything the client needs, nothing it must look up."""

    server: str
    auth: Auth
    tls: Callable[[tuple[str, str] | None], ssl.SSLContext | None]
    """The TLS context, with the given client certificate (PEM cert, key) or the configured
    one; None for a plain-HTTP server."""
    tls_server_name: str | None = None
    proxy: str | None = None
    origin: str = ""
    """Where this came from, for messages: ``kubeconfig FILE, context NAME`` or ``in-cluster``."""


# ---- kubeconfig files -----------------------------------------------------------------------


def kubeconfig_paths(explicit: str | None = None) -> list[Path]:
    """The files to read: the one given (``--kubeconfig``), else ``$KUBECONFIG``'s list, else
    ``~/.kube/config``."""
    if explicit:
        return [Path(explicit)]
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def read_kubeconfig(path: Path) -> dict[str, Any]:
    """One kubeconfig file as a dict, its relative paths made absolute."""
    try:
        text = path.read_bytes()
    except OSError as e:
        raise KubeError(
            f"cannot read kubeconfig {path}: {e.strerror or e}",
            hint="pass --kubeconfig or set KUBECONFIG to a readable file",
        ) from e
    doc = _parse(text, path)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise KubeError(f"kubeconfig {path} is not a mapping", hint="check the file's contents")
    _resolve_paths(doc, path.parent)
    return doc


def _parse(text: bytes, path: Path) -> Any:
    if text.lstrip()[:1] == b"{":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # YAML that starts with a flow mapping: let the YAML parser say what is wrong
    import yaml  # only for YAML kubeconfigs; JSON ones do without it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # a safe loader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise KubeError(
            f"kubeconfig {path}{where} is not valid YAML: {getattr(e, 'problem', e)}",
            hint="fix the file or point --kubeconfig at another",
        ) from e


def _resolve_paths(doc: dict[str, Any], base: Path) -> None:
    def fix(section: Any, key: str) -> None:
        if isinstance(section, dict) and section.get(key):
            p = Path(str(section[key]))
            if not p.is_absolute():
                section[key] = str(base / p)

    for entry in _entries(doc, "clusters"):
        fix(entry.get("cluster"), "certificate-authority")
    for entry in _entries(doc, "users"):
        user = entry.get("user")
        for key in ("client-certificate", "client-key", "tokenFile"):
            fix(user, key)
        exec_ = user.get("exec") if isinstance(user, dict) else None
        if isinstance(exec_, dict) and os.sep in str(exec_.get("command") or ""):
            fix(exec_, "command")  # like kubectl: only a command given as a path


def _entries(doc: Mapping[str, Any], section: str) -> list[dict[str, Any]]:
    return [e for e in doc.get(section) or [] if isinstance(e, dict)]


def merge_kubeconfigs(paths: list[Path]) -> tuple[dict[str, Any], list[Path]]:
    """The files merged as kubectl does (first wins); also which files were read."""
    read = [p for p in paths if p.exists()]
    if not read:
        names = ", ".join(str(p) for p in paths)
        raise KubeError(
            f"kubeconfig {names} does not exist",
            hint="pass --kubeconfig or set KUBECONFIG",
        )
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}, "current-context": ""}
    for path in read:
        doc = read_kubeconfig(path)
        for section in ("clusters", "users", "contexts"):
            for entry in _entries(doc, section):
                merged[section].setdefault(str(entry.get("name", "")), (entry, path))
        if not merged["current-context"]:
            merged["current-context"] = str(doc.get("current-context") or "")
    return merged, read


def load_kubeconfig(
    kubeconfig: str | None = None, context: str | None = None, *, paths: list[Path] | None = None
) -> KubeConfig:
    """The configuration of ``context`` (default: the current context)."""
    merged, read = merge_kubeconfigs(paths or kubeconfig_paths(kubeconfig))
    files = ", ".join(str(p) for p in read)
    name = context or merged["current-context"]
    if not name:
        raise KubeError(
            f"kubeconfig {files} has no current-context",
            hint="pass --context, or run kubectl config use-context NAME",
        )
    if name not in merged["contexts"]:
        known = ", ".join(sorted(merged["contexts"])) or "none"
        raise KubeError(
            f"kubeconfig {files} has no context {name!r} (contexts: {known})",
            hint="pass --context with one of those",
        )
    ctx_entry, ctx_file = merged["contexts"][name]
    ctx = ctx_entry.get("context") or {}
    cluster_name, user_name = str(ctx.get("cluster") or ""), str(ctx.get("user") or "")
    if cluster_name not in merged["clusters"]:
        raise KubeError(
            f"kubeconfig {ctx_file}: context {name!r} names cluster {cluster_name!r}, "
            "which no kubeconfig file defines",
            hint="add the cluster or fix the context",
        )
    cluster_entry, cluster_file = merged["clusters"][cluster_name]
    cluster = _Section(
        cluster_entry.get("cluster") or {}, cluster_file, f"clusters[{cluster_name}]"
    )
    user = _Section({}, ctx_file, f"users[{user_name}]")
    if user_name:
        if user_name not in merged["users"]:
            raise KubeError(
                f"kubeconfig {ctx_file}: context {name!r} names user {user_name!r}, "
                "which no kubeconfig file defines",
                hint="add the user or fix the context",
            )
        user_entry, user_file = merged["users"][user_name]
        user = _Section(user_entry.get("user") or {}, user_file, f"users[{user_name}]")
    return _from_sections(cluster, user, user_name, f"kubeconfig {cluster.file}, context {name}")


@dataclass
class _Section:
    """One cluster's or user's fields, with where they came from for error messages."""

    data: dict[str, Any]
    file: Path
    where: str

    def get(self, key: str) -> str:
        return str(self.data.get(key) or "")

    def field_name(self, key: str) -> str:
        return f"kubeconfig {self.file}: {self.where}.{key}"

    def b64(self, key: str) -> bytes:
        try:
            return base64.b64decode(self.get(key), validate=True)
        except (binascii.Error, ValueError) as e:
            raise KubeError(
                f"{self.field_name(key)} is not valid base64",
                hint="put the base64 of the PEM file there, on one line",
            ) from e


def _from_sections(cluster: _Section, user: _Section, user_name: str, origin: str) -> KubeConfig:
    server = cluster.get("server").rstrip("/")
    if not server:
        raise KubeError(
            f"{cluster.field_name('server')} is empty", hint="set the API server's URL there"
        )
    for key in ("as", "as-uid", "as-groups", "as-user-extra"):
        if user.data.get(key):
            raise KubeError(
                f"{user.field_name(key)}: impersonation in a kubeconfig is not supported",
                hint="give tether a kubeconfig whose user is the identity to act as",
            )
    provider = user.data.get("auth-provider")
    if provider:
        pname = str((provider or {}).get("name") or "")
        raise KubeError(
            f"{user.field_name('auth-provider')}: user {user_name!r} uses the {pname!r} "
            "auth-provider, which Kubernetes clients no longer support",
            hint=_EXEC_HINTS.get(pname, "use an exec plugin for that identity provider"),
        )
    auth, cert = _user_auth(user, user_name, cluster)
    tls = _tls_factory(server, cluster, cert)
    return KubeConfig(
        server=server,
        auth=auth,
        tls=tls,
        tls_server_name=cluster.get("tls-server-name") or None,
        proxy=cluster.get("proxy-url") or _env_proxy(server),
        origin=origin,
    )


def _user_auth(
    user: _Section, user_name: str, cluster: _Section
) -> tuple[Auth, tuple[str, str] | None]:
    """The credential source and the client certificate (PEM cert, key) of a user."""
    cert = _client_cert(user)
    if user.get("token"):
        return Auth(Credential(token=user.get("token"))), cert
    if user.get("tokenFile"):
        source = TokenFileAuth(Path(user.get("tokenFile")), user.field_name("tokenFile"))
        source.load()
        return source, cert
    if user.get("username") or user.get("password"):
        basic = (user.get("username"), user.get("password"))
        return Auth(Credential(basic=basic)), cert
    exec_ = user.data.get("exec")
    if isinstance(exec_, dict):
        return ExecAuth(_exec_spec(exec_, user, user_name, cluster)), cert
    return Auth(), cert


def _exec_spec(
    exec_: dict[str, Any], user: _Section, user_name: str, cluster: _Section
) -> ExecSpec:
    api_version = str(exec_.get("apiVersion") or "")
    if api_version not in EXEC_API_VERSIONS:
        raise KubeError(
            f"{user.field_name('exec.apiVersion')}: {api_version or 'missing'} is not supported",
            hint=f"use one of {', '.join(EXEC_API_VERSIONS)} (update the plugin if it is old)",
        )
    command = str(exec_.get("command") or "")
    if not command:
        raise KubeError(f"{user.field_name('exec.command')} is empty", hint="name the plugin")
    env = tuple(
        (str(e.get("name")), str(e.get("value") or ""))
        for e in exec_.get("env") or []
        if isinstance(e, dict) and e.get("name")
    )
    info: dict[str, Any] = {"server": cluster.get("server")}
    if cluster.get("tls-server-name"):
        info["tls-server-name"] = cluster.get("tls-server-name")
    if cluster.data.get("insecure-skip-tls-verify"):
        info["insecure-skip-tls-verify"] = True
    ca = _ca_pem(cluster)
    if ca:
        info["certificate-authority-data"] = base64.b64encode(ca.encode()).decode()
    if cluster.get("proxy-url"):
        info["proxy-url"] = cluster.get("proxy-url")
    ext = {
        str(e.get("name")): e.get("extension")
        for e in cluster.data.get("extensions") or []
        if isinstance(e, dict)
    }
    if "client.authentication.k8s.io/exec" in ext:
        info["config"] = ext["client.authentication.k8s.io/exec"]
    return ExecSpec(
        user=user_name,
        api_version=api_version,
        command=command,
        args=tuple(str(a) for a in exec_.get("args") or []),
        env=env,
        provide_cluster_info=bool(exec_.get("provideClusterInfo")),
        cluster_info=info,
        install_hint=str(exec_.get("installHint") or "").strip(),
        interactive_mode=str(exec_.get("interactiveMode") or "IfAvailable"),
    )


def _client_cert(user: _Section) -> tuple[str, str] | None:
    cert = _pem(user, "client-certificate")
    key = _pem(user, "client-key")
    if bool(cert) != bool(key):
        missing = "client-key" if cert else "client-certificate"
        raise KubeError(
            f"{user.field_name(missing)} is missing: a client certificate needs both the "
            "certificate and its key",
            hint=f"set {missing} or {missing}-data",
        )
    return (cert, key) if cert and key else None


def _pem(section: _Section, key: str) -> str:
    """A PEM from ``key-data`` (base64) or the file ``key`` names; '' when neither is set."""
    if section.get(f"{key}-data"):
        return section.b64(f"{key}-data").decode(errors="replace")
    if section.get(key):
        try:
            return Path(section.get(key)).read_text()
        except OSError as e:
            raise KubeError(
                f"{section.field_name(key)}: cannot read {section.get(key)}: {e.strerror or e}",
                hint="fix the path (relative paths start at the kubeconfig's directory)",
            ) from e
    return ""


def _ca_pem(cluster: _Section) -> str:
    return _pem(cluster, "certificate-authority")


def _tls_factory(
    server: str, cluster: _Section, default_cert: tuple[str, str] | None
) -> Callable[[tuple[str, str] | None], ssl.SSLContext | None]:
    """Builds the server's TLS context now (so errors show at load) and again on demand with a
    new client certificate (one an exec plugin returned)."""
    if not server.startswith("https://"):
        return lambda cert: None
    ca = _ca_pem(cluster)
    insecure = bool(cluster.data.get("insecure-skip-tls-verify"))
    if insecure and ca:
        raise KubeError(
            f"{cluster.field_name('insecure-skip-tls-verify')} is set together with a "
            "certificate authority",
            hint="remove one of them (kubectl refuses this too)",
        )

    configured = tls_context(ca, insecure, default_cert, cluster.where)

    def build(cert: tuple[str, str] | None) -> ssl.SSLContext:
        return configured if cert is None else tls_context(ca, insecure, cert, cluster.where)

    return build


def tls_context(
    ca_pem: str, insecure: bool, cert: tuple[str, str] | None, what: str
) -> ssl.SSLContext:
    """A client TLS context trusting ``ca_pem`` (or the system's CAs), presenting ``cert``."""
    if insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ca_pem:
        # Only this CA, as kubectl: a cluster's own CA is not one of the system's.
        try:
            ctx = ssl.create_default_context(cadata=ca_pem)
        except (ssl.SSLError, ValueError) as e:
            raise KubeError(
                f"{what}: the certificate authority is not a PEM certificate: {e}",
                hint="check certificate-authority(-data)",
            ) from e
    else:
        ctx = ssl.create_default_context()
    if cert:
        _load_cert_chain(ctx, cert, what)
    return ctx


def _load_cert_chain(ctx: ssl.SSLContext, cert: tuple[str, str], what: str) -> None:
    import tempfile  # only with a client certificate

    # ssl loads a certificate and key only from files: a private directory, removed at once.
    with tempfile.TemporaryDirectory(prefix="tether-tls-") as tmp:
        cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(cert[1])
        cert_file.write_text(cert[0])
        try:
            ctx.load_cert_chain(str(cert_file), str(key_file))
        except ssl.SSLError as e:
            raise KubeError(
                f"{what}: the client certificate and key do not load: {e.reason or e}",
                hint="check that both are PEM and that the key matches the certificate",
            ) from e


def _env_proxy(server: str) -> str | None:
    """The proxy ``HTTPS_PROXY``/``HTTP_PROXY`` name for ``server``, unless ``NO_PROXY``
    exempts it (as kubectl does); read once, not on every request."""
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return None  # what getproxies_environment reads: none set, nothing to import
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    scheme, _, rest = server.partition("://")
    proxy = proxies.get(scheme)
    if not proxy:
        return None
    host = rest.split("/", 1)[0]
    return None if urllib.request.proxy_bypass(host) else proxy


# ---- in-cluster -----------------------------------------------------------------------------


def in_cluster_config(
    directory: Path = SERVICE_ACCOUNT_DIR,
    environ: Mapping[str, str] | None = None,
    token_check: float = TOKEN_FILE_CHECK,
) -> KubeConfig:
    """The Pod's own service account: ``KUBERNETES_SERVICE_HOST``/``_PORT``, the token and CA
    in ``directory``. The token is read again when it changes (bound tokens rotate)."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise KubeError(
            "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set",
            hint="pass --kubeconfig, or run tether in a Pod",
        )
    if ":" in host:
        host = f"[{host}]"
    ca_file, token_file = directory / "ca.crt", directory / "token"
    try:
        ca = ca_file.read_text()
    except OSError as e:
        raise KubeError(
            f"cannot read the service account's CA {ca_file}: {e.strerror or e}",
            hint="mount the service account token (automountServiceAccountToken: true)",
        ) from e
    auth = TokenFileAuth(token_file, "the service account token", token_check)
    auth.load()
    what = f"in-cluster CA {ca_file}"
    configured = tls_context(ca, False, None, what)
    return KubeConfig(
        server=f"https://{host}:{port}",
        auth=auth,
        tls=lambda cert: configured if cert is None else tls_context(ca, False, cert, what),
        origin=f"in-cluster service account ({directory})",
    )


def load_config(kubeconfig: str | None = None, context: str | None = None) -> KubeConfig:
    """In a Pod with no kubeconfig given: the service account; otherwise the kubeconfig."""
    in_cluster = (
        kubeconfig is None
        and "KUBERNETES_SERVICE_HOST" in os.environ
        and not os.environ.get("KUBECONFIG")
    )
    if in_cluster:
        return in_cluster_config()
    return load_kubeconfig(kubeconfig, context)
