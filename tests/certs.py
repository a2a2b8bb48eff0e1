"""Test certificates from the openssl command: CAs and the certificates they sign (EC P-256, two days)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
SERVER_FOR_LOOPBACK = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
CLIENT = "extendedKeyUsage=clientAuth\n"


def require_openssl() -> None:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")


def openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=30)


def make_ca(folder: Path, name: str) -> Path:
    """``name``.crt and ``name``.key in ``folder``: a self-signed CA."""
    openssl(
        folder,
        *["req", "-x509", *EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2"],
        *["-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE"],
        *["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    )
    return folder / f"{name}.crt"


def issue(folder: Path, name: str, ca: str, extensions: str) -> tuple[Path, Path]:
    """``name``.crt and ``name``.key, signed by the CA ``ca`` in ``folder``, with these X.509 extensions."""
    (folder / f"{name}.ext").write_text(extensions)
    openssl(
        folder,
        "req",
        "-new",
        *EC_KEY,
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN={name}",
    )
    openssl(
        folder,
        *["x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial"],
        *["-days", "2", "-out", f"{name}.crt", "-extfile", f"{name}.ext"],
    )
    return folder / f"{name}.crt", folder / f"{name}.key"
