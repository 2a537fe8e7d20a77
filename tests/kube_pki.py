"""Real certificates for the Kubernetes client's tests, made by openssl: a CA, and client
certificates signed by it (or by the local control plane's own CA, which the API server trusts
for client-certificate authentication)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _openssl(*argv: str) -> None:
    subprocess.run(["openssl", *argv], check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str = "ca") -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
        *("-subj", f"/CN=tether-test-{name}", "-keyout", str(key), "-out", str(cert)),
    )
    return cert, key


def client_cert(
    directory: Path, ca: tuple[Path, Path], user: str, group: str = "", name: str = "client"
) -> tuple[Path, Path]:
    """A client certificate for ``user`` (CN) in ``group`` (O) signed by ``ca``: (cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key, csr = (directory / f"{name}.{ext}" for ext in ("crt", "key", "csr"))
    subject = f"/CN={user}" + (f"/O={group}" if group else "")
    _openssl(
        *("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject),
        *("-keyout", str(key), "-out", str(csr)),
    )
    _openssl(
        *("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1])),
        *("-CAcreateserial", "-CAserial", str(directory / f"{name}.srl"), "-days", "2"),
        *("-out", str(cert)),
    )
    return cert, key
