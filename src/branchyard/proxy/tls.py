"""Local HTTPS: a CA made on this machine and certificates minted per host name.

Browsers reject a ``*.localhost`` wildcard, and a wildcard covers one label
only (``api.feat.app.localhost`` is not under ``*.app.localhost``), so the
server mints a certificate for each name it is asked for (SNI), signed by the
local CA; ``branchyard proxy trust`` tells the system and browsers to trust it.
"""

from __future__ import annotations

import datetime
import os
import ssl
import tempfile
from pathlib import Path
from typing import Any

from branchyard import statefile
from branchyard.errors import ProxyError

CA_NAME = "branchyard local development CA"
MAX_CONTEXTS = 512


def ca_paths(tls_dir: Path) -> tuple[Path, Path]:
    return tls_dir / "ca.pem", tls_dir / "ca-key.pem"


def ensure_ca(tls_dir: Path) -> tuple[Path, Path]:
    """The CA certificate and key, made once (key readable by this user only)."""
    cert_path, key_path = ca_paths(statefile.private_dir(tls_dir))
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "branchyard")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                         False, False), critical=True)
            .sign(key, hashes.SHA256()))
    _write_private(key_path, _key_pem(key))
    _write_private(cert_path, _cert_pem(cert))
    return cert_path, key_path


def mint_certificate(tls_dir: Path, hosts: list[str]) -> tuple[bytes, bytes]:
    """(cert PEM + CA PEM chain, key PEM) for ``hosts``, signed by the local CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert_path, ca_key_path = ensure_ca(tls_dir)
    ca_pem = ca_cert_path.read_bytes()
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ProxyError(f"{ca_key_path} is not the EC key branchyard made",
                         hint=f"remove {tls_dir} and run `branchyard proxy trust` again")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=397))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    return _cert_pem(cert) + ca_pem, _key_pem(key)


def host_context(tls_dir: Path, hosts: list[str]) -> ssl.SSLContext:
    """A server context for ``hosts`` offering HTTP/1.1 only (ALPN)."""
    cert_pem, key_pem = mint_certificate(tls_dir, hosts)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    # ssl loads certificates from files only: a private temp dir, removed at once
    with tempfile.TemporaryDirectory(prefix="branchyard-tls-") as tmp:
        cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        _write_private(cert_file, cert_pem)
        _write_private(key_file, key_pem)
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


def server_context(tls_dir: Path) -> ssl.SSLContext:
    """The listening context: ``localhost`` by default, a minted one per SNI name."""
    default = host_context(tls_dir, ["localhost"])
    by_host: dict[str, ssl.SSLContext] = {}

    def choose(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        if not name or not _valid_name(name):
            return
        ctx = by_host.get(name)
        if ctx is None:
            if len(by_host) >= MAX_CONTEXTS:
                by_host.clear()
            ctx = by_host[name] = host_context(tls_dir, [name])
        sock.context = ctx

    default.sni_callback = choose
    return default


def trust_steps(ca_cert: Path) -> list[str]:
    """Commands that make this machine and its browsers trust the local CA."""
    nss = Path.home() / ".pki" / "nssdb"
    return [
        f"# Chromium/Chrome and Firefox on Linux (per user, no sudo; needs libnss3-tools):\n"
        f"mkdir -p {nss} && certutil -d sql:{nss} -A -t C,, -n '{CA_NAME}' -i {ca_cert}",
        f"# System-wide on Debian/Ubuntu (curl, Node with --use-openssl-ca, Python):\n"
        f"sudo cp {ca_cert} /usr/local/share/ca-certificates/branchyard-ca.crt && "
        "sudo update-ca-certificates",
        f"# macOS:\nsudo security add-trusted-cert -d -r trustRoot "
        f"-k /Library/Keychains/System.keychain {ca_cert}",
        f"# Node (any OS): export NODE_EXTRA_CA_CERTS={ca_cert}",
    ]


def install_user_trust(ca_cert: Path) -> Path:
    """Trust the CA in this user's NSS database (Chromium and Firefox on Linux; no
    sudo); the database path. Idempotent: the entry is replaced."""
    import shutil

    from branchyard.external import run

    certutil = shutil.which("certutil")
    if certutil is None:
        raise ProxyError("certutil is not installed, so the browser trust store cannot be "
                         "changed", hint="install it (Debian/Ubuntu: apt-get install "
                                         "libnss3-tools) or follow `branchyard proxy trust`")
    nss = Path.home() / ".pki" / "nssdb"
    if not (nss / "cert9.db").exists():
        nss.mkdir(parents=True, exist_ok=True)
        run([certutil, "-N", "-d", f"sql:{nss}", "--empty-password"], timeout=30)
    run([certutil, "-D", "-d", f"sql:{nss}", "-n", CA_NAME], timeout=30, check=False)
    run([certutil, "-A", "-d", f"sql:{nss}", "-t", "C,,", "-n", CA_NAME, "-i",
         str(ca_cert)], timeout=30)
    return nss


def _valid_name(name: str) -> bool:
    return len(name) <= 253 and all(c.isalnum() or c in "-." for c in name)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    pem: bytes = key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    return pem


def _cert_pem(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    pem: bytes = cert.public_bytes(serialization.Encoding.PEM)
    return pem
